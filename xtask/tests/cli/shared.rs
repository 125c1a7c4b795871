//! Two stacks on one upstream share one object store (`checkouts/.store/`): objects are
//! fetched and kept once, neither stack locks the other out, and each checkout stands alone
//! as far as its user can tell (deleting one leaves the other working).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::harness::*;

/// Objects a repository holds itself (loose plus packed), not counting what it borrows.
fn own_objects(w: &World, git_dir: &Path) -> usize {
    let out = w.git(git_dir, &["count-objects", "-v"]);
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| *k == "count" || *k == "in-pack")
        .map(|(_, v)| v.parse::<usize>().unwrap())
        .sum()
}

/// The stores under `checkouts/.store/`.
fn stores(w: &World) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(w.root.join("checkouts/.store"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "git"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// An upstream with some history, and stacks `a` and `b` on its tip, both synced.
fn two_stacks(name: &str) -> (World, String) {
    let w = World::new(name);
    let up = w.upstream.clone();
    for i in 0..10 {
        w.write(&up, &format!("src/f{i}.c"), &numbered_lines(1, 20 + i));
        w.commit_all(&up, &format!("Add f{i}"));
    }
    let base = w.git(&up, &["rev-parse", "HEAD"]);
    w.write_stack("a", &base, &[]);
    w.write_stack("b", &base, &[]);
    w.ok(&["sync"]);
    (w, base)
}

/// Moves the upstream on by one commit; returns its id.
fn upstream_moves(w: &World, what: &str) -> String {
    let up = w.upstream.clone();
    w.write(&up, &format!("{what}.txt"), &format!("{what}\n"));
    w.commit_all(&up, &format!("Upstream adds {what}"))
}

fn set_base(w: &World, project: &str, base: &str) {
    let text = w.read_stack(project);
    let old = text
        .lines()
        .find_map(|l| l.strip_prefix("base: "))
        .unwrap()
        .to_string();
    std::fs::write(
        w.stack_dir(project).join("stack.yaml"),
        text.replace(&old, base),
    )
    .unwrap();
}

#[test]
fn two_stacks_on_one_upstream_store_its_objects_once() {
    let (w, base) = two_stacks("shared-once");
    let stores = stores(&w);
    assert_eq!(stores.len(), 1, "{stores:?}");
    // 11 commits, their trees and blobs: all in the store, none in either checkout.
    assert!(own_objects(&w, &stores[0]) > 30);
    for p in ["a", "b"] {
        let co = w.checkout(p);
        assert_eq!(own_objects(&w, &co), 0, "{p} keeps its own objects");
        assert_eq!(w.head(p), base);
        assert_eq!(
            w.git(&co, &["rev-parse", "refs/remotes/origin/main"]),
            base,
            "{p} sees the upstream branch"
        );
        w.git(&co, &["fsck", "--no-progress"]);
    }
    w.ok(&["status"]);

    // Each checkout works as before: save in one, update the other.
    w.commit_in_checkout("b", "NEWS", "news\n", "Add a NEWS file");
    w.ok(&["save", "b"]);
    assert!(
        own_objects(&w, &w.checkout("b")) <= 4,
        "only b's own commit"
    );
    let new = upstream_moves(&w, "later");
    w.ok(&["sync", "--update", "a"]);
    assert_eq!(w.head("a"), new);
    assert!(w.read_stack("a").contains(&new));
    // The new upstream commit went into the store; `a` holds nothing of its own.
    assert_eq!(own_objects(&w, &w.checkout("a")), 0);
    set_base(&w, "b", &new);
    w.ok(&["sync", "b"]);
    assert_eq!(w.stack_subjects("b"), ["Add a NEWS file"]);
    assert_eq!(w.ok(&["sync"]).stdout, "a: up to date\nb: up to date\n");
}

#[test]
fn deleting_one_checkout_leaves_the_other_working() {
    let (w, base) = two_stacks("shared-delete");
    std::fs::remove_dir_all(w.checkout("a")).unwrap();
    let b = w.checkout("b");
    w.git(&b, &["fsck", "--no-progress"]);
    assert_eq!(w.ok(&["sync", "b"]).stdout, "b: up to date\n");
    w.ok(&["status"]);
    let run = w.ok(&["sync", "a"]);
    assert!(run.stdout.contains("a: synced 0 patches"), "{}", run.stdout);
    assert_eq!(w.head("a"), base);
    assert_eq!(own_objects(&w, &w.checkout("a")), 0);
}

#[test]
fn a_deleted_store_is_made_again_by_sync() {
    let (w, base) = two_stacks("shared-store-gone");
    std::fs::remove_dir_all(w.root.join("checkouts/.store")).unwrap();
    let run = w.ok(&["sync", "a"]);
    assert!(
        run.stderr.contains("is gone; fetching `main` again"),
        "{}",
        run.stderr
    );
    w.git(&w.checkout("a"), &["fsck", "--no-progress"]);
    w.git(&w.checkout("b"), &["fsck", "--no-progress"]);
    assert_eq!(w.head("b"), base);
    assert_eq!(w.ok(&["sync"]).stdout, "a: up to date\nb: up to date\n");
}

#[test]
fn a_sync_does_not_wait_for_another_stack_on_the_same_upstream() {
    let (w, _) = two_stacks("shared-no-lockout");
    // `a` is busy (another process holds its lock for a long sync); `b` needs a fetch.
    let a_lock = OpenOptions::new()
        .read(true)
        .write(true)
        .open(w.root.join("checkouts/a.lock"))
        .unwrap();
    a_lock.lock().unwrap();
    let new = upstream_moves(&w, "b-needs-this");
    set_base(&w, "b", &new);
    let mut child = w
        .xtask_cmd(&["sync", "b"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("waiting for") {
            let _ = child.kill();
            panic!("sync b waits for a: {line}");
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(w.head("b"), new);
    a_lock.unlock().unwrap();
}

#[test]
fn the_store_lock_is_held_only_around_a_fetch_and_says_who_holds_it() {
    let (w, _) = two_stacks("shared-store-lock");
    let store = stores(&w).remove(0);
    let lock_path = store.with_extension("lock");
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    std::fs::write(&lock_path, "pid 1 (the test)").unwrap();
    // A sync that needs no fetch does not touch the store's lock.
    assert_eq!(w.ok(&["sync", "a"]).stdout, "a: up to date\n");
    let new = upstream_moves(&w, "fetch-me");
    set_base(&w, "a", &new);
    let mut child = w
        .xtask_cmd(&["sync", "a"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting for") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no wait");
    }
    assert!(line.contains("held by pid 1 (the test)"), "{line}");
    assert!(child.try_wait().unwrap().is_none());
    lock.unlock().unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(w.head("a"), new);
}

#[test]
fn concurrent_first_syncs_of_two_stacks_share_one_store() {
    let w = World::new("shared-race");
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    w.write_stack("a", &base, &[]);
    w.write_stack("b", &base, &[]);
    let spawn = |p: &str| {
        w.xtask_cmd(&["sync", p])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("a"), spawn("b"));
    let (a, b) = (
        Run::from(a.wait_with_output().unwrap()),
        Run::from(b.wait_with_output().unwrap()),
    );
    assert_eq!((a.code, b.code), (0, 0), "{}\n{}", a.stderr, b.stderr);
    assert_eq!(stores(&w).len(), 1);
    assert_eq!(w.head("a"), base);
    assert_eq!(w.head("b"), base);
}

#[test]
fn an_interrupted_store_clone_fetch_or_checkout_clone_is_finished_by_a_rerun() {
    let w = World::new("shared-crash");
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    w.write_stack("a", &base, &[]);
    let run = w.xtask_env(&["sync", "a"], "XTASK_KILL_AT", "in-store-clone");
    assert!(
        run.stderr.contains("killed at in-store-clone"),
        "{}",
        run.stderr
    );
    assert!(stores(&w).is_empty());
    w.ok(&["sync", "a"]);
    assert_eq!(w.head("a"), base);
    let leftovers: Vec<_> = std::fs::read_dir(w.root.join("checkouts/.store"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let new = upstream_moves(&w, "later");
    set_base(&w, "a", &new);
    let run = w.xtask_env(&["sync", "a"], "XTASK_KILL_AT", "in-store-fetch");
    assert!(
        run.stderr.contains("killed at in-store-fetch"),
        "{}",
        run.stderr
    );
    // What a `git fetch` killed while it wrote a ref leaves behind.
    let stale = stores(&w).remove(0).join("refs/remotes/origin/main.lock");
    std::fs::write(&stale, "").unwrap();
    w.ok(&["sync", "a"]);
    assert_eq!(w.head("a"), new);
    assert!(!stale.exists());

    w.write_stack("b", &new, &[]);
    let run = w.xtask_env(&["sync", "b"], "XTASK_KILL_AT", "in-clone");
    assert!(run.stderr.contains("killed at in-clone"), "{}", run.stderr);
    assert!(!w.checkout("b").exists());
    w.ok(&["sync", "b"]);
    assert_eq!(w.head("b"), new);
    assert!(!w.root.join("checkouts/.b.clone-tmp").exists());
}

#[test]
fn a_plain_clone_made_before_the_store_keeps_working() {
    let w = World::new("shared-legacy");
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    w.write_stack("demo", &base, &[]);
    let co = w.checkout("demo");
    std::fs::create_dir_all(co.parent().unwrap()).unwrap();
    let url = w.upstream_url();
    w.git(
        &w.root,
        &[
            "clone",
            "--quiet",
            "--no-checkout",
            &url,
            co.to_str().unwrap(),
        ],
    );
    w.ok(&["sync"]);
    assert_eq!(w.head("demo"), base);
    let new = upstream_moves(&w, "later");
    w.ok(&["sync", "--update", "demo"]);
    assert_eq!(w.head("demo"), new);
    w.ok(&["status"]);
    assert!(stores(&w).is_empty(), "a plain clone fetches into itself");
    assert!(!co.join(".git/objects/info/alternates").exists());
}

#[test]
fn a_stack_cannot_take_the_stores_name() {
    let w = World::new("shared-name");
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    w.write_stack(".store", &base, &[]);
    let run = w.fails(&["sync", ".store"], 1);
    assert!(
        run.stderr.contains("cannot be named `.store`"),
        "{}",
        run.stderr
    );
}
