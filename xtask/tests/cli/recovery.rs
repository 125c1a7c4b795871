//! Crash recovery: the states a kill or Ctrl-C leaves in the middle of `git checkout` or
//! `git am` (made exactly: the tool aborts at `XTASK_KILL_AT=in-<op>` after recording what it
//! starts, and the test adds what git had done by then), resumed by a plain rerun with
//! nothing lost; and what `save` says while an update is under way.

use std::path::Path;

use crate::harness::*;
use crate::update::update_world;

/// Upstream moves on by a commit that changes README and adds 40 files and a script git
/// checks out with CRLF (as CPython's `.bat` files); the stack is pointed at it, so the next
/// sync checks out a different base.
fn move_base(w: &World) -> String {
    let up = w.upstream.clone();
    w.write(&up, "README", "hello again\n");
    w.write(&up, ".gitattributes", "*.bat text eol=crlf\n");
    w.write(&up, "gen/run.bat", "@echo off\nrem run\n");
    for i in 0..40 {
        w.write(&up, &format!("gen/f{i}.txt"), &format!("generated {i}\n"));
    }
    let new_base = w.commit_all(&up, "Upstream adds generated files");
    let old_base = w.git(&w.checkout("demo"), &["rev-parse", "refs/xtask/base"]);
    let text = w.read_stack("demo").replace(&old_base, &new_base);
    std::fs::write(w.stack_dir("demo").join("stack.yaml"), text).unwrap();
    new_base
}

/// Runs xtask so that it aborts at `point`, as a kill there would.
fn killed_at(w: &World, args: &[&str], point: &str) {
    let run = w.xtask_env(args, "XTASK_KILL_AT", point);
    assert!(
        run.code != 0 && run.stderr.contains(&format!("killed at {point}")),
        "{point}: {}\n{}",
        run.stdout,
        run.stderr
    );
}

/// What git leaves when killed halfway through a checkout of `target`: some of its files
/// written, one of them cut short and one still empty, index and HEAD not moved yet, and its `index.lock`.
fn half_checkout(w: &World, co: &Path, target: &str) {
    let show = |f: &str| w.git(co, &["show", &format!("{target}:{f}")]) + "\n";
    w.write(co, "README", &show("README"));
    for i in 0..20 {
        let f = format!("gen/f{i}.txt");
        w.write(co, &f, &show(&f));
    }
    w.write(co, ".gitattributes", &show(".gitattributes"));
    w.write(co, "gen/run.bat", "@echo off\r\nrem run\r\n");
    w.write(co, "gen/f20.txt", "gener");
    w.write(co, "gen/f21.txt", "");
    std::fs::write(co.join(".git/index.lock"), "").unwrap();
}

/// What git leaves when killed in `git am` at the second patch: the first applied, the
/// mailbox split under `.git/rebase-apply`, and its `index.lock`.
fn half_am(w: &World, co: &Path) {
    let stack = w.stack_dir("demo");
    let first = stack.join("Spell-out-line-five.patch");
    let bogus = w.tmp.join("bogus.patch");
    std::fs::write(
        &bogus,
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\nSubject: [PATCH] bogus\n\n---\ndiff --git a/nope b/nope\n--- a/nope\n+++ b/nope\n@@ -1 +1 @@\n-x\n+y\n",
    )
    .unwrap();
    let sh = &w.sh;
    let (first, bogus) = (first.as_path(), bogus.as_path());
    let _ = xshell::cmd!(sh, "git -C {co} am --quiet {first} {bogus}")
        .quiet()
        .ignore_status()
        .output();
    assert!(co.join(".git/rebase-apply").is_dir());
    std::fs::write(co.join(".git/index.lock"), "").unwrap();
}

fn status(w: &World, co: &Path) -> String {
    w.git(co, &["status", "--porcelain", "--untracked-files=all"])
}

#[test]
fn a_sync_killed_in_checkout_resumes_on_a_plain_rerun() {
    let (w, _) = world_with_three_patches("kill-checkout");
    let co = w.checkout("demo");
    let new_base = move_base(&w);
    killed_at(&w, &["sync"], "in-checkout");
    half_checkout(&w, &co, &new_base);
    let run = w.ok(&["sync"]);
    assert!(run.stdout.contains("synced 3 patches"), "{}", run.stderr);
    assert!(
        run.stderr.contains("finishing an interrupted checkout"),
        "{}",
        run.stderr
    );
    // The file cut short matched no commit: it is kept, not judged.
    assert!(
        run.stderr
            .contains("kept files that matched no commit as refs/xtask/backup/")
            && run.stderr.contains("gen/f20.txt")
            && !run.stderr.contains("run.bat")
            && !run.stderr.contains("gen/f21.txt"),
        "{}",
        run.stderr
    );
    assert!(!co.join(".git/index.lock").exists());
    assert!(!co.join(".git/xtask-intent.json").exists());
    assert_eq!(w.git(&co, &["rev-parse", "refs/xtask/base"]), new_base);
    assert_eq!(w.stack_subjects("demo").len(), 3);
    assert_eq!(status(&w, &co), "");
    assert_eq!(
        std::fs::read_to_string(co.join("gen/f20.txt")).unwrap(),
        "generated 20\n"
    );
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
}

#[test]
fn a_sync_killed_in_git_am_resumes_on_a_plain_rerun() {
    let (w, _) = world_with_three_patches("kill-am");
    let co = w.checkout("demo");
    let new_base = move_base(&w);
    killed_at(&w, &["sync"], "in-am");
    half_am(&w, &co);
    // status tells the tool's half-done work from the user's, and names the one command.
    let json = w.ok(&["status", "--json", "demo"]).stdout;
    assert!(json.contains(r#""checkout": "interrupted""#), "{json}");
    assert!(
        json.contains("`git am` was interrupted: `cargo xtask sync demo` finishes it"),
        "{json}"
    );
    let run = w.ok(&["sync"]);
    assert!(run.stdout.contains("synced 3 patches"), "{}", run.stderr);
    // Everything in the work tree was the tool's: nothing to keep.
    assert!(!run.stderr.contains("refs/xtask/backup/"), "{}", run.stderr);
    assert!(!co.join(".git/rebase-apply").exists());
    assert!(!co.join(".git/index.lock").exists());
    assert_eq!(w.git(&co, &["rev-parse", "refs/xtask/base"]), new_base);
    assert_eq!(
        w.stack_subjects("demo"),
        ["Spell out line five", "Add a NEWS file", "Extend the guide"]
    );
    assert_eq!(status(&w, &co), "");
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
    assert!(w.ok(&["save", "demo"]).stdout.contains("nothing to save"));
}

#[test]
fn an_abort_killed_in_checkout_is_finished_by_running_it_again() {
    let (w, _) = world_with_three_patches("kill-abort");
    let co = w.checkout("demo");
    let tip = w.head("demo");
    let new_base = move_base(&w);
    killed_at(&w, &["sync"], "in-am");
    killed_at(&w, &["sync", "--abort", "demo"], "in-checkout");
    std::fs::write(co.join(".git/index.lock"), "").unwrap();
    let run = w.ok(&["sync", "--abort", "demo"]);
    assert!(run.stdout.contains("aborted; back at"), "{}", run.stderr);
    assert_eq!(w.head("demo"), tip);
    assert_ne!(w.git(&co, &["rev-parse", "refs/xtask/base"]), new_base);
    assert_eq!(status(&w, &co), "");
}

#[test]
fn a_lock_file_the_tool_did_not_leave_is_named_not_removed() {
    let (w, _) = world_with_three_patches("foreign-lock");
    let co = w.checkout("demo");
    move_base(&w);
    std::fs::write(co.join(".git/index.lock"), "").unwrap();
    let run = w.fails(&["sync"], 1);
    assert!(
        run.stderr
            .contains("checkouts/demo/.git/index.lock` exists")
            && run.stderr.contains("rerun `cargo xtask sync demo`"),
        "{}",
        run.stderr
    );
    // Not git's own error inside the whole command line.
    assert!(!run.stderr.contains("core.autocrlf"), "{}", run.stderr);
    assert!(co.join(".git/index.lock").exists());
}

#[test]
fn abort_after_an_interrupted_sync_keeps_the_edits_sync_refused_to_touch() {
    let (w, base) = world_with_three_patches("abort-keeps");
    let co = w.checkout("demo");
    let tip = w.head("demo");
    // A sync killed between moving to the base and applying (no git operation under way).
    w.git(&co, &["update-ref", "refs/xtask/before-sync", &tip]);
    w.git(&co, &["checkout", "--quiet", "-B", "patched", &base]);
    w.write(&co, "README", "my edit\n");
    let run = w.fails(&["sync"], 1);
    assert!(run.stderr.contains("uncommitted: README"), "{}", run.stderr);
    assert!(
        run.stderr.contains("cargo xtask sync --abort demo"),
        "{}",
        run.stderr
    );
    let run = w.ok(&["sync", "--abort", "demo"]);
    assert_eq!(w.head("demo"), tip);
    let kept = w.git(
        &co,
        &["for-each-ref", "--format=%(refname)", "refs/xtask/backup/"],
    );
    assert!(
        kept.ends_with("-uncommitted") && run.stderr.contains(&kept),
        "printed: {}\nrefs: {kept}",
        run.stderr
    );
    assert_eq!(
        w.git(&co, &["show", &format!("{kept}:README")]),
        "my edit",
        "the edit is in the backup"
    );
}

#[test]
fn an_untracked_file_the_new_base_tracks_is_refused_then_kept_by_force() {
    let (w, _) = world_with_three_patches("untracked");
    let co = w.checkout("demo");
    move_base(&w);
    w.write(&co, "gen/f3.txt", "mine\n");
    let run = w.fails(&["sync"], 1);
    assert!(
        run.stderr.contains("untracked: gen/f3.txt")
            && run.stderr.contains("cargo xtask sync --force demo"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(co.join("gen/f3.txt")).unwrap(),
        "mine\n"
    );
    let run = w.ok(&["sync", "--force", "demo"]);
    let kept = w.git(
        &co,
        &["for-each-ref", "--format=%(refname)", "refs/xtask/backup/"],
    );
    assert!(
        kept.ends_with("-files") && run.stderr.contains(&kept),
        "printed: {}\nrefs: {kept}",
        run.stderr
    );
    assert_eq!(w.git(&co, &["show", &format!("{kept}:gen/f3.txt")]), "mine");
    assert_eq!(w.stack_subjects("demo").len(), 3);
}

#[test]
fn save_during_an_interrupted_update_says_what_to_run() {
    let w = update_world("save-interrupted", false);
    killed_at(&w, &["sync", "--update"], "before-patch");
    let run = w.fails(&["save", "demo"], 1);
    assert!(
        run.stderr.contains(
            "an update of `demo` was interrupted at patch `Verbatim-change-to-a.patch` (1 of 4)"
        ) && run.stderr.contains("`cargo xtask sync --update demo`"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("merge"), "{}", run.stderr);
    w.ok(&["sync", "--update"]);
}

#[test]
fn save_during_a_stopped_update_says_what_to_run() {
    let w = update_world("save-stopped", true);
    w.fails(&["sync", "--update"], 3);
    let run = w.fails(&["save", "demo"], 1);
    assert!(
        run.stderr
            .contains("stopped at patch `Change-to-c.patch` (3 of 5)")
            && run.stderr.contains("`cargo xtask sync --continue demo`")
            && run.stderr.contains("`cargo xtask sync --abort demo`"),
        "{}",
        run.stderr
    );
}

#[test]
fn save_during_an_interrupted_sync_says_what_to_run() {
    let (w, _) = world_with_three_patches("save-killed-sync");
    move_base(&w);
    killed_at(&w, &["sync"], "in-checkout");
    let run = w.fails(&["save", "demo"], 1);
    assert!(
        run.stderr.contains("a sync of `demo` was interrupted")
            && run
                .stderr
                .contains("run `cargo xtask sync demo` to finish it"),
        "{}",
        run.stderr
    );
}

/// An update killed in its checkout or in `git am`, with git's half-done work, resumes on
/// a rerun of `sync --update` to the same stack as an uninterrupted one.
#[test]
fn an_update_killed_in_git_resumes_to_the_same_result() {
    let reference = update_world("update-git-ref", false);
    reference.ok(&["sync", "--update"]);
    let strip = |w: &World| w.snapshot_portable("demo");
    let want = strip(&reference);
    let want_head = reference.head("demo");
    for point in ["in-checkout", "in-am"] {
        let w = update_world(&format!("update-git-{point}"), false);
        let co = w.checkout("demo");
        killed_at(&w, &["sync", "--update"], point);
        // git had started: a file of the new base written, and its lock.
        w.write(&co, "unrelated.txt", "x\n");
        std::fs::write(co.join(".git/index.lock"), "").unwrap();
        let run = w.ok(&["sync", "--update"]);
        assert!(
            run.stdout.contains("updated onto"),
            "{point}: {}",
            run.stderr
        );
        assert_eq!(strip(&w), want, "{point}");
        assert_eq!(w.head("demo"), want_head, "{point}");
        assert_eq!(status(&w, &co), "", "{point}");
    }
}
