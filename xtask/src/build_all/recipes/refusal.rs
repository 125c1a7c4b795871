//! What installers must refuse: an abi3-only wheel (no abi3t) of a target, built on a
//! GIL-enabled interpreter with the released setuptools and cffi that experiment.yaml pins
//! (the toolchain before PEP 803), then offered to every interpreter with every installer.
//! A free-threaded interpreter must refuse it (its ABI is abi3t); a GIL-enabled one must
//! install and import it. Each cell writes `result.json` with what the installer said.

use std::path::PathBuf;

use crate::build_all::classify::{Class, Failure};
use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::pytest::import_check;
use super::toolchain::runtime_wheels;
use super::{Ctx, Env, HOST, bare_venv, export_tree, logged, pip_into, wheel_in};
use crate::build_all::experiment::accepts_abi3;
use crate::build_all::step::{Installer, StepId};
use crate::build_all::{platform, wheel};
use crate::manifest::{Experiment, Interpreter, Target};
use crate::ops::interpreters::python_in;

/// What a refusal cell found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefusalResult {
    /// `refuse` or `accept`: what the interpreter's ABI calls for.
    pub expected: String,
    /// `refused` or `accepted`: what the installer did.
    pub got: String,
    /// The installer's own words (its last line of output).
    pub message: String,
}

/// An abi3-only wheel of the target, built on `interp` with the released toolchain.
pub fn abi3_wheel(
    env: &Env,
    ctx: &Ctx,
    project: &str,
    interp: &Interpreter,
    requires: &[String],
    audit: &super::AuditSpec,
) -> Result<()> {
    let sh = Shell::new()?;
    let base = python_in(HOST, ctx.dep(&StepId::CPython(interp.name.clone()))?)?;
    let venv = ctx.out.join("venv");
    logged(ctx, cmd!(sh, "{base} -m venv {venv}"))?;
    let py = platform::venv_python(HOST, &venv);
    let c = &env.constraints;
    logged(
        ctx,
        cmd!(sh, "{py} -m pip install --quiet -c {c} pip wheel"),
    )?;
    logged(ctx, cmd!(sh, "{py} -m pip install --quiet {requires...}"))?;
    let src = export_tree(&sh, ctx, env, project)?;
    let out = ctx.out.join("dist");
    logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pip wheel --no-build-isolation --no-deps -w {out} {src}"
        ),
    )?;
    let whl = wheel_in(&out)?;
    let file = whl.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let name = wheel::parse_name(file)?;
    if name.abi != "abi3" {
        bail!(
            "{file}: expected an abi3-only wheel from the released setuptools on {}, got the ABI tag `{}`",
            interp.name,
            name.abi
        );
    }
    ctx.note(&format!("abi3-only wheel: {file}"))?;
    // It must still be a correct abi3 wheel: only its missing abi3t is to be refused.
    super::wheels::audit_wheel(ctx, &whl, audit)
}

/// Offers the abi3-only wheel to one interpreter with one installer; passes when the
/// installer does what the interpreter's ABI calls for.
pub fn refusal(
    ctx: &Ctx,
    e: &Experiment,
    project: &str,
    target: &Target,
    interp: &Interpreter,
    installer: Installer,
) -> Result<()> {
    let sh = Shell::new()?;
    let whl = wheel_in(
        &ctx.dep(&StepId::Abi3Wheel(project.to_string()))?
            .join("dist"),
    )?;
    let env_dir = ctx.dep(&StepId::Env(interp.name.clone()))?;
    let mut files: Vec<PathBuf> = vec![whl];
    files.extend(runtime_wheels(e, env_dir)?);
    let base = python_in(HOST, ctx.dep(&StepId::CPython(interp.name.clone()))?)?;
    let py = bare_venv(&sh, ctx, &base, &ctx.out.join("venv"))?;
    // Only the files, never the index: what is judged is the wheel's tags.
    let attempt = match installer {
        Installer::Pip => pip_into(&sh, env_dir, &py)
            .args(["install", "--no-index", "--no-deps"])
            .args(&files),
        Installer::Uv => {
            let uv = platform::scripts_dir(HOST, env_dir).join(HOST.exe("uv"));
            cmd!(
                sh,
                "{uv} pip install --python {py} --offline --no-deps {files...}"
            )
        }
    };
    let line = attempt.to_string();
    ctx.note(&format!("$ {line}"))?;
    let out = attempt
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running `{line}`"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ctx.note(&text)?;
    let result = RefusalResult {
        expected: if accepts_abi3(interp) {
            "accept"
        } else {
            "refuse"
        }
        .into(),
        got: if out.status.success() {
            "accepted"
        } else {
            "refused"
        }
        .into(),
        message: installer_words(&text, out.status.success()),
    };
    crate::fsx::write_atomic(
        &ctx.out.join("result.json"),
        serde_json::to_string_pretty(&result)?.as_bytes(),
    )?;
    match (result.expected.as_str(), out.status.success()) {
        ("accept", true) => import_check(ctx, &py, &target.import, interp),
        ("refuse", false) => Ok(()),
        ("accept", false) => Err(Failure::new(
            Class::RefusalMismatch,
            format!(
                "{installer} refused the abi3-only wheel on the GIL-enabled {}: {}",
                interp.name, result.message
            ),
        )
        .into()),
        _ => Err(Failure::new(
            Class::RefusalMismatch,
            format!(
                "{installer} installed the abi3-only wheel on the free-threaded {}, whose ABI is abi3t",
                interp.name
            ),
        )
        .into()),
    }
}

/// What the installer said about the wheel: on success the line saying what it installed;
/// on failure its error lines (pip's `ERROR:`; uv's `error:`, `cause:` and `hint:`), else its
/// last line. At most 300 characters.
pub fn installer_words(text: &str, installed: bool) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let wanted: &[&str] = if installed {
        &["Successfully installed", "Installed "]
    } else {
        &["ERROR:", "error:", "cause:", "hint:"]
    };
    let picked: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| wanted.iter().any(|w| l.starts_with(w)))
        .collect();
    let words = if picked.is_empty() {
        lines.last().copied().unwrap_or("").to_string()
    } else {
        picked.join(" / ")
    };
    words.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_installers_said() {
        let pip = "Processing x\nERROR: brotlicffi-1.2.1.0-cp315-abi3-linux_x86_64.whl is not a supported wheel on this platform.\n\n";
        assert!(installer_words(pip, false).starts_with("ERROR: brotlicffi"));
        let uv = "Using Python 3.16.0a0 environment at: v\nResolved 2 packages in 2ms\nerror: Failed to determine installation plan\n  cause: A path (b.whl) dependency is incompatible with the current platform\n\nhint: You're using free-threaded CPython 3.16 (`cp316t`), but the wheel was built for the stable ABI (`abi3`)\n";
        let said = installer_words(uv, false);
        assert!(
            said.starts_with("error: Failed to determine installation plan / cause: A path"),
            "{said}"
        );
        assert!(
            said.contains("/ hint: You're using free-threaded"),
            "{said}"
        );
        let ok = "Resolved 2 packages in 11ms\nInstalled 2 packages in 16ms\n + brotlicffi==1.2.1.0 (from file:///x)\n + cffi==2.2.0.dev0\n";
        assert_eq!(installer_words(ok, true), "Installed 2 packages in 16ms");
        assert_eq!(installer_words("", false), "");
        assert_eq!(installer_words(&"x".repeat(1000), false).len(), 300);
    }
}
