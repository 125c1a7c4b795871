//! The classification of every cell, end to end with the real recipes: stacks synced from a
//! temp upstream with real git (one with a patch that does not apply), the real wheel,
//! install and test recipes, and stand-ins for CPython, its venvs, pip, uv and pytest (a
//! shell script that behaves as the target named in its arguments asks). One fake target per
//! class, each reported in its class; then a run of one target reports the others' cached
//! results, and the reports of two runs merge.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object::write::{Object, StandardSection, Symbol, SymbolSection};
use object::{Architecture, BinaryFormat, Endianness, SymbolFlags, SymbolKind, SymbolScope};
use xshell::{Shell, cmd};

use super::classify::Class;
use super::graph::Graph;
use super::progress::{Mode, Progress};
use super::report::{Report, Row};
use super::step::StepId;
use super::tools::Tools;
use super::*;

/// CPython, a venv's python, pip and pytest, as one script; `@FLAVOUR@` is `ft` for the
/// free-threaded interpreter. What it does depends on the target its arguments name.
const FAKE_PYTHON: &str = r#"#!/bin/sh
FLAVOUR=@FLAVOUR@
all="$*"
# A cell's venv has no pip of its own (ensurepip costs seconds a cell): the environment's
# pip installs into it with `--python`.
if [ "$1" = -m ] && [ "$2" = venv ] && [ "$3" = --without-pip ]; then
    mkdir -p "$4/bin" && cp "$0" "$4/bin/python" && cp "$0" "$4/bin/python3"
    exit
fi
# The wheel step's layered venv asks where its site-packages is: a folder beside its bin/.
case "$all" in *"sysconfig.get_path('purelib')"*)
    d="${0%/bin/*}/site"; mkdir -p "$d" && echo "$d"; exit;;
esac
# A build-python role's wheel (`pip wheel --quiet ...`): the target's build variables must
# not reach it.
if [ "$1" = -m ] && [ "$2" = pip ] && [ "$3" = wheel ] && [ "$4" = --quiet ]; then
    if [ -n "$TARGET_ONLY" ]; then
        echo "fake role build: the target's build_env reached it" >&2
        exit 1
    fi
    echo "fakegen: note: abi3t is not supported by this generator" >&2
    mkdir -p "$8" && : > "$8/fakegen-1.0-py3-none-any.whl"
    exit
fi
if [ "$1" = -m ] && [ "$2" = pip ] && [ "$3" = install ] && [ "$4" = --quiet ]; then
    case "$all" in *fakegen-1.0-py3-none-any.whl*) exit;; esac
fi
if [ "$1" = -m ] && [ "$2" = pip ] && [ "$3" = wheel ]; then
    out=$7; src=$8; name=${src##*/}
    case "$name" in generated*) if [ -z "$TARGET_ONLY" ]; then
        echo "fake backend: the target's build_env did not reach its build" >&2
        exit 1
    fi;; esac
    if [ "$name" = generatedbad ]; then
        echo "error: the compiler ran out of memory" >&2
        exit 1
    fi
    if [ "$name" = buildrefused ]; then
        echo "fake-backend: abi3t is not supported" >&2
        echo "error: subprocess-exited-with-error" >&2
        exit 1
    fi
    cp "$src"/wheels/"$name"-*.whl "$out"/ && cp "$src"/wheels/"$name".json "$out"/listing.json
    exit
fi
if [ "$1" = -m ] && [ "$2" = pip ] && [ "$3" = --python ]; then
    [ -x "$4" ] || { echo "fake pip: no interpreter at $4" >&2; exit 2; }
    case "$all" in *refusedinstall-*)
        echo "ERROR: refusedinstall-1.0-cp315-abi3.abi3t-linux_x86_64.whl is not a supported wheel on this platform." >&2
        exit 1;;
    esac
    exit
fi
if [ "$1" = -c ]; then
    case "$2" in
    *zipfile*) cat "${3%/*}/listing.json";;
    *_is_gil_enabled*)
        case "$2" in *importerror*)
            echo "Traceback (most recent call last):" >&2
            echo "ModuleNotFoundError: No module named 'importerror._native'" >&2
            exit 1;;
        esac
        if [ "$FLAVOUR" = ft ]; then echo False; else echo True; fi;;
    esac
    exit
fi
if [ "$1" = -m ] && [ "$2" = pytest ]; then
    shift 2
    cache=; junit=; rerun=; scenario=
    while [ $# -gt 0 ]; do
        case "$1" in
        -o) shift; cache=${1#cache_dir=};;
        --junitxml=*) junit=${1#--junitxml=};;
        --last-failed) rerun=1;;
        scenario-*) scenario=$1;;
        esac
        shift
    done
    pass() {
        echo '<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="3"></testsuite></testsuites>' > "$junit"
        exit 0
    }
    fail() {
        mkdir -p "$cache/v/cache"
        echo '{"tests/test_t.py::test_b": true}' > "$cache/v/cache/lastfailed"
        echo '<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="0" tests="3"></testsuite></testsuites>' > "$junit"
        echo "FAILED tests/test_t.py::test_b - assert 1 == 2"
        exit 1
    }
    case "$scenario" in
    scenario-fail) fail;;
    scenario-ftfail) if [ "$FLAVOUR" = ft ]; then fail; fi; pass;;
    scenario-flaky) if [ -n "$rerun" ]; then pass; fi; fail;;
    scenario-crash) kill -SEGV $$;;
    *) pass;;
    esac
fi
echo "fake python: unexpected arguments: $all" >&2
exit 2
"#;

const FAKE_UV: &str = r#"#!/bin/sh
case "$*" in *refusedinstall-*)
    echo "  × No solution found when resolving dependencies:" >&2
    echo "  ╰─▶ Because refusedinstall has no wheels with a matching platform tag" >&2
    exit 1;;
esac
exit 0
"#;

const EXPERIMENT: &str = r#"version: 1
interpreters:
  - {name: "3.15", stack: cpython, version: "3.15", flavour: default}
  - {name: "3.15t", stack: cpython, version: "3.15", flavour: freethreaded}
toolchain: []
backends:
  - name: fake
    roles: []
    diagnoses:
      - when: "fake-backend: abi3t is not supported"
        say: "the fake backend has no abi3t support; its stack adds it"
wheels:
  build_on: "3.15t"
tests:
  installers: [pip, uv]
  suite: uv
"#;

const LIST: &str = "[function.PyLong_FromLong]\nadded = '3.2'\n[function._Py_Dealloc]\nadded = '3.2'\nabi_only = true\n";

/// An ELF object importing and exporting these symbols.
fn module(imports: &[&str], exports: &[&str]) -> Vec<u8> {
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = obj.section_id(StandardSection::Text);
    obj.append_section_data(text, &[0xc3; 8], 1);
    for (names, section) in [
        (imports, SymbolSection::Undefined),
        (exports, SymbolSection::Section(text)),
    ] {
        for name in names {
            obj.add_symbol(Symbol {
                name: name.as_bytes().to_vec(),
                value: 0,
                size: 0,
                kind: SymbolKind::Text,
                scope: SymbolScope::Dynamic,
                weak: false,
                section,
                flags: SymbolFlags::None,
            });
        }
    }
    obj.write().unwrap()
}

/// `wheels/<name>-1.0-<tags>.whl` with one module, and the listing the fake prints for it.
fn wheel(dir: &Path, name: &str, tags: &str, imports: &[&str]) {
    let file = format!("{name}-1.0-{tags}.whl");
    let parts: Vec<&str> = tags.split('-').collect();
    let wheel_text: String = parts[1]
        .split('.')
        .map(|abi| format!("Tag: {}-{abi}-{}\n", parts[0], parts[2]))
        .collect();
    let suffix = if parts[1].contains("abi3t") {
        "abi3t"
    } else {
        "cpython-315t-x86_64-linux-gnu"
    };
    let module_path = format!("{name}/_native.{suffix}.so");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(dir.join(&file)).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let wheel_member = format!("{name}-1.0.dist-info/WHEEL");
    zip.start_file(wheel_member.as_str(), opts).unwrap();
    zip.write_all(format!("Wheel-Version: 1.0\n{wheel_text}").as_bytes())
        .unwrap();
    zip.start_file(module_path.as_str(), opts).unwrap();
    zip.write_all(&module(imports, &["PyInit__native"]))
        .unwrap();
    zip.finish().unwrap();
    let listing = serde_json::json!({"files": [wheel_member, module_path], "wheel": wheel_text});
    std::fs::write(dir.join(format!("{name}.json")), listing.to_string()).unwrap();
}

/// Each fake target: its name, the pytest scenario, and the class its cells must get.
const TARGETS: &[&str] = &[
    "passing",
    "buildrefused",
    "wrongtag",
    "auditbad",
    "refusedinstall",
    "importerror",
    "crash",
    "ftfail",
    "failing",
    "flaky",
];

struct World {
    tmp: PathBuf,
    layout: Layout,
    sh: Shell,
}

impl Drop for World {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// A repository at `dir` with everything in it committed; returns the commit.
fn commit_all(sh: &Shell, dir: &Path) -> String {
    cmd!(
        sh,
        "git init --quiet --initial-branch=main --end-of-options {dir}"
    )
    .run()
    .unwrap();
    cmd!(sh, "git -C {dir} add --all").run().unwrap();
    cmd!(sh, "git -C {dir} commit --quiet -m Initial")
        .run()
        .unwrap();
    cmd!(sh, "git -C {dir} rev-parse HEAD").read().unwrap()
}

fn world() -> World {
    world_of("survey", TARGETS, &[])
}

/// A world whose temp folder is named by `label` (tests run in parallel), with a stack per
/// target and the `extra` stacks (name, `build:` section or "").
fn world_of(label: &str, targets: &[&str], extra: &[(&str, &str)]) -> World {
    let tmp = std::env::temp_dir().join(format!("xtask-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let sh = Shell::new().unwrap();
    sh.set_var("HOME", tmp.join("home"));
    sh.set_var("GIT_CONFIG_NOSYSTEM", "1");
    for (k, v) in [
        ("GIT_AUTHOR_NAME", "A U Thor"),
        ("GIT_AUTHOR_EMAIL", "author@example.org"),
        ("GIT_COMMITTER_NAME", "C O Mitter"),
        ("GIT_COMMITTER_EMAIL", "committer@example.org"),
        ("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z"),
        ("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z"),
    ] {
        sh.set_var(k, v);
    }
    // One upstream for every stack: the sdist's PKG-INFO, each target's wheel, and the
    // Stable ABI list the audit reads from the CPython stack's checkout.
    let up = tmp.join("upstream");
    std::fs::create_dir_all(up.join("wheels")).unwrap();
    std::fs::create_dir_all(up.join("Misc")).unwrap();
    std::fs::write(up.join("Misc/stable_abi.toml"), LIST).unwrap();
    std::fs::write(
        up.join("PKG-INFO"),
        "Metadata-Version: 2.1\nName: x\nVersion: 1.0\n",
    )
    .unwrap();
    std::fs::write(up.join("README"), "hello\n").unwrap();
    for t in targets.iter().chain(extra.iter().map(|(name, _)| name)) {
        let (tags, imports): (&str, &[&str]) = match *t {
            "wrongtag" => ("cp315-cp315t-linux_x86_64", &["PyLong_FromLong"]),
            "auditbad" => ("cp315-abi3.abi3t-linux_x86_64", &["_Py_Dealloc"]),
            _ => ("cp315-abi3.abi3t-linux_x86_64", &["PyLong_FromLong"]),
        };
        wheel(&up.join("wheels"), t, tags, imports);
    }
    let base = commit_all(&sh, &up);
    let root = tmp.join("root");
    let stack = |name: &str, series: &str, target: Option<&str>| {
        let dir = root.join("patches").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let build = match target {
            Some(scenario) => format!(
                "build:\n  target:\n    kind: fake\n    import: {name}\n    test_requires: [pytest]\n    pytest: [{scenario}]\n"
            ),
            None => String::new(),
        };
        std::fs::write(
            dir.join("stack.yaml"),
            format!(
                "# test\nupstream: file://{}\ntrack: main\nbase: {base}\nversion: 1\n{series}{build}",
                up.display()
            ),
        )
        .unwrap();
        dir
    };
    stack("cpython", "series: []\n", None);
    for (name, build) in extra {
        let dir = stack(name, "series: []\n", None);
        let file = dir.join("stack.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{text}{build}")).unwrap();
    }
    for t in targets {
        let scenario = match *t {
            "crash" => "scenario-crash",
            "ftfail" => "scenario-ftfail",
            "failing" => "scenario-fail",
            "flaky" => "scenario-flaky",
            _ => "scenario-pass",
        };
        stack(t, "series: []\n", Some(scenario));
    }
    // A patch whose context is not in the upstream: `git am` refuses it.
    let dir = stack(
        "badpatch",
        "series:\n  - Change-the-readme.patch\n",
        Some("scenario-pass"),
    );
    std::fs::write(
        dir.join("Change-the-readme.patch"),
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: A U Thor <author@example.org>\nDate: Thu, 1 Jan 2026 00:00:00 +0000\nSubject: [PATCH] Change the readme\n\nUpstream-Status: Pending\n---\n README | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n\ndiff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-goodbye\n+hello again\n-- \n2.47.0\n\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("xtask")).unwrap();
    std::fs::write(root.join("xtask/constraints.txt"), "pytest==9.2.0\n").unwrap();
    World {
        tmp,
        layout: Layout { root },
        sh,
    }
}

/// The fake interpreter (and, for `env/`, the uv next to it) in a step's output.
fn fake_interpreter(out: &Path, free_threaded: bool, uv: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bin = out.join("bin");
    std::fs::create_dir_all(&bin)?;
    let flavour = if free_threaded { "ft" } else { "default" };
    let mut files = vec![
        ("python3", FAKE_PYTHON.replace("@FLAVOUR@", flavour)),
        ("python", FAKE_PYTHON.replace("@FLAVOUR@", flavour)),
    ];
    if uv {
        files.push(("uv", FAKE_UV.to_string()));
    }
    for (name, text) in files {
        std::fs::write(bin.join(name), text)?;
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// build-all's own path (sync, sources, graph, actions, runner, report) with the
/// interpreters and environments replaced by the fakes.
fn build_all(w: &World, only: &[String]) -> (Report, Vec<String>) {
    build_all_of(w, EXPERIMENT, only)
}

fn build_all_of(w: &World, experiment: &str, only: &[String]) -> (Report, Vec<String>) {
    let e = crate::manifest::experiment::parse("experiment.yaml", experiment).unwrap();
    let (projects, unsynced) = sync_all(&w.sh, &w.layout).unwrap();
    let env = recipes::Env {
        root: w.layout.root.clone(),
        work: w.layout.xtask_target().join("work"),
        constraints: w.layout.root.join("xtask/constraints.txt"),
    };
    let tools = Tools::new("rustc 1.95.0", "cc 12", "pytest==9.2.0\n").unwrap();
    let (trees, targets) = sources(&w.layout, &projects, &e).unwrap();
    let specs = experiment::specs(&e, &trees, &tools, &targets).unwrap();
    let mut actions = experiment::actions(&Arc::new(env), &specs, &e, &targets).unwrap();
    for i in &e.interpreters {
        let ft = i.flavour.free_threaded();
        actions.insert(
            StepId::CPython(i.name.clone()),
            Box::new(move |ctx| fake_interpreter(&ctx.out, ft, false)),
        );
        actions.insert(
            StepId::Env(i.name.clone()),
            Box::new(move |ctx| fake_interpreter(&ctx.out, ft, true)),
        );
    }
    let graph = Graph::new(specs).unwrap();
    let selection = graph.select(only, None).unwrap();
    let target = w.layout.xtask_target();
    let opts = run::Options {
        jobs: 2,
        keep_going: false,
        cache: target.join("cache"),
        logs: target.join("logs"),
    };
    let mut progress = Progress::new(Mode::Quiet);
    let summary = run::execute(&graph, &actions, &selection, &opts, &mut progress).unwrap();
    let report =
        matrix::make_report(&summary, &graph, &e, &projects, &targets, &unsynced, &tools).unwrap();
    let failed = summary
        .failed()
        .iter()
        .map(|f| f.name.to_string())
        .collect();
    (report, failed)
}

fn row<'a>(
    r: &'a Report,
    target: &str,
    interpreter: &str,
    check: &str,
    installer: &str,
) -> &'a Row {
    r.matrix
        .iter()
        .find(|x| {
            x.target == target
                && x.interpreter == interpreter
                && x.check == check
                && x.installer == installer
        })
        .unwrap_or_else(|| panic!("no row {target} {interpreter} {check} {installer}"))
}

fn class_of(r: &Row) -> Option<&'static str> {
    r.class.map(Class::as_str)
}

/// (target, interpreter, check, installer, outcome, class, words of the reason)
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
);

#[test]
fn every_failure_is_reported_in_its_class() {
    let w = world();
    let (report, failed) = build_all(&w, &[]);
    let md = report.markdown();
    // (target, interpreter, check, installer, outcome, class, words of the reason)
    #[rustfmt::skip]
    let expected: &[Expected] = &[
        ("passing", "3.15", "tests", "uv", "passed", None, ""),
        ("passing", "3.15t", "install", "pip", "passed", None, ""),
        ("passing", "3.15t", "audit", "-", "passed", None, ""),
        ("badpatch", "3.15", "tests", "uv", "not-run", Some("sync"), "patches/badpatch/ does not sync"),
        ("buildrefused", "3.15t", "audit", "-", "failed", Some("build-refused"), "the fake backend has no abi3t support"),
        ("buildrefused", "3.15", "tests", "uv", "not-run", Some("build-refused"), "not run: `buildrefused/wheel` failed"),
        ("wrongtag", "3.15t", "audit", "-", "failed", Some("wrong-tags"), "file name has abi tag `cp315t`, expected `abi3.abi3t`"),
        ("auditbad", "3.15t", "audit", "-", "failed", Some("audit-violation"), "_Py_Dealloc"),
        ("refusedinstall", "3.15", "install", "pip", "failed", Some("install-refused"), "pip refused to install on 3.15: ERROR: refusedinstall-1.0"),
        ("refusedinstall", "3.15t", "install", "uv", "failed", Some("install-refused"), "uv refused to install on 3.15t: × No solution found"),
        ("importerror", "3.15", "install", "uv", "failed", Some("import-error"), "ModuleNotFoundError: No module named 'importerror._native'"),
        ("crash", "3.15t", "tests", "uv", "failed", Some("crash"), "`python -m pytest` was killed by a signal"),
        ("ftfail", "3.15t", "tests", "uv", "failed", Some("tests-failed-some-builds"), "tests fail on 3.15t only; they pass on 3.15"),
        ("ftfail", "3.15", "tests", "uv", "passed", None, ""),
        ("failing", "3.15", "tests", "uv", "failed", Some("tests-failed-everywhere"), "tests fail on every interpreter (3.15, 3.15t)"),
        ("flaky", "3.15", "tests", "uv", "passed", Some("flaky"), "tests/test_t.py::test_b"),
    ];
    for (t, i, check, installer, outcome, class, words) in expected {
        let r = row(&report, t, i, check, installer);
        assert_eq!(
            (r.outcome.as_str(), class_of(r)),
            (*outcome, *class),
            "{t} {i} {check} {installer}: {r:?}"
        );
        let reason = r.reason.as_deref().unwrap_or("");
        assert!(reason.contains(words), "{t} {i} {check}: {reason}\n{md}");
        assert!(!r.cached, "{r:?}");
    }
    assert!(
        report
            .matrix
            .iter()
            .filter(|r| r.target == "passing")
            .all(|r| r.class.is_none())
    );
    // The survey: one row per target, the class where it stopped.
    let survey = |t: &str| report.survey.iter().find(|s| s.target == t).unwrap();
    assert_eq!(
        survey("passing").results,
        [
            ("3.15".into(), "passed (3 tests)".into()),
            ("3.15t".into(), "passed (3 tests)".into())
        ]
    );
    assert_eq!(survey("passing").stacks, [("passing".to_string(), 0)]);
    assert_eq!(
        survey("passing").wheel.as_deref(),
        Some("cp315-abi3.abi3t-linux_x86_64")
    );
    assert_eq!(
        survey("ftfail").results[1].1,
        "tests-failed-some-builds (1 failed)"
    );
    assert_eq!(
        survey("refusedinstall").results[0].1,
        "install-refused (pip)"
    );
    assert_eq!(survey("buildrefused").audit, "build-refused");
    assert_eq!(survey("flaky").results[0].1, "passed (2 tests), 1 flaky");
    assert_eq!(survey("badpatch").audit, "sync");
    assert!(md.starts_with("# build-all report"), "{md}");
    assert!(
        md.contains(
            "## survey\n\n| target | backend | stacks (patches) | wheel | audit | 3.15 | 3.15t |"
        ),
        "{md}"
    );
    assert!(
        md.contains("11 targets: 2 pass on every interpreter, 9 do not."),
        "{md}"
    );
    assert!(md.contains("### crash (2): a crash (signal)\n\n- crash (tests on 3.15 (uv), tests on 3.15t (uv)): `python -m pytest` was killed by a signal"), "{md}");
    assert!(md.find("### sync").unwrap() < md.find("### build-refused").unwrap());
    // The run's failures are this run's failed steps (leaves and all).
    assert!(
        failed.contains(&"crash/test/3.15t".to_string()),
        "{failed:?}"
    );
    assert!(
        !failed.iter().any(|f| f.starts_with("passing/")),
        "{failed:?}"
    );

    // A run of one target: the others' cells are their earlier results, marked cached.
    let (again, failed) = build_all(&w, &["passing".into()]);
    assert!(failed.is_empty(), "{failed:?}");
    let crash = row(&again, "crash", "3.15t", "tests", "uv");
    assert_eq!(
        (crash.outcome.as_str(), class_of(crash), crash.cached),
        ("failed", Some("crash"), true)
    );
    let ok = row(&again, "ftfail", "3.15", "tests", "uv");
    assert_eq!((ok.outcome.as_str(), ok.cached), ("passed", true));
    assert!(
        again
            .markdown()
            .contains("| crash | 3.15t | tests | uv | failed: crash (cached) |")
    );
    assert_eq!(again.survey.len(), 11);

    // Two jobs' reports merge: each cell from the report that ran it.
    let mut only_passing = again.clone();
    for r in only_passing
        .matrix
        .iter_mut()
        .filter(|r| r.target != "passing")
    {
        r.outcome = "not-run".into();
        r.class = None;
        r.cached = false;
    }
    let merged = Report::merge(vec![
        ("a".into(), only_passing),
        ("b".into(), report.clone()),
    ])
    .unwrap();
    assert_eq!(merged.matrix.len(), report.matrix.len());
    let m = row(&merged, "ftfail", "3.15t", "tests", "uv");
    assert_eq!(class_of(m), Some("tests-failed-some-builds"));
    // A blocked cell that says why wins over a bare not-run row of another job's report.
    let blocked = row(&merged, "buildrefused", "3.15", "tests", "uv");
    assert_eq!(class_of(blocked), Some("build-refused"), "{blocked:?}");
    let mut other_stack = report.clone();
    other_stack.stacks[0].series_digest = "0".repeat(64);
    let err = Report::merge(vec![
        ("a".into(), report.clone()),
        ("b".into(), other_stack),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("another `"), "{err}");
    let s = merged.survey.iter().find(|s| s.target == "crash").unwrap();
    assert_eq!(s.results[1].1, "crash");
    let mut other_tools = report.clone();
    other_tools.tools[0].1 = "rustc 1.96.0".into();
    let err = Report::merge(vec![
        ("a".into(), report.clone()),
        ("b".into(), other_tools),
    ])
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("`b` was made with other tools than `a` (rustc rustc 1.96.0)"),
        "{err}"
    );
}

const GENERATED: &str = "build:\n  target:\n    kind: generating\n    import: generated\n    build_env: {TARGET_ONLY: \"1\"}\n    test_requires: [pytest]\n    pytest: [scenario-pass]\n";

/// A `build-python` role is built in the wheel step, in a shell of its own: the target's
/// `build_env` reaches the target's build and not the role's (the stand-in python fails
/// either way round), and the role's tree is in the wheel's key.
#[test]
fn a_build_role_is_built_apart_from_the_target() {
    let w = world_of(
        "build-role",
        &[],
        &[
            ("fakegen", ""),
            ("generated", GENERATED),
            ("generatedbad", GENERATED),
        ],
    );
    let experiment = EXPERIMENT
        .replace(
            "toolchain: []\n",
            "toolchain:\n  - {role: fakegen, stack: fakegen, kind: build-python}\n",
        )
        .replace(
            "backends:\n",
            "backends:\n  - name: generating\n    roles: [fakegen]\n    diagnoses: [{when: \"abi3t is not supported by this generator\", say: \"the generator is too old\"}]\n",
        );
    let only = ["generated/wheel".into(), "generatedbad/wheel".into()];
    let (report, failed) = build_all_of(&w, &experiment, &only);
    assert_eq!(failed, ["generatedbad/wheel"], "{}", report.markdown());
    // Its diagnosis is read from the target's build, not from the role's before it.
    let bad = row(&report, "generatedbad", "3.15t", "audit", "-");
    let reason = bad.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("ran out of memory") && !reason.contains("too old"),
        "{reason}"
    );
    let audit = row(&report, "generated", "3.15t", "audit", "-");
    assert_eq!(audit.outcome, "passed", "{audit:?}");
    let log =
        std::fs::read_to_string(w.layout.xtask_target().join("logs/generated-wheel.log")).unwrap();
    assert!(log.contains("fakegen-1.0-py3-none-any.whl"), "{log}");
}
