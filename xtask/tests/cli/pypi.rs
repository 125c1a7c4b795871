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
    // An sdist import keeps its own objects: no shared store, no alternates.
    assert!(!w.root.join("checkouts/.store").exists());
    assert!(!co.join(".git/objects/info/alternates").exists());
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
    // No file and no empty folder: the cache holds only what matched its pin.
    assert_eq!(cache_contents(&w), Vec::<String>::new());
}

/// Everything under `target/xtask/sdists/` but the download locks.
fn cache_contents(w: &World) -> Vec<String> {
    let cache = w.root.join("target/xtask/sdists");
    let mut out = Vec::new();
    let mut dirs = vec![cache.clone()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(&cache).unwrap().display().to_string();
            if path.is_dir() {
                dirs.push(path);
            } else if rel.ends_with(".lock") {
                continue;
            }
            out.push(rel);
        }
    }
    out.sort();
    out
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

/// A `.tar.gz` of `(name, content)` members, names written raw into the headers (no checks),
/// so a test can serve what an attacker would.
fn crafted(members: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, text) in members {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A `file://` index serving `pkg-<version>.tar.gz` for each (version, archive, extra JSON
/// fields of its entry); returns (index URL, sha256s).
fn serve(w: &World, releases: &[(&str, &[u8], &str)]) -> (String, Vec<String>) {
    use sha2::Digest;
    let files_dir = w.tmp.join("index/files");
    std::fs::create_dir_all(&files_dir).unwrap();
    let mut entries = Vec::new();
    let mut shas = Vec::new();
    for (version, bytes, extra) in releases {
        std::fs::write(files_dir.join(format!("pkg-{version}.tar.gz")), bytes).unwrap();
        let sha: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        entries.push(format!(
            r#"{{"filename":"pkg-{version}.tar.gz","url":"../../files/pkg-{version}.tar.gz","hashes":{{"sha256":"{sha}"}}{extra}}}"#
        ));
        shas.push(sha);
    }
    let json = format!(r#"{{"files":[{}]}}"#, entries.join(","));
    w.write(&w.tmp.join("index/simple/pkg"), "index.json", &json);
    (
        format!("file://{}", w.tmp.join("index/simple").display()),
        shas,
    )
}

#[test]
fn crafted_sdists_are_refused_and_write_nothing_outside_the_checkout() {
    let good = crafted(&[("pkg-1.0/setup.py", "x = 1\n")]);
    for (n, hostile) in [
        "//{victim}",
        "/../{victim_name}",
        "/.git/hooks/post-checkout",
    ]
    .iter()
    .enumerate()
    {
        let w = World::new("pypi-crafted");
        let victim = w.tmp.join(format!("victim-{n}"));
        let victim_name = victim.file_name().unwrap().to_str().unwrap();
        let member = format!(
            "pkg-1.1{}",
            hostile
                .replace("{victim}", victim.to_str().unwrap().trim_start_matches('/'))
                .replace("{victim_name}", victim_name)
        );
        let bad = crafted(&[("pkg-1.1/setup.py", "x = 2\n"), (&member, "pwned\n")]);
        let (index, shas) = serve(&w, &[("1.0", &good, ""), ("1.1", &bad, "")]);
        // The hostile release pinned as the base: sync refuses it.
        write_pypi_stack(&w, &shas[1]);
        std::fs::write(
            w.stack_dir("pkg").join("stack.yaml"),
            std::fs::read_to_string(w.stack_dir("pkg").join("stack.yaml"))
                .unwrap()
                .replace("version: \"1.0\"", "version: \"1.1\""),
        )
        .unwrap();
        let run = w.xtask_env(&["sync"], "XTASK_INDEX_URL", &index);
        assert_eq!(run.code, 1, "{member}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("/{}/pkg-1.1.tar.gz`", shas[1]))
                && run.stderr.contains(&format!("member `{member}`")),
            "{member}: {}",
            run.stderr
        );
        assert!(!victim.exists(), "{member} wrote {}", victim.display());
        // The hostile release as the update (its sha256 from the index): refused even in a
        // dry run, which also unpacks it.
        write_pypi_stack(&w, &shas[0]);
        let run = w.xtask_env(&["sync"], "XTASK_INDEX_URL", &index);
        assert_eq!(run.code, 0, "{}", run.stderr);
        for args in [
            &["sync", "--update", "--dry-run"][..],
            &["sync", "--update"],
        ] {
            let run = w.xtask_env(args, "XTASK_INDEX_URL", &index);
            assert_ne!(run.code, 0, "{args:?} {member}: {}", run.stdout);
            assert!(
                run.stderr.contains(&format!("member `{member}`")),
                "{}",
                run.stderr
            );
            assert!(
                !victim.exists(),
                "{args:?} {member} wrote {}",
                victim.display()
            );
        }
        assert!(!w.checkout("pkg").join(".git/hooks/post-checkout").exists());
        assert_eq!(w.ok(&["sync"]).stdout, "pkg: up to date\n");
    }
}

#[test]
fn downloads_are_capped_by_the_declared_size_or_the_maximum() {
    let archive = crafted(&[("pkg-1.0/setup.py", "x = 1\n")]);
    let len = archive.len();
    let w = World::new("pypi-size");
    // (extra JSON of the index entry, what the refusal says)
    let cases = [
        (
            r#","size":10"#.to_string(),
            format!("is {len} bytes, more than 10 bytes"),
        ),
        (
            format!(r#","size":{}"#, len + 1),
            format!("is {len} bytes, but the index declares {}", len + 1),
        ),
        (
            r#","size":1000000000000"#.to_string(),
            "more than the 256 MiB an sdist may have".to_string(),
        ),
    ];
    for (extra, says) in &cases {
        let (index, shas) = serve(&w, &[("1.0", &archive, extra)]);
        write_pypi_stack(&w, &shas[0]);
        let run = w.xtask_env(&["sync"], "XTASK_INDEX_URL", &index);
        assert_eq!(run.code, 1, "{extra}: {}", run.stderr);
        assert!(
            run.stderr.contains(says.as_str()),
            "{extra}: {}",
            run.stderr
        );
        assert_eq!(cache_contents(&w), Vec::<String>::new(), "{extra}");
    }
    // No declared size: the maximum. A sparse file costs no disk and no time to make.
    let (index, shas) = serve(&w, &[("1.0", &archive, "")]);
    let big = w.tmp.join("index/files/pkg-1.0.tar.gz");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(257 << 20)
        .unwrap();
    let run = w.xtask_env(&["sync"], "XTASK_INDEX_URL", &index);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("more than 256 MiB"), "{}", run.stderr);
    assert_eq!(cache_contents(&w), Vec::<String>::new());
    // A partial file an interrupted run left is removed by the next download.
    std::fs::write(&big, &archive).unwrap();
    let cache = w.root.join("target/xtask/sdists");
    std::fs::write(cache.join(format!(".{}.part", shas[0])), "partial").unwrap();
    std::fs::write(cache.join(format!(".{}.part", "e".repeat(64))), "partial").unwrap();
    let run = w.xtask_env(&["sync"], "XTASK_INDEX_URL", &index);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        cache_contents(&w),
        vec![shas[0].clone(), format!("{}/pkg-1.0.tar.gz", shas[0])]
    );
}

#[test]
fn an_update_of_a_stack_without_patches_prints_no_range_diff_usage() {
    let w = World::new("pypi-empty-series");
    let (index, shas) = make_releases(
        &w,
        &[
            ("1.0", &[("pkg/a.py", "a = 1\n")]),
            ("1.1", &[("pkg/a.py", "a = 2\n")]),
        ],
    );
    write_pypi_stack(&w, &shas[0]);
    let run = w.xtask_env(&["sync"], "XTASK_INDEX_URL", &index);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.xtask_env(&["sync", "--update"], "XTASK_INDEX_URL", &index);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("usage: git range-diff"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("fatal"), "{}", run.stderr);
    assert!(w.read_stack("pkg").contains("version: \"1.1\""));
}
