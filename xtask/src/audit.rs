//! `cargo xtask audit`: does each wheel's every extension module use only the Stable ABI its
//! tags claim (abi3, abi3t)? The rules live in `stable_abi`, shared with build-all.

use std::path::PathBuf;

use anyhow::{Result, bail};
use xshell::Shell;

use crate::stable_abi::list::StableAbi;
use crate::stable_abi::{self, Verdict, WheelAudit, shown};
use crate::stack::Layout;

/// Check wheels against CPython's own list of the Stable ABI.
///
/// For every extension module in each wheel (ELF, Mach-O including universal binaries, PE):
/// each imported C-API symbol must be a `function` or `data` of `Misc/stable_abi.toml` added
/// no later than the wheel's `cpXY` tag; the module must not link a libpython, a Python
/// framework or a version's DLL; its suffix must load on every interpreter the tags name. A
/// wheel tagged `abi3t` must also look like an abi3t build in the binary: no module built
/// from a `PyModuleDef` (opaque in abi3t), no inlined `Py_DECREF`, and a PEP 793 module's
/// `PyABIInfo` saying free-threading agnostic. docs/audit.md gives each rule's reasoning and
/// the `--json` format; `build.target.audit_waivers` in a stack accepts a finding, with a
/// reason.
///
/// Exits 1 when any wheel has a violation or cannot be read. Wheels whose tags claim no
/// Stable ABI are listed as skipped.
///
/// Examples:
///   cargo xtask audit dist/cryptography-50.0.2-cp315-abi3.abi3t-manylinux_2_34_x86_64.whl
///   cargo xtask audit wheels/ --json
///   cargo xtask audit x.whl --stable-abi ~/cpython/Misc/stable_abi.toml
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Wheels, or folders whose `*.whl` files are audited.
    #[arg(required = true, value_name = "WHEEL|DIR")]
    pub paths: Vec<PathBuf>,
    /// CPython's `Misc/stable_abi.toml` (default: the one in the checkout of the CPython stack
    /// that experiment.yaml builds wheels on).
    #[arg(long, value_name = "FILE")]
    pub stable_abi: Option<PathBuf>,
    /// Print the result as JSON (format in docs/audit.md).
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub fn run(&self, _sh: &Shell, layout: &Layout) -> Result<()> {
        let list_path = match &self.stable_abi {
            Some(p) => p.clone(),
            None => default_list(layout)?,
        };
        let abi = StableAbi::load(&list_path)?;
        let wheels = wheels(&self.paths)?;
        let mut audits = Vec::new();
        let mut errors = Vec::new();
        for w in &wheels {
            match stable_abi::audit_wheel(w, &abi, &[]) {
                Ok(a) => audits.push(a),
                Err(e) => errors.push((w.display().to_string(), format!("{e:#}"))),
            }
        }
        if self.json {
            let doc = serde_json::json!({
                "version": 1,
                "stable_abi": {
                    "path": list_path.display().to_string(),
                    "newest": abi.newest.map(|v| v.to_string()),
                    "symbols": abi.symbols(),
                },
                "wheels": audits,
                "errors": errors.iter().map(|(w, e)| serde_json::json!({"wheel": w, "error": e})).collect::<Vec<_>>(),
            });
            crate::fsx::print_stdout(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        } else {
            for a in &audits {
                print_audit(a)?;
            }
            for (w, e) in &errors {
                crate::outln!("{}: error: {}", shown(w), shown(e));
            }
        }
        let bad = audits
            .iter()
            .filter(|a| a.verdict == Verdict::Violations)
            .count();
        if bad + errors.len() > 0 {
            bail!(
                "{} of {} wheels have violations{}",
                bad,
                wheels.len(),
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(", {} could not be read", errors.len())
                }
            );
        }
        Ok(())
    }
}

fn print_audit(a: &WheelAudit) -> Result<()> {
    let claim = a
        .claim
        .map(|c| {
            let mut s = format!("cp{}{}", c.python.major, c.python.minor);
            if c.abi3 {
                s.push_str(" abi3");
            }
            if c.abi3t {
                s.push_str(" abi3t");
            }
            s
        })
        .unwrap_or_default();
    let symbols: usize = a.modules.iter().map(|m| m.symbols_checked).sum();
    match a.verdict {
        Verdict::Skipped => crate::outln!(
            "{}: skipped (its tags claim no Stable ABI: {})",
            shown(&a.wheel),
            shown(&a.tags.join(", "))
        ),
        Verdict::Clean => crate::outln!(
            "{}: clean ({claim}; {} shared object{}, {symbols} C-API symbols checked)",
            shown(&a.wheel),
            a.modules.len(),
            if a.modules.len() == 1 { "" } else { "s" }
        ),
        Verdict::Violations => {
            let lines = a.lines();
            crate::outln!(
                "{}: {} violation{} ({claim})",
                shown(&a.wheel),
                lines.len(),
                if lines.len() == 1 { "" } else { "s" }
            );
            for l in lines {
                crate::outln!("  {l}");
            }
        }
    }
    for f in a.findings.iter().filter(|f| f.waived.is_some()) {
        crate::outln!(
            "  waived: {} {}: {}",
            shown(&f.module),
            f.violation.rule.as_str(),
            f.waived.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

/// The Stable ABI list of the CPython stack experiment.yaml builds wheels on.
fn default_list(layout: &Layout) -> Result<PathBuf> {
    let experiment = crate::stack::load_experiment(layout)?;
    let stack = &experiment.builder().stack;
    let path = layout.checkout(stack).join("Misc/stable_abi.toml");
    if !path.is_file() {
        bail!(
            "no Stable ABI list at `{}` (the `{stack}` checkout, whose interpreter builds the wheels): run `cargo xtask sync {stack}`, or pass `--stable-abi FILE`",
            layout.show(&path)
        );
    }
    Ok(path)
}

/// The wheels named: files as given, folders' `*.whl` in name order.
fn wheels(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = fs_err::metadata(p)?;
        if meta.is_dir() && p.extension().is_some_and(|x| x == "whl") {
            bail!("`{}` is a folder, not a wheel", p.display());
        }
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = fs_err::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "whl") && f.is_file())
                .collect();
            if found.is_empty() {
                bail!("`{}` holds no .whl files", p.display());
            }
            found.sort();
            out.extend(found);
        } else if meta.is_file() {
            out.push(p.clone());
        } else {
            // A FIFO or device would block the read or never end.
            bail!("`{}` is not a regular file or a folder", p.display());
        }
    }
    Ok(out)
}
