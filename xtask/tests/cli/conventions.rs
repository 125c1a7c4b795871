//! `export-prs` following a stack's `conventions:`: upstream's checks on every commit, the
//! news entry (or none), the title pattern, the statement, and the proposer's identity.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::harness::*;

/// An upstream whose `check.sh` fails while any file says `BROKEN`, and a stack of three
/// patches in two groups: `feature` (its first commit says BROKEN, its second fixes that) and
/// `other`. With `pyo3_url`, the upstream's address ends in `/PyO3/pyo3`, where export-prs
/// writes a news entry unless told otherwise.
fn world(name: &str, pyo3_url: bool) -> World {
    let mut w = World::new(name);
    if pyo3_url {
        let at = w.tmp.join("PyO3/pyo3");
        let (from, to) = (w.upstream.to_str().unwrap(), at.to_str().unwrap());
        w.git(&w.tmp, &["clone", "--quiet", from, to]);
        w.upstream = at;
    }
    let up = w.upstream.clone();
    w.write(
        &up,
        "check.sh",
        "#!/bin/sh\n! grep -rqs --exclude=check.sh --exclude-dir=.git BROKEN .\n",
    );
    std::fs::set_permissions(up.join("check.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = w.commit_all(&up, "Add the check");
    w.write_stack("demo", &base, &[]);
    w.ok(&["sync"]);
    w.commit_in_checkout("demo", "feature.txt", "BROKEN\n", "Add feature");
    w.commit_in_checkout("demo", "feature.txt", "done\n", "Finish feature");
    w.commit_in_checkout("demo", "c.txt", "c\n", "Add c");
    w.ok(&["save", "demo"]);
    w
}

/// Appends `conventions` and the two groups (`feature` with `feature_news`) to the stack.
fn set_conventions(w: &World, conventions: &str, feature_news: &str) {
    let path = w.stack_dir("demo").join("stack.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.split("conventions:").next().unwrap().to_string();
    let text = text.split("prs:").next().unwrap().to_string();
    let prs = format!(
        "prs:\n  - name: feature\n    title: Add feature\n    patches: [Add-feature.patch, Finish-feature.patch]\n{feature_news}  - name: other\n    title: Add c\n    patches: [Add-c.patch]\nconventions:\n  source: https://example.org/CONTRIBUTING.md\n{conventions}"
    );
    std::fs::write(&path, text + &prs).unwrap();
}

fn description(w: &World, group: &str) -> String {
    std::fs::read_to_string(w.root.join(format!("target/xtask/prs/demo/{group}.md"))).unwrap()
}

fn files(w: &World, branch: &str) -> String {
    w.git(
        &w.checkout("demo"),
        &["ls-tree", "-r", "--name-only", branch],
    )
}

#[test]
fn every_commit_passes_upstreams_checks_or_the_first_that_fails_is_named() {
    let w = world("conv-each", false);
    // The tip of `feature` passes upstream's check: verified at the tip only, it passes.
    set_conventions(&w, "  checks: [./check.sh]\n", "");
    w.ok(&["export-prs", "demo"]);
    assert!(
        description(&w, "feature").contains("| `./check.sh` | passed |"),
        "{}",
        description(&w, "feature")
    );
    let co = w.checkout("demo");
    let broken = w.git(&co, &["rev-parse", "--short=12", "pr/feature~1"]);

    set_conventions(
        &w,
        "  checks: [./check.sh]\n  verify_each_commit: true\n",
        "",
    );
    let run = w.fails(&["export-prs", "demo"], 1);
    assert!(
        run.stderr.contains(&format!(
            "pr/feature: `./check.sh` failed at commit {broken} (Add feature), checked out on its own"
        )),
        "{}",
        run.stderr
    );
    let other = w.git(&co, &["rev-parse", "--short=12", "pr/other"]);
    let md = description(&w, "other");
    assert!(
        md.contains(&format!(
            "Every commit, checked out on its own:\n\n| commit | command | result | seconds |\n| --- | --- | --- | ---: |\n| {other} Add c | `./check.sh` | passed |"
        )),
        "{md}"
    );
}

#[test]
fn news_title_statement_and_unknown_keys() {
    let w = world("conv-news", true);
    let statement =
        "  statement: |\n    I wrote this with the help of a tool and reviewed every line.\n";
    // PyO3's address alone would give every branch a news fragment; `news: none` gives none.
    set_conventions(
        &w,
        &format!("  title: \"refactor: {{title}}\"\n  news: none\n{statement}"),
        "    news: none\n",
    );
    w.ok(&["export-prs", "demo"]);
    for b in ["pr/feature", "pr/other"] {
        assert!(!files(&w, b).contains("newsfragments"), "{}", files(&w, b));
    }
    let md = description(&w, "other");
    assert!(md.starts_with("# refactor: Add c\n"), "{md}");
    assert!(
        md.ends_with(
            "| --- | --- | ---: |\n\nI wrote this with the help of a tool and reviewed every line.\n"
        ),
        "{md}"
    );

    // towncrier: a fragment for each group but the one that says `news: none`.
    set_conventions(&w, "  news: towncrier-md\n", "    news: none\n");
    w.ok(&["export-prs", "demo"]);
    assert!(
        files(&w, "pr/other").contains("newsfragments/PLACEHOLDER-other.changed.md"),
        "{}",
        files(&w, "pr/other")
    );
    assert!(!files(&w, "pr/feature").contains("newsfragments"));
    set_conventions(&w, "  news: towncrier-rst\n  news_default: misc\n", "");
    w.ok(&["export-prs", "demo"]);
    assert!(files(&w, "pr/feature").contains("newsfragments/PLACEHOLDER-feature.misc.rst"));

    set_conventions(&w, "  news: none\n  colour: red\n", "");
    let line = w
        .read_stack("demo")
        .lines()
        .position(|l| l == "  colour: red")
        .unwrap()
        + 1;
    let run = w.fails(&["export-prs", "demo"], 1);
    assert!(
        run.stderr.contains(&format!(
            "stack.yaml:{line}:3: conventions: unknown field `colour`, expected one of `source`"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_groups_own_news_entry_replaces_the_placeholder_and_is_listed_for_renaming() {
    let w = world("conv-own-news", false);
    // `other` brings its own fragment in its patch, still named without the PR number.
    w.commit_in_checkout(
        "demo",
        "newsfragments/PLACEHOLDER-other.added.md",
        "Add c.\n",
        "Add c's news",
    );
    w.ok(&["save", "demo"]);
    let path = w.stack_dir("demo").join("stack.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.split("prs:").next().unwrap().to_string()
        + "prs:\n  - name: feature\n    title: Add feature\n    patches: [Add-feature.patch, Finish-feature.patch]\n  - name: other\n    title: Add c\n    patches: [Add-c.patch, Add-c-s-news.patch]\nconventions:\n  source: https://example.org/CONTRIBUTING.md\n  news: towncrier-md\n";
    std::fs::write(&path, text).unwrap();
    w.ok(&["export-prs", "demo"]);
    let other = files(&w, "pr/other");
    assert!(
        other.contains("newsfragments/PLACEHOLDER-other.added.md")
            && !other.contains("PLACEHOLDER-other.changed.md"),
        "{other}"
    );
    let co = w.checkout("demo");
    let log = w.git(&co, &["log", "--format=%s", "-3", "pr/other"]);
    assert!(log.starts_with("Add c's news\nAdd c\n"), "{log}");
    assert!(
        description(&w, "other").contains("- rename `newsfragments/PLACEHOLDER-other.added.md` to `newsfragments/<PR number>.added.md` once the pull request has a number"),
        "{}",
        description(&w, "other")
    );
    // A group without one still gets the placeholder, and the same reminder.
    assert!(files(&w, "pr/feature").contains("newsfragments/PLACEHOLDER-feature.changed.md"));
    assert!(
        description(&w, "feature")
            .contains("- rename `newsfragments/PLACEHOLDER-feature.changed.md`")
    );
}

/// Runs xtask with no identity in the environment: only the git configuration under HOME.
fn as_configured(w: &World, args: &[&str]) -> Run {
    let mut c = w.xtask_cmd(args);
    for k in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ] {
        c.env_remove(k);
    }
    Run::from(c.output().unwrap())
}

#[test]
fn branches_carry_the_proposers_git_identity() {
    let w = world("conv-ident", false);
    // `save` records the author of the checkout's commits, not a placeholder.
    let patch = std::fs::read_to_string(w.stack_dir("demo").join("Add-feature.patch")).unwrap();
    assert!(
        patch.contains("\nFrom: A U Thor <author@example.org>\n"),
        "{patch}"
    );
    let config: PathBuf = w.tmp.join("home/.gitconfig");
    std::fs::write(
        &config,
        "[user]\n\tname = Pro Poser\n\temail = pro@example.org\n",
    )
    .unwrap();
    set_conventions(&w, "", "");
    let run = as_configured(&w, &["export-prs", "demo"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let co = w.checkout("demo");
    let who = |range: &str| w.git(&co, &["log", "--format=%an <%ae>|%cn <%ce>", range]);
    assert_eq!(
        who("pr/feature~2..pr/feature"),
        "Pro Poser <pro@example.org>|Pro Poser <pro@example.org>\n"
            .repeat(2)
            .trim_end()
    );

    set_conventions(&w, "  keep_author: true\n", "");
    let run = as_configured(&w, &["export-prs", "demo"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        who("pr/feature~2..pr/feature"),
        "A U Thor <author@example.org>|Pro Poser <pro@example.org>\n"
            .repeat(2)
            .trim_end()
    );

    std::fs::remove_file(&config).unwrap();
    let run = as_configured(&w, &["export-prs", "demo"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no git identity to commit the pull-request branches with; set yours with `git config --global user.name \"Your Name\"` and `git config --global user.email you@example.org`"),
        "{}",
        run.stderr
    );
}
