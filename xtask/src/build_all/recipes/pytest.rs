//! The cells of the matrix: `install` (a target's wheel installed into a fresh venv of one
//! interpreter with pip or uv, and the import check) and `test` (the same with the target's
//! test requirements, then its tests with pytest). Like CPython's own test runner, a failed
//! test is re-run once on its own: one that then passes is flaky (reported, not a failure),
//! one that fails again is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::toolchain::runtime_wheels;
use super::{Ctx, Env, HOST, bare_venv, copy_tree, pip_into, run_logged, wheel_in};
use crate::build_all::classify::{self, Class, Failure, classed};
use crate::build_all::platform;
use crate::build_all::report::{self, Counts};
use crate::build_all::step::{Installer, StepId};
use crate::manifest::{Experiment, Interpreter, Target, TestData};
use crate::ops::interpreters::python_in;

/// What to do after the first pytest run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Passed,
    /// Re-run these failed tests once, on their own.
    Rerun(Vec<String>),
    /// Failed with no test to blame (collection or usage error, crash): nothing to re-run.
    Failed,
}

/// After the first run: whether it passed, and the node ids pytest recorded as failed.
pub fn after_first_run(passed: bool, failed: Vec<String>) -> Next {
    match (passed, failed.is_empty()) {
        (true, _) => Next::Passed,
        (false, true) => Next::Failed,
        (false, false) => Next::Rerun(failed),
    }
}

/// The cell's verdict once the re-run is done: the re-run tests are flaky if it passed.
pub fn after_rerun(rerun: Vec<String>, passed: bool) -> Result<Vec<String>, Vec<String>> {
    if passed { Ok(rerun) } else { Err(rerun) }
}

/// The node ids in pytest's `lastfailed` cache file (a JSON object keyed by node id).
pub fn last_failed(json: &str) -> Vec<String> {
    serde_json::from_str::<BTreeMap<String, serde_json::Value>>(json)
        .map(|m| {
            m.into_iter()
                .filter(|(_, v)| v.as_bool() != Some(false))
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default()
}

/// The counts of a cell whose failed tests passed when re-run: those count as flaky.
pub fn with_flaky(mut counts: Counts, flaky: &[String]) -> Counts {
    let n = flaky.len() as u64;
    counts.failed = counts.failed.saturating_sub(n);
    counts.flaky = n;
    counts
}

/// What a test cell leaves in its `result.json`: the counts and the flaky tests' node ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellResult {
    #[serde(flatten)]
    pub counts: Counts,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flaky_tests: Vec<String>,
}

/// A fresh venv of `interp` at `venv` with `files` (wheels) and `reqs` installed by
/// `installer`, pinned by the constraints file; returns the venv's python.
pub fn fresh_venv(
    env: &Env,
    ctx: &Ctx,
    interp: &Interpreter,
    venv: &Path,
    installer: Installer,
    files: &[PathBuf],
    reqs: &[String],
) -> Result<PathBuf> {
    let sh = Shell::new()?;
    let base = python_in(HOST, ctx.dep(&StepId::CPython(interp.name.clone()))?)?;
    let env_dir = ctx.dep(&StepId::Env(interp.name.clone()))?;
    let py = bare_venv(&sh, ctx, &base, venv)?;
    let c = &env.constraints;
    let ran = match installer {
        Installer::Pip => run_logged(
            ctx,
            pip_into(&sh, env_dir, &py)
                .args(["install", "--quiet", "-c"])
                .arg(c)
                .args(files)
                .args(reqs),
        )?,
        Installer::Uv => {
            let uv = platform::scripts_dir(HOST, env_dir).join(HOST.exe("uv"));
            run_logged(
                ctx,
                cmd!(
                    sh,
                    "{uv} pip install --python {py} -c {c} {files...} {reqs...}"
                ),
            )?
        }
    };
    ran.check_as(Class::InstallRefused, |said| {
        format!("{installer} refused to install on {}: {said}", interp.name)
    })?;
    Ok(py)
}

/// Imports the target's module; on a free-threaded build the GIL must stay disabled.
pub fn import_check(ctx: &Ctx, py: &Path, import: &str, interp: &Interpreter) -> Result<()> {
    let sh = Shell::new()?;
    // The log also records which cffi the environment got (the stack's, not PyPI's).
    let probe = format!(
        "import sys, {import}; print(getattr(sys, '_is_gil_enabled', lambda: True)()); __import__('importlib.util').util.find_spec('cffi') and print('cffi', __import__('cffi').__version__, file=sys.stderr)"
    );
    let gil = run_logged(ctx, cmd!(sh, "{py} -c {probe}"))?
        .check_as(Class::ImportError, |said| {
            format!("`import {import}` failed on {}: {said}", interp.name)
        })?;
    if interp.flavour.free_threaded() && gil.trim() != "False" {
        return Err(Failure::new(
            Class::ImportError,
            format!(
                "importing `{import}` on the free-threaded {} turned the GIL on (sys._is_gil_enabled() is {}): the module does not declare Py_MOD_GIL_NOT_USED",
                interp.name,
                gil.trim()
            ),
        )
        .into());
    }
    Ok(())
}

/// The target's wheel and the runtime roles' wheels (cffi from its stack).
fn wheel_files(
    ctx: &Ctx,
    e: &Experiment,
    project: &str,
    interp: &Interpreter,
) -> Result<Vec<PathBuf>> {
    let mut files = vec![wheel_in(ctx.dep(&StepId::Wheel(project.to_string()))?)?];
    files.extend(runtime_wheels(
        e,
        ctx.dep(&StepId::Env(interp.name.clone()))?,
    )?);
    Ok(files)
}

/// An install cell: the wheel (never rebuilt) into a fresh venv of one interpreter with one
/// installer, and the import check.
pub fn install(
    env: &Env,
    ctx: &Ctx,
    e: &Experiment,
    project: &str,
    target: &Target,
    interp: &Interpreter,
    installer: Installer,
) -> Result<()> {
    let files = wheel_files(ctx, e, project, interp)?;
    let py = fresh_venv(
        env,
        ctx,
        interp,
        &ctx.out.join("venv"),
        installer,
        &files,
        &[],
    )?;
    import_check(ctx, &py, &target.import, interp)
}

/// A test cell: the wheel and the target's test requirements into a fresh venv of one
/// interpreter (installed by `tests.suite`), the import check, then the tests.
pub fn test(
    env: &Env,
    ctx: &Ctx,
    e: &Experiment,
    project: &str,
    target: &Target,
    interp: &Interpreter,
    installer: Installer,
) -> Result<()> {
    let sh = Shell::new()?;
    let files = wheel_files(ctx, e, project, interp)?;
    let venv = ctx.out.join("venv");
    let py = fresh_venv(
        env,
        ctx,
        interp,
        &venv,
        installer,
        &files,
        &suite_requires(target),
    )?;
    import_check(ctx, &py, &target.import, interp)?;
    let tests = tests_copy(&sh, ctx, env, project, target)?;
    sh.change_dir(&tests);
    run_pytest(&sh, ctx, &py, target)
}

/// What the suite's venv gets besides the wheel: the target's `test_requires`, and the pytest
/// plugin the runner itself relies on: pytest-xdist wherever it may pass `-n` (every target
/// but those with `pytest_workers: 1`), from the constraints file like the rest.
pub fn suite_requires(target: &Target) -> Vec<String> {
    let mut requires = target.test_requires.clone();
    let named = |r: &String| {
        let name = r
            .split(|c: char| "<>=!~[;@ ".contains(c))
            .next()
            .unwrap_or("");
        crate::pypi::normalize(name) == "pytest-xdist"
    };
    if target.pytest_workers != Some(1) && !requires.iter().any(named) {
        requires.push("pytest-xdist".into());
    }
    requires
}

/// A copy holding only the tests and the pytest configuration, so the tests import the
/// installed wheel and not the source tree.
fn tests_copy(sh: &Shell, ctx: &Ctx, env: &Env, project: &str, target: &Target) -> Result<PathBuf> {
    let src = env.checkout(project);
    let tests = ctx.out.join("tests-run");
    std::fs::create_dir_all(&tests).with_context(|| format!("creating `{}`", tests.display()))?;
    for item in &target.test_files {
        let from = src.join(item);
        if from.exists() {
            copy_tree(sh, ctx, &from, &tests.join(item))?;
        } else if !target.test_files_are_default() {
            // The default list is a guess; a list the stack wrote must be right.
            bail!("`test_files` names `{item}`, which `checkouts/{project}` does not have");
        }
    }
    for data in &target.test_data {
        test_data(sh, ctx, env, data, &tests)?;
    }
    Ok(tests)
}

/// pytest over the tests, then once more over the ones that failed, alone (one process, the
/// same environment and arguments, `--last-failed`). Writes `result.json`.
fn run_pytest(sh: &Shell, ctx: &Ctx, py: &Path, target: &Target) -> Result<()> {
    let junit = ctx.out.join("junit.xml");
    // pytest's cache records the failed node ids; it lives in the step's output, so a
    // run never sees an earlier run's failures.
    let cache = format!("cache_dir={}", ctx.out.join("pytest-cache").display());
    let workers: Vec<String> = match target.pytest_workers.unwrap_or(ctx.jobs) {
        1 => vec![],
        n => vec!["-n".into(), n.to_string()],
    };
    let args = &target.pytest;
    let deselect: Vec<String> = target
        .timing_sensitive
        .iter()
        .map(|t| format!("--deselect={t}"))
        .collect();
    // The workers must collect the same tests: a suite parametrized over a set (brotlicffi's
    // test files) collects them in hash order, which differs between processes unless the
    // seed is fixed.
    let first_ran = run_logged(
        ctx,
        cmd!(
            sh,
            "{py} -m pytest {workers...} -o {cache} --junitxml={junit} {deselect...} {args...}"
        )
        .env("PYTHONHASHSEED", "0"),
    )?;
    let crashed_worker = classify::crashed_worker(&first_ran.stdout);
    let mut first_said = first_ran.error_line().unwrap_or_default();
    let mut first_code = first_ran.status.code();
    let mut first = first_ran.check();
    // Then the timing-sensitive tests, in one process (the cell runs alone: the cores are
    // free), into the same pytest cache, so a failure there is re-run like any other.
    let alone = &target.timing_sensitive;
    let alone_junit = ctx.out.join("junit-alone.xml");
    if !alone.is_empty() {
        let ran = run_logged(
            ctx,
            cmd!(
                sh,
                "{py} -m pytest -o {cache} --junitxml={alone_junit} {alone...}"
            ),
        )?;
        // Its failure is the cell's when the first run passed, or when it is worse than
        // failed tests (a crash, an error of pytest's own).
        if first.is_ok() || ran.status.code() != Some(1) {
            first_said = ran.error_line().unwrap_or_default();
            first_code = ran.status.code();
            first = ran.check();
        }
    }
    let mut counts = Counts::default();
    for file in [&junit, &alone_junit] {
        if let Ok(x) = std::fs::read_to_string(file) {
            counts = counts.add(&report::junit_counts(&x));
        }
    }
    let lastfailed = ctx
        .out
        .join("pytest-cache")
        .join("v")
        .join("cache")
        .join("lastfailed");
    let failed = last_failed(&std::fs::read_to_string(lastfailed).unwrap_or_default());
    let mut result = CellResult {
        counts,
        flaky_tests: vec![],
    };
    let failed_count = counts_failed(&result.counts);
    let outcome = match after_first_run(first.is_ok(), failed) {
        Next::Passed => Ok(()),
        // pytest's exit code 1 is "tests failed"; others are usage, collection or internal
        // errors (`unrecognized arguments`), where no test ran to fail.
        Next::Failed => first.map(|_| ()).map_err(|e| match first_code {
            Some(1) => classed(
                e,
                Class::TestsFailedEverywhere,
                format!("{failed_count}: {first_said}"),
            ),
            _ => classed(
                e,
                Class::Error,
                format!("pytest did not run the tests: {first_said}"),
            ),
        }),
        Next::Rerun(ids) => {
            ctx.note(&format!(
                "re-running {} failed test(s) once, on their own: {}",
                ids.len(),
                ids.join(" ")
            ))?;
            let rerun_junit = ctx.out.join("junit-rerun.xml");
            let rerun_ran = run_logged(
                ctx,
                cmd!(
                    sh,
                    "{py} -m pytest -o {cache} --junitxml={rerun_junit} --last-failed --last-failed-no-failures none {args...}"
                ),
            )?;
            let rerun_said = rerun_ran.error_line().unwrap_or_default();
            let rerun_code = rerun_ran.status.code();
            let rerun = rerun_ran.check();
            match after_rerun(ids, rerun.is_ok()) {
                Ok(flaky) => {
                    ctx.note(&format!("flaky (failed, then passed): {}", flaky.join(" ")))?;
                    result.counts = with_flaky(result.counts, &flaky);
                    result.flaky_tests = flaky;
                    Ok(())
                }
                Err(ids) => {
                    let e = rerun
                        .map(|_| ())
                        .with_context(|| format!("failed again when re-run: {}", ids.join(" ")));
                    e.map_err(|e| match (&crashed_worker, rerun_code) {
                        (Some(line), _) => classed(e, Class::Crash, line.clone()),
                        // Exit 1 is failed tests; anything else (2: a collection error, the
                        // node id pytest recorded is a module) ran no test to fail.
                        (None, code) if code != Some(1) => classed(
                            e,
                            Class::Error,
                            format!("pytest did not run the tests: {rerun_said}"),
                        ),
                        (None, _) => classed(
                            e,
                            Class::TestsFailedEverywhere,
                            format!("{failed_count}, again when re-run: {}", shown_ids(&ids)),
                        ),
                    })
                }
            }
        }
    };
    crate::fsx::write_atomic(
        &ctx.out.join("result.json"),
        serde_json::to_string_pretty(&result)?.as_bytes(),
    )?;
    outcome
}

/// `3 tests failed` (from the JUnit counts; "tests failed" when there are none).
fn counts_failed(c: &Counts) -> String {
    match c.failed {
        0 => "tests failed".into(),
        1 => "1 test failed".into(),
        n => format!("{n} tests failed"),
    }
}

/// The first three node ids, and how many more.
fn shown_ids(ids: &[String]) -> String {
    let mut s = ids.iter().take(3).cloned().collect::<Vec<_>>().join(" ");
    if ids.len() > 3 {
        s.push_str(&format!(" (and {} more)", ids.len() - 3));
    }
    s
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
    // The same checks as a base sdist's import: nothing lands outside `unpacked`.
    crate::pypi::unpack_sdist(&archive, &unpacked)?;
    let from = unpacked.join(&data.path);
    if !from.exists() {
        bail!("{} has no `{}`", data.sdist, data.path);
    }
    copy_tree(sh, ctx, &from, &tests.join(&data.to))?;
    let _ = std::fs::remove_dir_all(&unpacked);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_runner_brings_the_plugin_it_passes_options_to() {
        let yaml = "kind: setuptools\nimport: m\npytest: [tests]\ntest_requires: [pytest]\n";
        let mut t: Target = serde_yaml::from_str(yaml).unwrap();
        // `-n <cores>` needs pytest-xdist: a target that lists only pytest gets it.
        assert_eq!(suite_requires(&t), ["pytest", "pytest-xdist"]);
        for listed in [
            "pytest-xdist",
            "pytest_xdist==3.8.0",
            "PyTest-XDist[psutil]",
        ] {
            t.test_requires = vec!["pytest".into(), listed.into()];
            assert_eq!(suite_requires(&t), ["pytest", listed], "{listed}");
        }
        // One process: no `-n`, no plugin.
        t.test_requires = vec!["pytest".into()];
        t.pytest_workers = Some(1);
        assert_eq!(suite_requires(&t), ["pytest"]);
    }

    #[test]
    fn a_failed_test_is_rerun_once_and_classified() {
        let t = "tests/test_x.py::test_decompressor_concurrency";
        // (first run passed, failed ids, re-run passed) -> flaky, or failed
        type Case = (bool, Vec<String>, Option<bool>, Result<Vec<String>, ()>);
        let cases: Vec<Case> = vec![
            (true, ids(&[]), None, Ok(ids(&[]))),
            // Passed at the second try: flaky, not a failure.
            (false, ids(&[t]), Some(true), Ok(ids(&[t]))),
            // Failed again: a failure.
            (false, ids(&[t]), Some(false), Err(())),
            // Nothing recorded as failed (a collection error): no re-run, a failure.
            (false, ids(&[]), None, Err(())),
        ];
        for (passed, failed, rerun, want) in cases {
            let got = match after_first_run(passed, failed.clone()) {
                Next::Passed => Ok(vec![]),
                Next::Failed => Err(()),
                Next::Rerun(r) => {
                    assert_eq!(r, failed);
                    let passed = rerun.expect("a re-run was expected");
                    after_rerun(r, passed).map_err(|_| ())
                }
            };
            assert_eq!(got, want, "{passed} {failed:?} {rerun:?}");
        }
    }

    #[test]
    fn flaky_tests_do_not_count_as_failed() {
        let c = Counts {
            passed: 157,
            failed: 1,
            skipped: 2,
            flaky: 0,
        };
        let f = with_flaky(c, &ids(&["a::b"]));
        assert_eq!((f.passed, f.failed, f.flaky, f.skipped), (157, 0, 1, 2));
    }

    #[test]
    fn reads_pytests_last_failed() {
        let json =
            r#"{"tests/test_a.py::test_x[1-2]": true, "tests/test_b.py": true, "t::gone": false}"#;
        assert_eq!(
            last_failed(json),
            ["tests/test_a.py::test_x[1-2]", "tests/test_b.py"]
        );
        assert!(last_failed("").is_empty());
        assert!(last_failed("[1, 2").is_empty());
    }

    #[test]
    fn cell_results_round_trip_and_read_old_files() {
        let r = CellResult {
            counts: Counts {
                passed: 3,
                failed: 0,
                skipped: 0,
                flaky: 1,
            },
            flaky_tests: ids(&["t::x"]),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<CellResult>(&text).unwrap(), r);
        let old: CellResult =
            serde_json::from_str(r#"{"passed": 3, "failed": 1, "skipped": 0}"#).unwrap();
        assert_eq!((old.counts.failed, old.counts.flaky), (1, 0));
    }
}
