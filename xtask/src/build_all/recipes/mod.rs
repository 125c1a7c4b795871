//! The real steps of the experiment: CPython builds, maturin and the environments with the
//! toolchain from the stacks (`toolchain`), one wheel per target (`wheels`), its install cells
//! and test suites per interpreter (`pytest`), and the installs that must be refused
//! (`refusal`). Each recipe runs commands through xshell and keeps
//! their output in the step's log; this module holds what they share.

pub mod cpython;
pub mod pytest;
pub mod refusal;
mod toolchain;
mod wheels;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

pub use pytest::{install, test};
pub use refusal::{abi3_wheel, refusal};
pub use toolchain::{cpython, environment, maturin};
pub use wheels::{AUDIT_JSON, AuditRecord, AuditSpec, wheel};

use super::classify::{self, Class, Failure};
use super::step::StepId;
use crate::ops::interpreters::Platform;

/// What a running step sees.
pub type Ctx = super::run::Ctx<StepId>;

/// The platform the recipes run on.
pub const HOST: Platform = Platform::host();

/// Paths and settings every recipe needs, fixed for one run.
#[derive(Debug, Clone)]
pub struct Env {
    pub root: PathBuf,
    /// Scratch space that survives between runs (build trees, cargo target dirs).
    pub work: PathBuf,
    pub constraints: PathBuf,
}

impl Env {
    pub fn checkout(&self, project: &str) -> PathBuf {
        self.root.join("checkouts").join(project)
    }
}

/// What a command left: its exit status and its output (also in the step's log).
pub struct Ran {
    pub line: String,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Its failure, unless it succeeded: a process killed by a signal is a crash, whoever
    /// runs it.
    pub fn check(self) -> Result<String> {
        if self.status.success() {
            return Ok(self.stdout);
        }
        let e = anyhow::anyhow!("`{}` failed ({})", self.line, self.status);
        if signalled(&self.status) {
            let what = short_command(&self.line);
            return Err(e.context(Failure::new(
                Class::Crash,
                format!("`{what}` was killed by a signal ({})", self.status),
            )));
        }
        Err(e)
    }

    /// Its failure classed as `class`, the reason made from the line of its output that
    /// says what went wrong (a crash stays a crash).
    pub fn check_as(self, class: Class, reason: impl FnOnce(&str) -> String) -> Result<String> {
        let said = self.error_line().unwrap_or_default();
        self.check()
            .map_err(|e| classify::classed(e, class, reason(&said)))
    }

    /// The line of its output that says what went wrong.
    pub fn error_line(&self) -> Option<String> {
        classify::error_line(&format!("{}\n{}", self.stdout, self.stderr))
    }
}

#[cfg(unix)]
fn signalled(status: &std::process::ExitStatus) -> bool {
    std::os::unix::process::ExitStatusExt::signal(status).is_some()
}

/// On Windows a crash is an exit code that is an NTSTATUS error (0xC0000005, an access
/// violation; 0xC0000409, a failed stack check).
#[cfg(not(unix))]
fn signalled(status: &std::process::ExitStatus) -> bool {
    status.code().is_some_and(|c| (c as u32) >= 0xC000_0000)
}

/// A command line cut to its program's file name and first two arguments, for a report
/// line (`python -m pytest`).
pub fn short_command(line: &str) -> String {
    // xshell quotes arguments with spaces; the quotes say nothing in a report line.
    let mut words = line
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''));
    let program = words
        .next()
        .map(|p| p.rsplit(['/', '\\']).next().unwrap_or(p))
        .unwrap_or_default();
    std::iter::once(program)
        .chain(words.take(2))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command, keeps its output in the step's log, and returns what it left; fails only
/// when it could not be started.
///
/// Every cargo it starts, directly or under pip and maturin, builds with the step's granted
/// cores (`CARGO_BUILD_JOBS`) instead of all of the machine's.
pub fn run_logged(ctx: &Ctx, cmd: xshell::Cmd) -> Result<Ran> {
    let line = cmd.to_string();
    ctx.note(&format!("$ {line}"))?;
    let out = cmd
        .env("CARGO_BUILD_JOBS", ctx.jobs.to_string())
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running `{line}`"))?;
    let ran = Ran {
        line,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    ctx.note(&ran.stdout)?;
    ctx.note(&ran.stderr)?;
    Ok(ran)
}

/// Runs a command, keeps its output in the step's log, fails with the command named (and as
/// a crash when a signal killed it).
pub fn logged(ctx: &Ctx, cmd: xshell::Cmd) -> Result<String> {
    run_logged(ctx, cmd)?.check()
}

/// A venv of `base` at `venv` without a pip of its own; returns its python. Cells install
/// into it with `pip_into` or uv's `--python`: ensurepip alone costs about 6 s a venv here
/// (docs/decisions.md), and every cell makes one.
pub fn bare_venv(sh: &Shell, ctx: &Ctx, base: &Path, venv: &Path) -> Result<PathBuf> {
    logged(ctx, cmd!(sh, "{base} -m venv --without-pip {venv}"))?;
    Ok(super::platform::venv_python(HOST, venv))
}

/// `pip --python <py>` of an interpreter's environment (the constraints' pip): pip runs
/// under `py` and installs into its venv, as the venv's own pip would.
pub fn pip_into<'a>(sh: &'a Shell, env_dir: &Path, py: &Path) -> xshell::Cmd<'a> {
    let pip_py = super::platform::venv_python(HOST, env_dir);
    cmd!(sh, "{pip_py} -m pip --python {py}")
}

/// Where a step copies a checkout: its own folder, because steps run in parallel and the
/// environments of both interpreters copy the same projects.
pub fn scratch_src(work: &Path, step: &StepId, project: &str) -> PathBuf {
    work.join("src").join(step.slug()).join(project)
}

/// A clean copy of a checkout's HEAD at `dest` (builds write into their source).
fn export_to(sh: &Shell, ctx: &Ctx, env: &Env, project: &str, dest: &Path) -> Result<()> {
    let co = env.checkout(project);
    let tar = dest.with_extension("tar");
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest).with_context(|| format!("creating `{}`", dest.display()))?;
    ctx.note(&format!(
        "$ git -C {} archive -o {} HEAD",
        co.display(),
        tar.display()
    ))?;
    crate::git::Checkout::new(sh, &co).archive_head(&tar)?;
    logged(ctx, cmd!(sh, "tar -xf {tar} -C {dest}"))?;
    let _ = std::fs::remove_file(&tar);
    Ok(())
}

/// A clean copy of a checkout's HEAD in the step's own scratch folder.
fn export_tree(sh: &Shell, ctx: &Ctx, env: &Env, project: &str) -> Result<PathBuf> {
    let dest = scratch_src(&env.work, &ctx.name, project);
    export_to(sh, ctx, env, project, &dest)?;
    source_vars(sh, &dest);
    Ok(dest)
}

/// What every build from an exported source runs with. The copy lives inside this
/// repository's work tree: without a ceiling, version tools that ask git (setuptools-scm,
/// vcs-versioning) read this repository's history (argon2-cffi-bindings' wheel was 0.0). An
/// sdist's version is in its PKG-INFO; it is given to those tools, as distributions'
/// packagers do, because setuptools-scm 10.3.4 with vcs-versioning 2.6.0 reads 0.0 even
/// where no repository is in the way. The variables stay on `sh`: a caller exporting more
/// than one source gives each its own shell.
fn source_vars(sh: &Shell, src: &Path) {
    if let Some(parent) = src.parent() {
        sh.set_var("GIT_CEILING_DIRECTORIES", parent);
    }
    let version = std::fs::read_to_string(src.join("PKG-INFO"))
        .ok()
        .as_deref()
        .and_then(pkg_info_version);
    if let Some(v) = version {
        for var in [
            "SETUPTOOLS_SCM_PRETEND_VERSION",
            "VCS_VERSIONING_PRETEND_VERSION",
        ] {
            sh.set_var(var, &v);
        }
    }
}

/// The `Version:` of a PKG-INFO's header (the lines before the first empty one).
pub fn pkg_info_version(pkg_info: &str) -> Option<String> {
    pkg_info
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The wheel a step produced (exactly one).
pub fn wheel_in(dir: &Path) -> Result<PathBuf> {
    let wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading `{}`", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    match wheels.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one wheel in `{}`, found {}",
            dir.display(),
            wheels.len()
        ),
    }
}

/// `cp -R from to`, making `to`'s parent first.
fn copy_tree(sh: &Shell, ctx: &Ctx, from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating `{}`", parent.display()))?;
    }
    logged(ctx, cmd!(sh, "cp -R {from} {to}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step's context with its output and log in `dir`.
    fn test_ctx(dir: &Path, jobs: usize) -> Ctx {
        Ctx {
            name: StepId::Maturin,
            out: dir.to_path_buf(),
            deps: Default::default(),
            log: dir.join("log"),
            jobs,
        }
    }

    #[cfg(unix)]
    #[test]
    fn commands_build_with_the_granted_cores() {
        let dir = std::env::temp_dir().join(format!("xtask-logged-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ctx = test_ctx(&dir, 3);
        let sh = Shell::new().unwrap();
        let seen = logged(&ctx, cmd!(sh, "printenv CARGO_BUILD_JOBS"));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(seen.unwrap().trim(), "3");
    }

    #[cfg(unix)]
    #[test]
    fn a_process_killed_by_a_signal_is_a_crash() {
        let dir = std::env::temp_dir().join(format!("xtask-crash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ctx = test_ctx(&dir, 1);
        let sh = Shell::new().unwrap();
        let script = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let (segv, exit3) = (script("segv", "kill -SEGV $$"), script("exit3", "exit 3"));
        let crashed = logged(&ctx, cmd!(sh, "{segv} now")).unwrap_err();
        let failed = logged(&ctx, cmd!(sh, "{exit3}")).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        let f = Failure::of(&crashed).expect("a crash is classified");
        assert_eq!(f.class, Class::Crash);
        assert!(
            f.reason.starts_with("`segv now` was killed by a signal"),
            "{f:?}"
        );
        assert!(f.reason.contains("SIGSEGV"), "{f:?}");
        assert_eq!(Failure::of(&failed), None, "an exit status is not a crash");
        assert_eq!(
            short_command("/a/b/python3 -m pytest -x y"),
            "python3 -m pytest"
        );
    }

    #[test]
    fn parallel_steps_copy_sources_to_their_own_folders() {
        // env/default and env/freethreaded once shared one copy of setuptools and one step
        // deleted it while the other was building from it.
        let work = Path::new("/w");
        assert_ne!(
            scratch_src(work, &StepId::Env("3.15".into()), "setuptools"),
            scratch_src(work, &StepId::Env("3.15t".into()), "setuptools")
        );
        assert_eq!(
            scratch_src(work, &StepId::Env("3.15".into()), "cffi"),
            Path::new("/w/src/env-3.15/cffi")
        );
    }
}
