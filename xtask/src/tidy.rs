//! Repository rules checked as ordinary tests: formatting of module docs, the lockfile's
//! security floor, and a layout that tells the truth.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `xtask/src`, recursively.
fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("xtask/src")];
    while let Some(dir) = dirs.pop() {
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_module_says_what_it_owns() {
    for path in sources() {
        {
            let text = fs_err::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("//! "),
                "{} must open with a `//!` line saying what it owns",
                path.display()
            );
        }
    }
}

#[test]
fn lockfile_has_the_fixed_libgit2() {
    // CVE-2026-5917 is fixed in libgit2-sys 0.18.8.
    let lock = fs_err::read_to_string(root().join("Cargo.lock")).unwrap();
    let mut lines = lock.lines();
    let mut found = false;
    while let Some(line) = lines.next() {
        if line == "name = \"libgit2-sys\"" {
            let version = lines.next().unwrap().trim_start_matches("version = \"");
            let nums: Vec<u64> = version
                .split(['.', '+', '"'])
                .take(3)
                .map(|n| n.parse().unwrap())
                .collect();
            assert!(
                nums >= vec![0, 18, 8],
                "libgit2-sys {version} is older than 0.18.8 (CVE-2026-5917)"
            );
            found = true;
        }
    }
    assert!(found, "libgit2-sys missing from Cargo.lock");
}

#[test]
fn no_subprocess_outside_xshell() {
    for path in sources() {
        let text = fs_err::read_to_string(&path).unwrap();
        let needle = ["std::process::", "Command"].concat();
        assert!(
            !text.contains(&needle),
            "{}: run programs through xshell's cmd!",
            path.display()
        );
        assert!(
            !text.contains(concat!("\"sh", " -c")),
            "{}: no shell command lines",
            path.display()
        );
    }
}

#[test]
fn workspace_excludes_checkouts_and_build_copies() {
    // Without this, cargo inside `checkouts/maturin` or a build copy under `target/` thinks
    // it belongs to this workspace and refuses to build.
    let manifest = fs_err::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"exclude = ["checkouts", "target"]"#),
        "Cargo.toml must exclude checkouts and target"
    );
}
