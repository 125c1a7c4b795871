//! `export-prs`: branches per group, verification, the hidden dependency, descriptions,
//! pushing to a fork with a lease, idempotence.

use std::os::unix::fs::PermissionsExt;

use crate::harness::*;

/// An upstream with a `check.sh` that fails when `needs.txt` names a missing file, and a
/// stack of six patches in three groups: alpha; beta (secretly needs alpha's file); gamma,
/// stacked on alpha.
fn export_world(name: &str, beta_depends: bool) -> World {
    let w = World::new(name);
    let up = w.upstream.clone();
    w.write(&up, "check.sh", "#!/bin/sh\nfor f in $(cat needs.txt 2>/dev/null); do test -f \"$f\" || { echo \"missing $f\"; exit 1; }; done\n");
    std::fs::set_permissions(up.join("check.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = w.commit_all(&up, "Add the check");
    w.write_stack("demo", &base, &[]);
    w.ok(&["sync"]);
    let lib = numbered_lines(1, 30);
    w.commit_in_checkout("demo", "alpha.txt", "alpha\n", "Add alpha");
    w.commit_in_checkout(
        "demo",
        "src/lib.c",
        &lib.replace("line 10\n", "line ten\n"),
        "Spell out line ten",
    );
    w.commit_in_checkout("demo", "b.txt", "b\n", "Add b");
    w.commit_in_checkout("demo", "needs.txt", "alpha.txt\n", "Require alpha");
    w.commit_in_checkout(
        "demo",
        "src/lib.c",
        &lib.replace("line 10\n", "line TEN\n"),
        "Shout line ten",
    );
    w.commit_in_checkout("demo", "c.txt", "c\n", "Add c");
    w.ok(&["save", "demo"]);
    let beta_deps = if beta_depends {
        "    depends_on: [alpha]\n"
    } else {
        ""
    };
    let prs = format!(
        "verify:\n  - ./check.sh\nprs:\n  - name: alpha\n    title: Add alpha\n    body: The first part.\n    patches: [Add-alpha.patch, Spell-out-line-ten.patch]\n  - name: beta\n    title: Add b\n    patches: [Add-b.patch, Require-alpha.patch]\n{beta_deps}  - name: gamma\n    title: Shout\n    patches: [Shout-line-ten.patch, Add-c.patch]\n    depends_on: [alpha]\n"
    );
    let path = w.stack_dir("demo").join("stack.yaml");
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + &prs).unwrap();
    w
}

fn prs_dir(w: &World) -> std::path::PathBuf {
    w.root.join("target/xtask/prs/demo")
}

#[test]
fn a_hidden_dependency_is_found_and_the_fix_suggested() {
    let w = export_world("export-hidden", false);
    let run = w.fails(&["export-prs", "demo"], 1);
    assert!(run.stderr.contains("pr/beta: `./check.sh` failed on the branch; it works on top of `alpha`: add `depends_on: [alpha]` to group `beta`"), "{}", run.stderr);
    assert!(run.stdout.contains("pr/alpha"), "{}", run.stdout);
    let co = w.checkout("demo");
    // alpha and gamma were made; gamma stands on alpha.
    assert_eq!(
        w.git(&co, &["log", "--format=%s", "pr/gamma"])
            .lines()
            .take(5)
            .collect::<Vec<_>>(),
        [
            "Add c",
            "Shout line ten",
            "Spell out line ten",
            "Add alpha",
            "Add the check",
        ]
    );
    assert!(w.git(&co, &["branch", "--list", "pr/beta"]).is_empty());
}

#[test]
fn branches_descriptions_push_and_idempotence() {
    let w = export_world("export-ok", true);
    let co = w.checkout("demo");
    let fork = w.tmp.join("fork.git");
    let fork_s = fork.to_str().unwrap();
    w.git(&w.tmp, &["init", "--quiet", "--bare", fork_s]);
    w.git(&co, &["remote", "add", "fork", fork_s]);

    let run = w.ok(&["export-prs", "demo", "--push", "fork"]);
    assert!(
        run.stdout.contains("pushed 3 branch(es) to `fork`"),
        "{}",
        run.stdout
    );
    for b in ["alpha", "beta", "gamma"] {
        assert_eq!(
            w.git(&fork, &["rev-parse", &format!("pr/{b}")]),
            w.git(&co, &["rev-parse", &format!("pr/{b}")])
        );
    }
    // beta is stacked on alpha and passes there.
    assert_eq!(
        w.git(&co, &["rev-parse", "pr/beta~2"]),
        w.git(&co, &["rev-parse", "pr/alpha"])
    );
    let md = std::fs::read_to_string(prs_dir(&w).join("beta.md")).unwrap();
    assert!(md.starts_with("# Add b\n"), "{md}");
    assert!(
        md.contains("builds on the pull request from branch `pr/alpha`"),
        "{md}"
    );
    assert!(md.contains("- Require alpha ("), "{md}");
    assert!(md.contains("| `./check.sh` | passed |"), "{md}");
    assert!(
        !md.contains("Upstream-Status"),
        "internal trailers stay internal: {md}"
    );
    let alpha = std::fs::read_to_string(prs_dir(&w).join("alpha.md")).unwrap();
    assert!(
        alpha.contains("# Add alpha\n\nThe first part.\n"),
        "{alpha}"
    );

    // Nothing changed: nothing rebuilt, verified or pushed.
    let again = w.ok(&["export-prs", "demo", "--push", "fork"]);
    assert!(
        again.stdout.contains("pushed 0 branch(es)"),
        "{}",
        again.stdout
    );
    assert_eq!(
        again.stdout.matches("unchanged").count(),
        3,
        "{}",
        again.stdout
    );

    // Someone else moves pr/alpha on the fork; our next push of a changed alpha must refuse.
    w.git(
        &co,
        &["push", "--quiet", "--force", "fork", "pr/gamma:pr/alpha"],
    );
    let theirs = w.git(&co, &["rev-parse", "pr/gamma"]);
    let edit = w.checkout("demo");
    let id = w.git(&edit, &["log", "--format=%H", "--grep=Add alpha"]);
    w.write(&edit, "alpha.txt", "alpha, improved\n");
    w.git(
        &edit,
        &["commit", "--quiet", "--all", &format!("--fixup={id}")],
    );
    w.sh.set_var("GIT_SEQUENCE_EDITOR", "true");
    let base = w.git(&edit, &["rev-parse", "refs/xtask/base"]);
    w.git(&edit, &["rebase", "--quiet", "--autosquash", "-i", &base]);
    w.ok(&["save", "demo"]);
    let refused = w.fails(&["export-prs", "demo", "--push", "fork"], 1);
    assert!(
        refused
            .stderr
            .contains("pushing pr/alpha to `fork` was refused"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        w.git(&fork, &["rev-parse", "pr/alpha"]),
        theirs,
        "their branch is intact"
    );
}

#[test]
fn a_group_that_cannot_move_past_another_is_refused() {
    let w = export_world("export-overlap", false);
    let path = w.stack_dir("demo").join("stack.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("    depends_on: [alpha]\n", "");
    std::fs::write(&path, text).unwrap();
    let run = w.fails(&["export-prs", "demo"], 1);
    assert!(run.stderr.contains("group `gamma` has `Shout-line-ten.patch`, which comes after `Spell-out-line-ten.patch` of group `alpha` and changes the same lines of src/lib.c"), "{}", run.stderr);
}

#[test]
fn dry_run_shows_the_plan() {
    let w = export_world("export-dry", true);
    let run = w.ok(&["export-prs", "demo", "--dry-run"]);
    assert!(run.stdout.contains("pr/gamma"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("on pr/alpha: Shout-line-ten.patch, Add-c.patch"),
        "{}",
        run.stdout
    );
    assert!(
        w.git(&w.checkout("demo"), &["branch", "--list", "pr/*"])
            .is_empty()
    );
}
