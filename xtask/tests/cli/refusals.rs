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

/// The fake secret a linked file holds; no output may contain it.
const SECRET: &str = "ghp_FAKEsecret0123456789abcdefghijklmn";

fn secret_file(w: &World) -> std::path::PathBuf {
    let path = w.tmp.join("home/.git-credentials");
    std::fs::write(&path, format!("https://someone:{SECRET}@github.com\n")).unwrap();
    path
}

/// Sync and check both refuse, naming `want`, and print nothing of the secret.
fn refused_quietly(w: &World, want: &str) {
    for args in [&["check"][..], &["sync"][..]] {
        let run = w.fails(args, 1);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains(want), "{args:?}: wanted {want:?} in:\n{all}");
        assert!(
            !all.contains("ghp_FAKE"),
            "{args:?} printed the secret:\n{all}"
        );
    }
    assert!(!w.checkout("demo").exists(), "sync touched the checkout");
}

#[cfg(unix)]
#[test]
fn a_linked_stack_yaml_is_refused_without_its_contents() {
    let w = World::new("linked-stack");
    std::fs::create_dir_all(w.stack_dir("demo")).unwrap();
    std::os::unix::fs::symlink(secret_file(&w), w.stack_dir("demo").join("stack.yaml")).unwrap();
    refused_quietly(&w, "patches/demo/stack.yaml: refused: a symbolic link");
}

#[cfg(unix)]
#[test]
fn a_linked_patch_file_is_refused_without_its_contents() {
    let w = world_with("linked-patch", "", &["a.patch"], &[]);
    std::os::unix::fs::symlink(secret_file(&w), w.stack_dir("demo").join("a.patch")).unwrap();
    refused_quietly(&w, "patches/demo/a.patch: refused: a symbolic link");
}

#[test]
fn a_stack_yaml_that_is_one_long_value_is_not_echoed() {
    let w = World::new("one-value");
    std::fs::create_dir_all(w.stack_dir("demo")).unwrap();
    std::fs::write(
        w.stack_dir("demo").join("stack.yaml"),
        format!("https://someone:{SECRET}@github.com\n"),
    )
    .unwrap();
    refused_quietly(&w, "patches/demo/stack.yaml:");
}

/// Runs xtask under an address-space limit where the platform has one, so a file read
/// whole would fail the run.
fn with_memory_cap(w: &World, args: &[&str]) -> Run {
    let mut c = w.xtask_cmd(args);
    if cfg!(target_os = "linux") {
        let inner = c;
        c = std::process::Command::new("prlimit");
        c.arg(format!("--as={}", 512 << 20))
            .arg("--")
            .arg(inner.get_program());
        c.args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.stdin(std::process::Stdio::null());
    }
    Run::from(c.output().unwrap())
}

#[test]
fn a_huge_patch_file_is_refused_without_reading_it() {
    let w = world_with("huge-patch", "", &["a.patch"], &[]);
    // Sparse: a gigabyte on paper, nothing on disk.
    let f = std::fs::File::create(w.stack_dir("demo").join("a.patch")).unwrap();
    f.set_len(1 << 30).unwrap();
    for args in [&["check"][..], &["sync"][..]] {
        let run = with_memory_cap(&w, args);
        assert_eq!(run.code, 1, "{args:?}:\n{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(
                "patches/demo/a.patch: refused: 1073741824 bytes, over the limit of 33554432 bytes"
            ),
            "{args:?}:\n{}",
            run.stderr
        );
    }
    assert!(!w.checkout("demo").exists());
}

#[test]
fn a_huge_stack_yaml_is_refused_without_reading_it() {
    let w = World::new("huge-stack");
    std::fs::create_dir_all(w.stack_dir("demo")).unwrap();
    let f = std::fs::File::create(w.stack_dir("demo").join("stack.yaml")).unwrap();
    f.set_len(1 << 30).unwrap();
    let run = with_memory_cap(&w, &["check"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "patches/demo/stack.yaml: refused: 1073741824 bytes, over the limit of 1048576 bytes"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_deeply_nested_stack_yaml_is_refused_at_once() {
    let w = World::new("nested");
    std::fs::create_dir_all(w.stack_dir("demo")).unwrap();
    std::fs::write(w.stack_dir("demo").join("stack.yaml"), "[".repeat(400_000)).unwrap();
    let started = std::time::Instant::now();
    refused(
        &w,
        "patches/demo/stack.yaml:1:16: nested deeper than 16 levels",
    );
    // Milliseconds with the cap; minutes in the parser without it. The bound only has to
    // tell the two apart on a loaded machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn an_all_digit_base_is_an_error_naming_the_line() {
    let w = World::new("digit-base");
    w.write_stack("demo", &"1".repeat(40), &[]);
    refused(
        &w,
        "patches/demo/stack.yaml:4:7: base: YAML reads this commit id as a number",
    );
}

#[test]
fn a_patch_file_with_two_messages_is_refused() {
    let two = GOOD.replace("PATH", "a.txt") + &GOOD.replace("PATH", "b.txt");
    let w = world_with("two-messages", "", &["a.patch"], &[("a.patch", two)]);
    refused(&w, "patches/demo/a.patch: line 20: a second mbox message");
}

#[test]
fn a_plain_diff_reaching_outside_is_refused() {
    let plain = "--- a/../outside.txt\n+++ b/../outside.txt\n@@ -0,0 +1 @@\n+x\n";
    let text =
        GOOD.replace("PATH", "a.txt")
            .replacen("diff --git", &format!("{plain}diff --git"), 1);
    let w = world_with("plain-diff", "", &["a.patch"], &[("a.patch", text)]);
    refused(&w, "climbs out of the tree");
}
