//! Never lose work: unsaved commits and uncommitted changes stop sync; `--force` keeps a backup.

use crate::harness::*;

#[test]
fn uncommitted_changes_stop_sync() {
    let (w, _) = world_with_three_patches("dirty");
    w.write(&w.checkout("demo"), "README", "my edit\n");
    let run = w.fails(&["sync"], 1);
    assert!(run.stderr.contains("uncommitted: README"), "{}", run.stderr);
    assert!(
        run.stderr.contains("cargo xtask save demo"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cargo xtask sync --force demo"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(w.checkout("demo").join("README")).unwrap(),
        "my edit\n"
    );
}

#[test]
fn unsaved_commits_stop_sync_even_when_the_stack_changed() {
    let (w, _) = world_with_three_patches("unsaved");
    w.commit_in_checkout("demo", "wip.txt", "wip\n", "Work in progress");
    // The stack changes too, so sync would want to re-apply.
    let text = w
        .read_stack("demo")
        .replace("  - Extend-the-guide.patch\n", "");
    std::fs::write(w.stack_dir("demo").join("stack.yaml"), text).unwrap();
    std::fs::remove_file(w.stack_dir("demo").join("Extend-the-guide.patch")).unwrap();
    let head = w.head("demo");
    let run = w.fails(&["sync"], 1);
    assert!(run.stderr.contains("not saved:"), "{}", run.stderr);
    assert!(run.stderr.contains("Work in progress"), "{}", run.stderr);
    assert_eq!(w.head("demo"), head);
}

#[test]
fn a_rewritten_history_counts_as_unsaved() {
    let (w, _) = world_with_three_patches("rewritten");
    w.git(
        &w.checkout("demo"),
        &["reset", "--quiet", "--hard", "HEAD~1"],
    );
    let run = w.fails(&["sync"], 1);
    assert!(
        run.stderr.contains("HEAD no longer has 1 commit(s)"),
        "{}",
        run.stderr
    );
}

#[test]
fn force_keeps_a_backup_ref_and_proceeds() {
    let (w, _) = world_with_three_patches("force");
    let co = w.checkout("demo");
    let wip = w.commit_in_checkout("demo", "wip.txt", "wip\n", "Work in progress");
    w.write(&co, "README", "my edit\n");
    let run = w.ok(&["sync", "--force", "demo"]);
    let backups = w.git(
        &co,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/xtask/backup/",
        ],
    );
    let lines: Vec<&str> = backups.lines().collect();
    assert_eq!(lines.len(), 2, "{backups}");
    let head_ref = lines.iter().find(|l| !l.contains("uncommitted")).unwrap();
    assert!(head_ref.ends_with(&wip), "{backups}");
    let name = head_ref.split(' ').next().unwrap();
    assert!(
        run.stderr.contains(name),
        "backup named in output: {}",
        run.stderr
    );
    let stash = lines
        .iter()
        .find(|l| l.contains("uncommitted"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(w.git(&co, &["show", &format!("{stash}:README")]), "my edit");
    // The checkout is the stack again.
    assert_eq!(w.stack_subjects("demo").len(), 3);
    assert_eq!(
        std::fs::read_to_string(co.join("README")).unwrap(),
        "hello\n"
    );
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
}

#[test]
fn a_sync_killed_after_the_reset_resumes_without_force() {
    let (w, base) = world_with_three_patches("killed");
    let co = w.checkout("demo");
    let tip = w.head("demo");
    let tree = w.git(&co, &["rev-parse", "HEAD^{tree}"]);
    // What a sync leaves when killed between moving to the base and applying the series.
    w.git(&co, &["update-ref", "refs/xtask/before-sync", &tip]);
    w.git(&co, &["checkout", "--quiet", "-B", "patched", &base]);
    let run = w.ok(&["sync"]);
    assert!(run.stdout.contains("synced 3 patches"), "{}", run.stdout);
    assert_eq!(
        w.git(&co, &["rev-parse", "HEAD^{tree}"]),
        tree,
        "the same tree as before"
    );
    assert_eq!(w.stack_subjects("demo").len(), 3);
    assert!(
        w.git(&co, &["for-each-ref", "refs/xtask/before-sync"])
            .is_empty()
    );
}

#[test]
fn a_clone_killed_halfway_is_cleaned_up() {
    let w = World::new("killed-clone");
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    w.write_stack("demo", &base, &[]);
    let leftover = w.root.join("checkouts/.demo.clone-tmp");
    std::fs::create_dir_all(leftover.join(".git")).unwrap();
    std::fs::write(leftover.join("junk"), "half a clone").unwrap();
    w.ok(&["sync"]);
    assert!(!leftover.exists());
    assert_eq!(w.head("demo"), base);
}

#[test]
fn two_forced_syncs_in_one_second_keep_both_backups() {
    let (w, _) = world_with_three_patches("two-backups");
    let co = w.checkout("demo");
    w.commit_in_checkout("demo", "a.txt", "a\n", "First throwaway");
    w.ok(&["sync", "--force"]);
    w.commit_in_checkout("demo", "b.txt", "b\n", "Second throwaway");
    w.ok(&["sync", "--force"]);
    let subjects = w.git(
        &co,
        &["for-each-ref", "--format=%(subject)", "refs/xtask/backup/"],
    );
    assert!(
        subjects.contains("First throwaway") && subjects.contains("Second throwaway"),
        "{subjects}"
    );
}
