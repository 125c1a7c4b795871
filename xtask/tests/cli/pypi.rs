//! PyPI sources: an sdist from a `file://` index, checked and imported reproducibly.

use std::path::Path;

use xshell::cmd;

use crate::harness::*;

/// Makes `pkg-1.0.tar.gz` (with a `.gitignore` that would hide its package) and an index
/// for it; returns (index URL, sha256).
fn make_index(w: &World) -> (String, String) {
    let files: &[(&str, &str)] = &[
        ("setup.py", "print('hi')\n"),
        ("pkg/__init__.py", "x = 1\n"),
        (".gitignore", "pkg/\n"),
    ];
    let (index, shas) = make_releases(w, &[("1.0", files)]);
    (index, shas[0].clone())
}

fn sha256(path: &Path) -> String {
    let sh = xshell::Shell::new().unwrap();
    let out = cmd!(sh, "sha256sum {path}").read().unwrap();
    out.split(' ').next().unwrap().to_string()
}

fn write_pypi_stack(w: &World, sha: &str) {
    std::fs::create_dir_all(w.stack_dir("pkg")).unwrap();
    let text = format!(
        "upstream:\n  pypi: pkg\ntrack: \">=1\"\nbase:\n  version: \"1.0\"\n  sha256: {sha}\nversion: 1\nseries: []\n"
    );
    std::fs::write(w.stack_dir("pkg").join("stack.yaml"), text).unwrap();
}

#[test]
fn sdist_is_downloaded_checked_and_imported_reproducibly() {
    let w = World::new("pypi");
    let (index, sha) = make_index(&w);
    write_pypi_stack(&w, &sha);
    let run = w.xtask_env(&["sync"], "XTASK_INDEX_URL", &index);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let co = w.checkout("pkg");
    assert_eq!(
        std::fs::read_to_string(co.join("pkg/__init__.py")).unwrap(),
        "x = 1\n",
        "ignored files are imported too"
    );
    let first = w.head("pkg");
    assert_eq!(
        w.git(&co, &["log", "-1", "--format=%an %ad %s"]),
        "xtask Sat Jan 1 00:00:00 2000 +0000 Import pkg 1.0 sdist from PyPI"
    );
    // No network needed once imported.
    assert_eq!(w.ok(&["sync"]).stdout, "pkg: up to date\n");
    // Another machine, same sdist: same commit id.
    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    std::fs::remove_dir_all(w.root.join("target")).unwrap();
    let run = w.xtask_env(&["sync"], "XTASK_INDEX_URL", &index);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(w.head("pkg"), first);
    // And patches on top of it save and sync like any other stack.
    w.commit_in_checkout("pkg", "pkg/__init__.py", "x = 2\n", "Bump x");
    w.ok(&["save", "pkg"]);
    assert!(w.stack_dir("pkg").join("Bump-x.patch").exists());
    assert_eq!(w.ok(&["sync"]).stdout, "pkg: up to date\n");
}

#[test]
fn sdist_with_the_wrong_hash_is_refused_and_not_kept() {
    let w = World::new("pypi-hash");
    let (index, _) = make_index(&w);
    let wrong = "0".repeat(64);
    write_pypi_stack(&w, &wrong);
    let run = w.xtask_env(&["sync"], "XTASK_INDEX_URL", &index);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("but the stack pins {wrong}")),
        "{}",
        run.stderr
    );
    let cached = w.root.join("target/xtask/sdists").join(&wrong);
    let left: Vec<_> = std::fs::read_dir(&cached)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert_eq!(left, vec![0], "no file kept in {}", cached.display());
}

/// An index with several releases of `pkg`, each a list of (file, content).
fn make_releases(w: &World, releases: &[(&str, &[(&str, &str)])]) -> (String, Vec<String>) {
    let files_dir = w.tmp.join("index/files");
    std::fs::create_dir_all(&files_dir).unwrap();
    let mut entries = Vec::new();
    let mut shas = Vec::new();
    for (version, files) in releases {
        let parent = w.tmp.join(format!("sdist-{version}"));
        let src = parent.join(format!("pkg-{version}"));
        for (f, text) in *files {
            w.write(&src, f, text);
        }
        let archive = files_dir.join(format!("pkg-{version}.tar.gz"));
        let sh = &w.sh;
        let name = format!("pkg-{version}");
        cmd!(
            sh,
            "tar --sort=name --mtime=@0 --owner=0 --group=0 -czf {archive} -C {parent} {name}"
        )
        .run()
        .unwrap();
        let sha = sha256(&archive);
        entries.push(format!(
            r#"{{"filename":"pkg-{version}.tar.gz","url":"../../files/pkg-{version}.tar.gz","hashes":{{"sha256":"{sha}"}}}}"#
        ));
        shas.push(sha);
    }
    let json = format!(
        r#"{{"meta":{{"api-version":"1.1"}},"files":[{}]}}"#,
        entries.join(",")
    );
    w.write(&w.tmp.join("index/simple/pkg"), "index.json", &json);
    (
        format!("file://{}", w.tmp.join("index/simple").display()),
        shas,
    )
}

#[test]
fn update_follows_the_track_specifier_to_the_newest_sdist() {
    let w = World::new("pypi-update");
    let lines = numbered_lines(1, 20);
    let fixed = lines.replace("line 3\n", "line three\n");
    let (index, shas) = make_releases(
        &w,
        &[
            ("1.0", &[("pkg/core.py", &lines), ("pkg/extra.py", &lines)]),
            ("1.1", &[("pkg/core.py", &fixed), ("pkg/extra.py", &lines)]),
            ("2.0", &[("pkg/core.py", "rewritten\n")]),
        ],
    );
    std::fs::create_dir_all(w.stack_dir("pkg")).unwrap();
    let text = format!(
        "upstream:\n  pypi: pkg\ntrack: \">=1.0,<2\"\nbase:\n  version: \"1.0\"\n  sha256: {}\nversion: 1\nseries: []\n",
        shas[0]
    );
    std::fs::write(w.stack_dir("pkg").join("stack.yaml"), text).unwrap();
    let with_index = |args: &[&str]| {
        let run = w.xtask_env(args, "XTASK_INDEX_URL", &index);
        assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.stdout, run.stderr);
        run
    };
    with_index(&["sync"]);
    // One patch 1.1 absorbs, one it leaves alone.
    w.commit_in_checkout("pkg", "pkg/core.py", &fixed, "Fix line three");
    w.commit_in_checkout(
        "pkg",
        "pkg/extra.py",
        &lines.replace("line 9\n", "line nine\n"),
        "Fix line nine",
    );
    w.ok(&["save", "pkg"]);
    let dry = with_index(&["sync", "--update", "--dry-run"]);
    assert!(
        dry.stdout.contains("Fix-line-three.patch: absorbed"),
        "{}",
        dry.stdout
    );
    let run = with_index(&["sync", "--update"]);
    assert!(
        run.stdout.contains("1 patch(es) kept, 1 dropped"),
        "{}",
        run.stdout
    );
    let stack = std::fs::read_to_string(w.stack_dir("pkg").join("stack.yaml")).unwrap();
    assert!(
        stack.contains(&format!(
            "base:\n  version: \"1.1\"\n  sha256: {}\nversion: 3\n",
            shas[1]
        )),
        "{stack}"
    );
    let log = std::fs::read_to_string(w.stack_dir("pkg").join("CHANGELOG.md")).unwrap();
    assert!(
        log.contains("New upstream release.") && log.contains("-> 1.1 ("),
        "{log}"
    );
    assert_eq!(w.ok(&["sync"]).stdout, "pkg: up to date\n");
    assert!(
        with_index(&["sync", "--update"])
            .stdout
            .contains("already on the newest")
    );
}
