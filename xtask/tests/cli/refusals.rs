//! Bad input is refused with a message that names the file, line or patch, and nothing is
//! touched.

use crate::harness::*;

const GOOD: &str = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: A U Thor <author@example.org>\nDate: Sat, 3 Feb 2001 04:05:06 +0000\nSubject: [PATCH] Touch a file\n\nBody.\n\nUpstream-Status: Pending\n---\n PATH | 1 +\n 1 file changed, 1 insertion(+)\n\ndiff --git a/PATH b/PATH\nnew file mode 100644\nindex 0000000000000000000000000000000000000000..e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\n--- /dev/null\n+++ b/PATH\n@@ -0,0 +1 @@\n+x\n";

fn world_with(name: &str, yaml_extra: &str, series: &[&str], files: &[(&str, String)]) -> World {
    let w = World::new(name);
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    w.write_stack("demo", &base, series);
    let path = w.stack_dir("demo").join("stack.yaml");
    let text = std::fs::read_to_string(&path).unwrap() + yaml_extra;
    std::fs::write(&path, text).unwrap();
    for (f, body) in files {
        std::fs::write(w.stack_dir("demo").join(f), body).unwrap();
    }
    w
}

/// Sync and check both refuse, the message contains `want`, and no checkout appears.
fn refused(w: &World, want: &str) {
    let run = w.fails(&["sync"], 1);
    assert!(
        run.stderr.contains(want),
        "sync: wanted {want:?} in:\n{}",
        run.stderr
    );
    assert!(!w.checkout("demo").exists(), "sync touched the checkout");
    let run = w.fails(&["check"], 1);
    assert!(
        run.stderr.contains(want),
        "check: wanted {want:?} in:\n{}",
        run.stderr
    );
}

#[test]
fn unknown_yaml_key_with_location() {
    let w = world_with("unknown-key", "colour: red\n", &[], &[]);
    refused(&w, "patches/demo/stack.yaml:7:1: unknown field `colour`");
}

#[test]
fn malformed_yaml_with_location() {
    let w = world_with("malformed", "series: [oops\n", &[], &[]);
    refused(&w, "patches/demo/stack.yaml:");
}

#[test]
fn series_entry_without_file() {
    let w = world_with("no-file", "", &["missing.patch"], &[]);
    refused(
        &w,
        "patches/demo/stack.yaml:7: series entry `missing.patch` has no file `patches/demo/missing.patch`",
    );
}

#[test]
fn patch_file_without_series_entry() {
    let w = world_with(
        "no-entry",
        "",
        &[],
        &[("stray.patch", GOOD.replace("PATH", "a.txt"))],
    );
    refused(
        &w,
        "patches/demo/stray.patch: patch file has no entry in the series",
    );
}

#[test]
fn patch_without_upstream_status() {
    let w = world_with(
        "no-status",
        "",
        &["a.patch"],
        &[(
            "a.patch",
            GOOD.replace("PATH", "a.txt")
                .replace("Upstream-Status: Pending\n", ""),
        )],
    );
    refused(&w, "patches/demo/a.patch: no `Upstream-Status:` trailer");
}

#[test]
fn patches_reaching_outside_the_tree() {
    for (i, (path, why)) in [
        ("../outside.txt", "climbs out of the tree"),
        ("sub/../../outside.txt", "climbs out of the tree"),
        ("/etc/evil", "absolute path"),
        (".git/hooks/post-checkout", "reaches into `.git`"),
        ("src/.GIT/config", "reaches into `.git`"),
    ]
    .into_iter()
    .enumerate()
    {
        let w = world_with(
            &format!("outside-{i}"),
            "",
            &["a.patch"],
            &[("a.patch", GOOD.replace("PATH", path))],
        );
        refused(&w, why);
    }
}

#[test]
fn command_running_transports() {
    for (i, url) in ["ext::sh -c touch% /tmp/xtask-pwned", "fd::3"]
        .into_iter()
        .enumerate()
    {
        let w = World::new(&format!("ext-{i}"));
        std::fs::create_dir_all(w.stack_dir("demo")).unwrap();
        let text = format!(
            "upstream: \"{url}\"\ntrack: main\nbase: 34f08c32dec2a3170fbe2e177910352489678816\nversion: 1\nseries: []\n"
        );
        std::fs::write(w.stack_dir("demo").join("stack.yaml"), text).unwrap();
        refused(&w, "can run commands");
    }
}

#[test]
fn upstream_with_git_suffix() {
    let w = World::new("dotgit");
    let url = format!("{}.git", w.upstream_url());
    std::fs::create_dir_all(w.stack_dir("demo")).unwrap();
    let text = format!(
        "upstream: {url}\ntrack: main\nbase: 34f08c32dec2a3170fbe2e177910352489678816\nversion: 1\nseries: []\n"
    );
    std::fs::write(w.stack_dir("demo").join("stack.yaml"), text).unwrap();
    refused(&w, "must not end in `.git`");
}

#[test]
fn base_that_is_not_a_full_commit_id() {
    for (i, base) in [
        "main",
        "34f08c32",
        "34F08C32DEC2A3170FBE2E177910352489678816",
    ]
    .into_iter()
    .enumerate()
    {
        let w = World::new(&format!("short-base-{i}"));
        w.write_stack("demo", base, &[]);
        refused(&w, "patches/demo/stack.yaml:4:7: base: ");
    }
}

#[test]
fn unknown_project_name() {
    let w = world_with("unknown-project", "", &[], &[]);
    let run = w.fails(&["sync", "nope"], 1);
    assert!(
        run.stderr.contains("no stack `nope`: expected one of demo"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_passes_a_good_stack() {
    let w = world_with(
        "good",
        "",
        &["a.patch"],
        &[("a.patch", GOOD.replace("PATH", "a.txt"))],
    );
    let run = w.ok(&["check"]);
    assert_eq!(run.stdout, "ok: 1 stack(s), 1 patch(es)\n");
    let run = w.ok(&["sync"]);
    assert!(run.stdout.contains("synced 1 patch onto"), "{}", run.stdout);
}

#[test]
fn a_patch_to_a_latin1_file_is_a_patch() {
    let mut bytes = GOOD.replace("PATH", "latin1.txt").into_bytes();
    let at = bytes.len() - 1;
    bytes.splice(at..at, [b' ', 0xe9]); // "+x \xe9": not UTF-8
    let w = World::new("latin1");
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    w.write_stack("demo", &base, &["a.patch"]);
    std::fs::write(w.stack_dir("demo").join("a.patch"), bytes).unwrap();
    w.ok(&["check"]);
    w.ok(&["sync"]);
    assert_eq!(
        std::fs::read(w.checkout("demo").join("latin1.txt")).unwrap(),
        b"x \xe9\n"
    );
}

#[test]
fn numbered_patch_names_are_refused() {
    let w = world_with(
        "numbered",
        "",
        &["0001-a.patch"],
        &[("0001-a.patch", GOOD.replace("PATH", "a.txt"))],
    );
    refused(&w, "has a number prefix");
}
