//! A patch that does not apply stops sync with what failed and the three ways on.

use crate::harness::*;

/// A stack of three patches whose second no longer applies on a new upstream base.
fn conflicted(name: &str) -> (World, String) {
    let (w, _) = world_with_three_patches(name);
    // Upstream rewrites the line the first patch touches... no: the line the NEWS patch adds.
    w.write(&w.upstream.clone(), "NEWS", "upstream news\n");
    let new_base = w.commit_all(&w.upstream.clone(), "Upstream adds NEWS");
    let old_base = w.git(&w.checkout("demo"), &["rev-parse", "refs/xtask/base"]);
    let text = w.read_stack("demo").replace(&old_base, &new_base);
    std::fs::write(w.stack_dir("demo").join("stack.yaml"), text).unwrap();
    let run = w.fails(&["sync"], 3);
    (w, run.stderr)
}

#[test]
fn conflict_names_patch_file_and_ways_on() {
    let (w, stderr) = conflicted("conflict-report");
    assert!(
        stderr.contains("patch `Add-a-NEWS-file.patch` (2 of 3) does not apply"),
        "{stderr}"
    );
    assert!(stderr.contains("NEWS"), "{stderr}");
    assert!(
        stderr.contains("cargo xtask sync --continue demo"),
        "{stderr}"
    );
    assert!(stderr.contains("cargo xtask sync --skip demo"), "{stderr}");
    assert!(stderr.contains("cargo xtask sync --abort demo"), "{stderr}");
    // A plain sync now refuses rather than trampling the half-applied state.
    let run = w.fails(&["sync"], 1);
    assert!(
        run.stderr.contains("in the middle of applying patches"),
        "{}",
        run.stderr
    );
    let status = w.ok(&["status"]);
    assert!(status.stdout.contains("mid-conflict"), "{}", status.stdout);
}

#[test]
fn abort_puts_the_checkout_back() {
    let (w, _) = world_with_three_patches("abort-pre");
    let before = w.head("demo");
    drop(w);
    let (w, _) = conflicted("abort");
    let run = w.ok(&["sync", "--abort", "demo"]);
    assert!(run.stdout.contains("aborted; back at"), "{}", run.stdout);
    assert_eq!(w.head("demo"), before, "same commits as before the sync");
    assert!(!w.checkout("demo").join(".git/rebase-apply").exists());
    assert_eq!(w.git(&w.checkout("demo"), &["status", "--porcelain"]), "");
}

#[test]
fn git_am_abort_also_cleans_up() {
    let (w, _) = conflicted("am-abort");
    w.git(&w.checkout("demo"), &["am", "--abort"]);
    // Back to a base where the series applies: a plain sync (no --force) takes it from here.
    let new_base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    let old_base = w.git(&w.upstream, &["rev-parse", "HEAD~1"]);
    let text = w.read_stack("demo").replace(&new_base, &old_base);
    std::fs::write(w.stack_dir("demo").join("stack.yaml"), text).unwrap();
    let run = w.ok(&["sync"]);
    assert!(run.stdout.contains("synced 3 patches"), "{}", run.stdout);
}

#[test]
fn skip_leaves_the_patch_out_until_save() {
    let (w, _) = conflicted("skip");
    let run = w.ok(&["sync", "--skip", "demo"]);
    assert!(
        run.stdout.contains("run `cargo xtask save demo`"),
        "{}",
        run.stdout
    );
    assert_eq!(
        w.stack_subjects("demo"),
        ["Spell out line five", "Extend the guide"]
    );
    let run = w.ok(&["save", "demo"]);
    assert!(run.stdout.contains("1 dropped"), "{}", run.stdout);
    assert!(!w.stack_dir("demo").join("Add-a-NEWS-file.patch").exists());
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
}

#[test]
fn continue_after_resolving() {
    let (w, _) = conflicted("continue");
    let co = w.checkout("demo");
    w.write(&co, "NEWS", "upstream news\nnews\n");
    w.git(&co, &["add", "NEWS"]);
    let run = w.ok(&["sync", "--continue", "demo"]);
    assert!(run.stdout.contains("all patches applied"), "{}", run.stdout);
    assert_eq!(w.stack_subjects("demo").len(), 3);
    // Until saved, the resolution is unsaved work that sync protects.
    w.fails(&["sync"], 1);
    let run = w.ok(&["save", "demo"]);
    assert!(run.stdout.contains("1 changed"), "{}", run.stdout);
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
}

#[test]
fn conflict_names_the_hunk_that_failed() {
    let (w, _) = world_with_three_patches("conflict-hunk");
    let up = w.upstream.clone();
    w.write(
        &up,
        "src/lib.c",
        &numbered_lines(1, 30).replace("line 5\n", "LINE FIVE\n"),
    );
    let new_base = w.commit_all(&up, "Upstream shouts line five");
    let old_base = w.git(&up, &["rev-parse", "HEAD~1"]);
    let text = w.read_stack("demo").replace(&old_base, &new_base);
    std::fs::write(w.stack_dir("demo").join("stack.yaml"), text).unwrap();
    let run = w.fails(&["sync"], 3);
    assert!(
        run.stderr
            .contains("patch `Spell-out-line-five.patch` (1 of 3) does not apply"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hunk at src/lib.c:2 does not apply; it expects:\n      | line 2\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("conflict in: src/lib.c"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_continued_first_sync_is_protected_like_any_unsaved_work() {
    let (w, _) = conflicted("first-continue");
    // Same situation, but as the very first sync: no record of an earlier one.
    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    w.fails(&["sync"], 3);
    let co = w.checkout("demo");
    w.write(&co, "NEWS", "upstream news\nnews\n");
    w.git(&co, &["add", "NEWS"]);
    w.ok(&["sync", "--continue", "demo"]);
    let head = w.head("demo");
    let run = w.fails(&["sync"], 1);
    assert!(run.stderr.contains("not saved:"), "{}", run.stderr);
    assert_eq!(w.head("demo"), head, "the resolution is still there");
}

#[test]
fn abort_restores_the_base_ref_too() {
    let (w, _) = conflicted("abort-base");
    let old_base = w.git(&w.upstream, &["rev-parse", "HEAD~1"]);
    w.ok(&["sync", "--abort", "demo"]);
    assert_eq!(
        w.git(&w.checkout("demo"), &["rev-parse", "refs/xtask/base"]),
        old_base
    );
    // Undo the stack change: everything agrees again.
    let new_base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    let text = w.read_stack("demo").replace(&new_base, &old_base);
    std::fs::write(w.stack_dir("demo").join("stack.yaml"), text).unwrap();
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
    assert!(w.ok(&["save", "demo"]).stdout.contains("nothing to save"));
}

#[test]
fn resuming_needs_a_stack_name() {
    let (w, _) = conflicted("resume-name");
    for flag in ["--continue", "--skip", "--abort"] {
        let run = w.fails(&["sync", flag], 1);
        assert!(
            run.stderr.contains("act on one stack: name it"),
            "{}",
            run.stderr
        );
    }
}
