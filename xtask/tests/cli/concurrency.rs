//! Two xtask processes never modify the same checkout at once.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::harness::*;

#[test]
fn a_second_sync_waits_for_the_lock_and_says_who_holds_it() {
    let (w, _) = world_with_three_patches("lock-wait");
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .open(w.root.join("checkouts/demo.lock"))
        .unwrap();
    lock.lock().unwrap();
    std::fs::write(w.root.join("checkouts/demo.lock"), "pid 1 (the test)").unwrap();
    let mut child = w
        .xtask_cmd(&["sync"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("waiting for") && line.contains("held by pid 1 (the test)"),
        "{line}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "it waits while the lock is held"
    );
    lock.unlock().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "demo: up to date\n");
}

#[test]
fn concurrent_syncs_both_succeed_with_one_result() {
    let (w, _) = world_with_three_patches("lock-race");
    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    let a = w
        .xtask_cmd(&["sync"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = w
        .xtask_cmd(&["sync"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (
        Run::from(a.wait_with_output().unwrap()),
        Run::from(b.wait_with_output().unwrap()),
    );
    assert_eq!((a.code, b.code), (0, 0), "{}\n{}", a.stderr, b.stderr);
    let outputs = [a.stdout.as_str(), b.stdout.as_str()];
    assert!(outputs.contains(&"demo: up to date\n"), "{outputs:?}");
    assert!(
        outputs.iter().any(|o| o.contains("synced 3 patches")),
        "{outputs:?}"
    );
    assert_eq!(w.stack_subjects("demo").len(), 3);
}
