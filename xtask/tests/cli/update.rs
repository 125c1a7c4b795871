//! `sync --update`: absorbed patches dropped with evidence, shrunk patches kept, conflicts
//! stopped with the ways on, a CHANGELOG entry, dry runs, rerere, and interruptions.

use std::process::Stdio;

use crate::harness::*;

const NAMES: [&str; 5] = [
    "Verbatim-change-to-a.patch",
    "Change-to-b.patch",
    "Change-to-c.patch",
    "Two-changes-to-d.patch",
    "Change-to-e.patch",
];

/// A stack of five patches (one per file a..e), then upstream moves on: it merges the first
/// verbatim, the second inside a larger change, changes the third's line differently, takes
/// half of the fourth, and leaves the fifth alone.
pub fn update_world(name: &str, with_conflict: bool) -> World {
    let w = World::new(name);
    let up = w.upstream.clone();
    for f in ["a", "b", "c", "d", "e"] {
        w.write(&up, &format!("{f}.txt"), &numbered_lines(1, 30));
    }
    let base = w.commit_all(&up, "Add a..e");
    w.write_stack("demo", &base, &[]);
    w.ok(&["sync"]);
    let edit = |_f: &str, from: &str, to: &str| numbered_lines(1, 30).replace(from, to);
    w.commit_in_checkout(
        "demo",
        "a.txt",
        &edit("a.txt", "line 4\n", "line four\n"),
        "Verbatim change to a",
    );
    w.commit_in_checkout(
        "demo",
        "b.txt",
        &edit("b.txt", "line 4\n", "line four\n"),
        "Change to b",
    );
    if with_conflict {
        w.commit_in_checkout(
            "demo",
            "c.txt",
            &edit("c.txt", "line 5\n", "line five\n"),
            "Change to c",
        );
    }
    let d = numbered_lines(1, 30)
        .replace("line 3\n", "line three\n")
        .replace("line 25\n", "line twenty-five\n");
    w.commit_in_checkout("demo", "d.txt", &d, "Two changes to d");
    w.commit_in_checkout(
        "demo",
        "e.txt",
        &edit("e.txt", "line 6\n", "line six\n"),
        "Change to e",
    );
    w.ok(&["save", "demo"]);

    // Upstream history after the base.
    w.write(&up, "unrelated.txt", "x\n");
    w.commit_all(&up, "Unrelated upstream work");
    w.write(&up, "a.txt", &edit("a.txt", "line 4\n", "line four\n"));
    w.commit_all(&up, "Take the a change verbatim");
    let b = numbered_lines(1, 30)
        .replace("line 4\n", "line four\n")
        .replace("line 28\n", "line twenty-eight\n");
    w.write(&up, "b.txt", &b);
    w.write(&up, "other.txt", "more\n");
    w.commit_all(&up, "Squash the b change with other work");
    w.write(
        &up,
        "c.txt",
        &edit("c.txt", "line 5\n", "line 5 (upstream's way)\n"),
    );
    w.commit_all(&up, "Do c differently");
    w.write(&up, "d.txt", &edit("d.txt", "line 3\n", "line three\n"));
    w.commit_all(&up, "Take half of the d change");
    w
}

/// What a person does at the `Change-to-c.patch` conflict: keep both intents, stage it.
fn resolve_c_by_hand(w: &World) {
    let co = w.checkout("demo");
    w.write(
        &co,
        "c.txt",
        &numbered_lines(1, 30).replace("line 5\n", "line five (upstream's way)\n"),
    );
    w.git(&co, &["add", "c.txt"]);
}

fn changelog(w: &World) -> String {
    std::fs::read_to_string(w.stack_dir("demo").join("CHANGELOG.md")).unwrap_or_default()
}

#[test]
fn update_drops_absorbed_patches_and_stops_at_the_conflict() {
    let w = update_world("update-stop", true);
    let run = w.fails(&["sync", "--update"], 3);
    let err = &run.stderr;
    assert!(
        err.contains("Verbatim-change-to-a.patch: absorbed: same patch id as upstream"),
        "{err}"
    );
    assert!(err.contains("\"Take the a change verbatim\""), "{err}");
    assert!(
        err.contains(
            "Change-to-b.patch: absorbed: the new base already has its change (applies in reverse)"
        ),
        "{err}"
    );
    assert!(err.contains("Squash the b change with other work"), "{err}");
    assert!(
        err.contains("patch `Change-to-c.patch` (3 of 5) conflicts with upstream"),
        "{err}"
    );
    assert!(err.contains("conflict in: c.txt"), "{err}");
    assert!(
        err.contains("Do c differently"),
        "upstream commit named: {err}"
    );
    for way in [
        "sync --continue demo",
        "sync --skip demo",
        "sync --abort demo",
    ] {
        assert!(err.contains(way), "{way}: {err}");
    }
    let status = w.ok(&["status"]);
    assert!(
        status.stdout.contains("stopped at `Change-to-c.patch`"),
        "{}",
        status.stdout
    );
    // A plain sync or save refuses to trample the update.
    // It says where the update stands and names `--continue`, not `--update`.
    let err = w.fails(&["sync"], 1).stderr;
    assert!(
        err.contains("the update of `demo` is stopped at patch `Change-to-c.patch`")
            && err.contains("cargo xtask sync --continue demo"),
        "{err}"
    );
}

#[test]
fn continue_finishes_with_base_version_and_changelog() {
    let w = update_world("update-continue", true);
    w.fails(&["sync", "--update"], 3);
    resolve_c_by_hand(&w);
    let run = w.ok(&["sync", "--continue", "demo"]);
    assert!(
        run.stdout
            .contains("3 patch(es) kept, 2 dropped; version 2 -> 3"),
        "{}",
        run.stdout
    );
    let new_base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    let stack = w.read_stack("demo");
    assert!(stack.contains(&format!("base: {new_base}\nversion: 3\nseries:\n  - Change-to-c.patch\n  - Two-changes-to-d.patch\n  - Change-to-e.patch\n")), "{stack}");
    assert!(!w.stack_dir("demo").join(NAMES[0]).exists());
    assert!(!w.stack_dir("demo").join(NAMES[1]).exists());
    let log = changelog(&w);
    assert!(
        log.contains("5 upstream commit(s) between the bases. Stack version 2 -> 3."),
        "{log}"
    );
    assert!(
        log.contains("- dropped `Verbatim-change-to-a.patch`: absorbed: same patch id as upstream"),
        "{log}"
    );
    assert!(
        log.contains(
            "- dropped `Change-to-b.patch`: absorbed: the new base already has its change"
        ),
        "{log}"
    );
    assert!(
        log.contains("- conflict in `Change-to-c.patch` resolved by hand"),
        "{log}"
    );
    assert!(
        log.contains("- `Two-changes-to-d.patch` shrunk: 2 of 4 changed lines remain"),
        "{log}"
    );
    assert!(
        log.contains("- replayed unchanged: `Change-to-e.patch`"),
        "{log}"
    );
    assert!(log.contains("`git range-diff` of the series:"), "{log}");
    let d = std::fs::read_to_string(w.stack_dir("demo").join(NAMES[3])).unwrap();
    assert!(
        d.contains("+line twenty-five") && !d.contains("+line three"),
        "{d}"
    );
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
    w.ok(&["check"]);
}

#[test]
fn skip_drops_the_patch_by_hand() {
    let w = update_world("update-skip", true);
    w.fails(&["sync", "--update"], 3);
    let run = w.ok(&["sync", "--skip", "demo"]);
    assert!(
        run.stdout.contains("2 patch(es) kept, 3 dropped"),
        "{}",
        run.stdout
    );
    assert!(changelog(&w).contains("- dropped `Change-to-c.patch` by hand (`--skip`)"));
    assert!(!w.read_stack("demo").contains("Change-to-c.patch"));
}

#[test]
fn abort_restores_checkout_and_patches_byte_for_byte() {
    let w = update_world("update-abort", true);
    let before = w.snapshot("demo");
    let head = w.head("demo");
    w.fails(&["sync", "--update"], 3);
    let run = w.ok(&["sync", "--abort", "demo"]);
    assert!(run.stdout.contains("update aborted"), "{}", run.stdout);
    assert_eq!(w.snapshot("demo"), before);
    assert_eq!(w.head("demo"), head);
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
    assert!(w.ok(&["save", "demo"]).stdout.contains("nothing to save"));
}

#[test]
fn dry_run_changes_nothing_and_status_shows_it() {
    let w = update_world("update-dry", true);
    let before = w.snapshot("demo");
    let head = w.head("demo");
    // Fetching moves remote-tracking refs (that is how `status` knows how far behind it is);
    // the checkout's own refs must not move.
    let own_refs = |w: &World| {
        w.git(
            &w.checkout("demo"),
            &["for-each-ref", "refs/heads", "refs/xtask", "refs/tags"],
        )
    };
    let refs = own_refs(&w);
    let run = w.ok(&["sync", "--update", "--dry-run"]);
    let out = &run.stdout;
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(
        out.contains("Verbatim-change-to-a.patch: absorbed: same patch id"),
        "{out}"
    );
    assert!(
        out.contains("Change-to-b.patch: absorbed: the new base already has its change"),
        "{out}"
    );
    assert!(
        out.contains("Change-to-c.patch: conflicts in c.txt"),
        "{out}"
    );
    assert!(
        out.contains("Two-changes-to-d.patch: shrunk: 2 of 4"),
        "{out}"
    );
    assert!(out.contains("Change-to-e.patch: applies"), "{out}");
    assert_eq!(w.snapshot("demo"), before);
    assert_eq!(w.head("demo"), head);
    assert_eq!(own_refs(&w), refs);
    assert_eq!(w.git(&w.checkout("demo"), &["status", "--porcelain"]), "");
    let status = w.ok(&["status"]);
    assert!(
        status
            .stdout
            .contains("1 apply, 2 absorbed, 1 conflict(s), 1 shrunk"),
        "{}",
        status.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&w.ok(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        json["stacks"][0]["last_dry_run"]["patches"][2][1]["kind"],
        "conflict"
    );
    assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n");
}

#[test]
fn a_recorded_resolution_is_reused() {
    let w = update_world("update-rerere", true);
    let before = w.snapshot("demo");
    w.fails(&["sync", "--update"], 3);
    resolve_c_by_hand(&w);
    w.ok(&["sync", "--continue", "demo"]);
    let resolved = std::fs::read(w.stack_dir("demo").join(NAMES[2])).unwrap();
    // Put the old stack back and update again: the same conflict, resolved the same way.
    for (name, _) in w.snapshot("demo") {
        std::fs::remove_file(w.stack_dir("demo").join(name)).unwrap();
    }
    for (name, bytes) in &before {
        std::fs::write(w.stack_dir("demo").join(name), bytes).unwrap();
    }
    w.ok(&["sync", "--force"]);
    let run = w.ok(&["sync", "--update"]);
    assert!(
        run.stderr
            .contains("Change-to-c.patch: resolved (recorded resolution)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(w.stack_dir("demo").join(NAMES[2])).unwrap(),
        resolved
    );
    assert!(changelog(&w).contains("resolved with a recorded resolution (rerere)"));
}

#[test]
fn already_on_the_newest_upstream() {
    let (w, _) = world_with_three_patches("update-noop");
    let before = w.snapshot("demo");
    let run = w.ok(&["sync", "--update"]);
    assert!(
        run.stdout.contains("already on the newest `main`"),
        "{}",
        run.stdout
    );
    assert_eq!(w.snapshot("demo"), before);
}

#[test]
fn update_to_a_given_revision() {
    let w = update_world("update-to", false);
    let target = w.git(&w.upstream, &["rev-parse", "HEAD~3"]);
    w.ok(&["sync", "--update", "--to", &target]);
    assert!(w.read_stack("demo").contains(&format!("base: {target}\n")));
    // Only the verbatim merge is in that range.
    assert!(!w.read_stack("demo").contains(NAMES[0]));
    assert!(w.read_stack("demo").contains(NAMES[1]));
}

/// Killed anywhere, a rerun of `sync --update` reaches the result of an uninterrupted one.
#[test]
fn killed_updates_resume_to_the_same_result() {
    let reference = update_world("update-ref", false);
    reference.ok(&["sync", "--update"]);
    let strip = |w: &World| w.snapshot_portable("demo");
    let want = strip(&reference);
    for point in [
        "after-start",
        "before-patch",
        "before-record",
        "before-write",
        "after-write",
    ] {
        let w = update_world(&format!("update-kill-{point}"), false);
        let out = w
            .xtask_cmd(&["sync", "--update"])
            .env("XTASK_KILL_AT", point)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(&format!("killed at {point}")),
            "{point}: {stderr}"
        );
        // Nothing half-written: the stack still parses and its files agree.
        w.ok(&["check"]);
        let run = w.ok(&["sync", "--update"]);
        assert!(
            run.stdout.contains("updated onto"),
            "{point}: {}",
            run.stdout
        );
        assert_eq!(strip(&w), want, "after a kill at {point}");
        assert_eq!(w.ok(&["sync"]).stdout, "demo: up to date\n", "{point}");
    }
}

/// `--to=--upload-pack=<script>` once ran the script through `git fetch`.
#[cfg(unix)]
#[test]
fn a_to_that_looks_like_an_option_runs_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let w = update_world("update-inject", false);
    let marker = w.tmp.join("marker");
    let script = w.tmp.join("evil.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = w.snapshot("demo");
    for to in [
        format!("--to=--upload-pack={}", script.display()),
        format!("--to=-u{}", script.display()),
    ] {
        let run = w.fails(&["sync", "--update", &to], 1);
        assert!(
            run.stderr.contains("never begins with `-`"),
            "{}",
            run.stderr
        );
        assert!(!marker.exists(), "{to} ran the script");
    }
    assert_eq!(w.snapshot("demo"), before);
}

/// The update record is read from disk: a `new_pin` of the other kind than the stack's
/// upstream (a record edited by hand) is an error naming the file, never a panic, and the
/// stack is left as it was.
#[test]
fn a_recorded_pin_of_the_wrong_kind_is_refused() {
    let w = update_world("update-wrong-pin", true);
    let before = w.snapshot("demo");
    w.fails(&["sync", "--update"], 3);
    let record = w.checkout("demo").join(".git/xtask-update.json");
    let text = std::fs::read_to_string(&record).unwrap();
    let new_base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    let pin = format!("\"new_pin\": \"{new_base}\"");
    assert!(text.contains(&pin), "{text}");
    let sdist = format!(
        "\"new_pin\": {{\"version\": \"1.0\", \"sha256\": \"{}\"}}",
        "b".repeat(64)
    );
    std::fs::write(&record, text.replace(&pin, &sdist)).unwrap();
    resolve_c_by_hand(&w);
    let run = w.fails(&["sync", "--continue", "demo"], 1);
    assert!(
        run.stderr.contains(
            "xtask-update.json`: `new_pin`: a git upstream needs a commit id as base, not a version and sha256; give up with `cargo xtask sync --abort demo`"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(w.snapshot("demo"), before);
    w.ok(&["sync", "--abort", "demo"]);
    assert_eq!(w.snapshot("demo"), before);
}
