//! `sync`: fresh checkouts, idempotence, and following changes to the stack.

use crate::harness::*;

#[test]
fn fresh_sync_applies_one_commit_per_patch_on_its_own_branch() {
    let (w, base) = world_with_three_patches("fresh");
    // A second root with the same stack files gets a brand-new checkout.
    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    let run = w.ok(&["sync"]);
    assert!(
        run.stdout.contains("demo: synced 3 patches onto"),
        "{}",
        run.stdout
    );
    let co = w.checkout("demo");
    assert_eq!(w.git(&co, &["rev-parse", "refs/xtask/base"]), base);
    assert_eq!(w.git(&co, &["symbolic-ref", "--short", "HEAD"]), "patched");
    assert_eq!(
        w.stack_subjects("demo"),
        ["Spell out line five", "Add a NEWS file", "Extend the guide"]
    );
    assert_eq!(std::fs::read_to_string(co.join("NEWS")).unwrap(), "news\n");
    assert_eq!(w.git(&co, &["status", "--porcelain"]), "");
}

#[test]
fn applying_the_same_series_gives_the_same_commit_ids() {
    let (w, _) = world_with_three_patches("same-ids");
    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    w.ok(&["sync"]);
    let first = w.head("demo");
    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    w.ok(&["sync"]);
    assert_eq!(w.head("demo"), first);
}

#[test]
fn second_sync_does_nothing_and_says_so() {
    let (w, _) = world_with_three_patches("idempotent");
    let head = w.head("demo");
    let reflog = w.git(&w.checkout("demo"), &["reflog", "--format=%H"]);
    let run = w.ok(&["sync"]);
    assert_eq!(run.stdout, "demo: up to date\n");
    assert_eq!(w.head("demo"), head);
    assert_eq!(
        w.git(&w.checkout("demo"), &["reflog", "--format=%H"]),
        reflog,
        "nothing moved"
    );
}

#[test]
fn sync_follows_a_changed_series() {
    let (w, _) = world_with_three_patches("follow");
    // Someone else removed the last patch from the series (say, by `git pull`).
    let text = w
        .read_stack("demo")
        .replace("  - Extend-the-guide.patch\n", "");
    std::fs::write(w.stack_dir("demo").join("stack.yaml"), text).unwrap();
    std::fs::remove_file(w.stack_dir("demo").join("Extend-the-guide.patch")).unwrap();
    let run = w.ok(&["sync"]);
    assert!(run.stdout.contains("synced 2 patches"), "{}", run.stdout);
    assert_eq!(
        w.stack_subjects("demo"),
        ["Spell out line five", "Add a NEWS file"]
    );
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
}

#[test]
fn sync_fetches_a_base_it_does_not_have() {
    let (w, _) = world_with_three_patches("fetch");
    w.write(&w.upstream.clone(), "docs/other.txt", "other\n");
    let new_base = w.commit_all(&w.upstream.clone(), "Upstream moves on");
    let text = w.read_stack("demo");
    let old_base = w.git(&w.checkout("demo"), &["rev-parse", "refs/xtask/base"]);
    std::fs::write(
        w.stack_dir("demo").join("stack.yaml"),
        text.replace(&old_base, &new_base),
    )
    .unwrap();
    let run = w.ok(&["sync"]);
    assert!(run.stderr.contains("fetching `main`"), "{}", run.stderr);
    assert_eq!(
        w.git(&w.checkout("demo"), &["rev-parse", "refs/xtask/base"]),
        new_base
    );
    assert_eq!(w.stack_subjects("demo").len(), 3);
    let status = w.ok(&["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["stacks"][0]["checkout"], "clean");
    assert_eq!(doc["stacks"][0]["behind"], 0);
    assert_eq!(doc["stacks"][0]["patches"], 3);
}

#[test]
fn status_counts_upstream_commits_after_the_base() {
    let (w, _) = world_with_three_patches("behind");
    for i in 0..2 {
        w.write(&w.upstream.clone(), "docs/other.txt", &format!("{i}\n"));
        w.commit_all(&w.upstream.clone(), "Upstream moves on");
    }
    w.git(
        &w.checkout("demo"),
        &[
            "fetch",
            "--quiet",
            "origin",
            "+refs/heads/main:refs/remotes/origin/main",
        ],
    );
    let status = w.ok(&["status"]);
    assert!(status.stdout.contains("2 behind main"), "{}", status.stdout);
    assert!(status.stdout.contains("clean"), "{}", status.stdout);
}

/// `cargo xtask status | head -1` used to panic: `println!` on a pipe whose reader is gone.
#[test]
fn status_into_a_closed_pipe_exits_quietly() {
    let (w, _) = world_with_three_patches("closed-pipe");
    for args in [&["status"][..], &["status", "--json"]] {
        // The reader is closed before the child starts, so its first write meets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = w.xtask_cmd(args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?}\n{stderr}", out.status);
        assert_eq!(stderr, "", "{args:?}");
    }
}

/// Every entry strictly older than the index file, in whole seconds (the comparison git
/// makes): `git status` then trusts the stat data and hashes nothing.
fn racy_entries(co: &std::path::Path) -> usize {
    let index_path = co.join(".git/index");
    let written = std::fs::metadata(&index_path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let index = git2::Index::open(&index_path).unwrap();
    index
        .iter()
        .filter(|e| u64::from(e.mtime.seconds().unsigned_abs()) >= written)
        .count()
}

#[test]
fn a_sync_leaves_a_settled_index() {
    let (w, _) = world_with_three_patches("settled");
    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    w.ok(&["sync"]);
    assert_eq!(racy_entries(&w.checkout("demo")), 0);
    // The no-op path settles a checkout that someone else left racy (here: git itself).
    let co = w.checkout("demo");
    w.git(&co, &["read-tree", "HEAD"]);
    w.git(&co, &["checkout", "--force", "--quiet", "HEAD"]);
    w.ok(&["sync"]);
    assert_eq!(racy_entries(&co), 0);
}
