//! `save`: deterministic export, and editing a stack through its checkout.

use crate::harness::*;

#[test]
fn save_of_an_unchanged_checkout_is_byte_identical() {
    let (w, _) = world_with_three_patches("roundtrip");
    let before = w.snapshot("demo");
    // Freshly applied from the files, then exported again: the same bytes.
    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    w.ok(&["sync"]);
    let run = w.ok(&["save", "demo"]);
    assert!(run.stdout.contains("nothing to save"), "{}", run.stdout);
    assert_eq!(w.snapshot("demo"), before);
    // And an export made with a hostile user configuration is the same too.
    let cfg = w.tmp.join("home/.gitconfig");
    std::fs::write(&cfg, "[diff]\n\tnoprefix = true\n\tmnemonicPrefix = true\n\talgorithm = histogram\n\trenames = copies\n[format]\n\tsignature = me\n\tnumbered = true\n\tsignOff = true\n\tsuffix = .diff\n[core]\n\tabbrev = 7\n").unwrap();
    for name in [
        "Spell-out-line-five.patch",
        "Add-a-NEWS-file.patch",
        "Extend-the-guide.patch",
    ] {
        std::fs::remove_file(w.stack_dir("demo").join(name)).unwrap();
    }
    w.ok(&["save", "demo"]);
    std::fs::remove_file(&cfg).unwrap();
    let patches = |s: Vec<(String, Vec<u8>)>| {
        s.into_iter()
            .filter(|(n, _)| n.ends_with(".patch"))
            .collect::<Vec<_>>()
    };
    assert_eq!(patches(w.snapshot("demo")), patches(before));
}

#[test]
fn exported_patches_are_format_patch_files_with_zero_ids() {
    let (w, _) = world_with_three_patches("format");
    let text = std::fs::read_to_string(w.stack_dir("demo").join("Add-a-NEWS-file.patch")).unwrap();
    assert!(
        text.starts_with(
            "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("Subject: [PATCH] Add a NEWS file\n"),
        "{text}"
    );
    assert!(text.contains("Upstream-Status: Pending\n"), "{text}");
    assert!(
        text.contains("index 0000000000000000000000000000000000000000.."),
        "full index: {text}"
    );
    assert!(!text.contains("\n-- \n"), "no signature: {text}");
    assert!(w.read_stack("demo").contains("version: 2\nseries:\n  - Spell-out-line-five.patch\n  - Add-a-NEWS-file.patch\n  - Extend-the-guide.patch\n"));
    assert!(
        w.read_stack("demo").starts_with("# test stack\n"),
        "comments survive"
    );
    w.ok(&["check"]);
}

#[test]
fn add_edit_reorder_and_drop_through_the_checkout() {
    let (w, base) = world_with_three_patches("edit");
    let co = w.checkout("demo");

    // Add.
    w.commit_in_checkout("demo", "src/new.c", "int x;\n", "Add new.c");
    let run = w.ok(&["save", "demo"]);
    assert!(
        run.stdout.contains("1 added; version 2 -> 3"),
        "{}",
        run.stdout
    );
    assert!(w.stack_dir("demo").join("Add-new.c.patch").exists());

    // Edit the second patch (fixup + autosquash keeps its subject, so its file name stays).
    let news = w.git(&co, &["log", "--format=%H", "--grep=Add a NEWS file"]);
    w.write(&co, "NEWS", "news\nand more\n");
    w.git(
        &co,
        &["commit", "--quiet", "--all", &format!("--fixup={news}")],
    );
    w.sh.set_var("GIT_SEQUENCE_EDITOR", "true");
    w.git(&co, &["rebase", "--quiet", "--autosquash", "-i", &base]);
    let run = w.ok(&["save", "demo"]);
    assert!(
        run.stdout.contains("1 changed; version 3 -> 4"),
        "{}",
        run.stdout
    );
    let news_patch =
        std::fs::read_to_string(w.stack_dir("demo").join("Add-a-NEWS-file.patch")).unwrap();
    assert!(news_patch.contains("+and more"), "{news_patch}");

    // Reorder: move the last patch first.
    let ids: Vec<String> = w
        .git(&co, &["rev-list", "--reverse", &format!("{base}..HEAD")])
        .lines()
        .map(str::to_string)
        .collect();
    w.git(&co, &["reset", "--quiet", "--hard", &base]);
    for id in [&ids[3], &ids[0], &ids[1], &ids[2]] {
        w.git(&co, &["cherry-pick", "--quiet", id]);
    }
    let run = w.ok(&["save", "demo"]);
    assert!(
        run.stdout.contains("reordered; version 4 -> 5"),
        "{}",
        run.stdout
    );
    assert!(
        w.read_stack("demo")
            .contains("series:\n  - Add-new.c.patch\n  - Spell-out-line-five.patch\n")
    );

    // Drop the guide patch.
    w.git(&co, &["reset", "--quiet", "--hard", "HEAD~1"]);
    let run = w.ok(&["save", "demo"]);
    assert!(
        run.stdout.contains("1 dropped; version 5 -> 6"),
        "{}",
        run.stdout
    );
    assert!(!w.stack_dir("demo").join("Extend-the-guide.patch").exists());
    w.ok(&["check"]);

    // And the saved stack reproduces the checkout from scratch.
    let tree = w.git(&co, &["rev-parse", "HEAD^{tree}"]);
    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    w.ok(&["sync"]);
    assert_eq!(w.git(&co, &["rev-parse", "HEAD^{tree}"]), tree);
}

#[test]
fn save_refuses_commits_without_upstream_status() {
    let (w, _) = world_with_three_patches("nostatus");
    let co = w.checkout("demo");
    w.write(&co, "x", "x\n");
    w.commit_all(&co, "No trailer here");
    let before = w.snapshot("demo");
    let run = w.fails(&["save", "demo"], 1);
    assert!(
        run.stderr
            .contains("`No trailer here` has no `Upstream-Status:` trailer"),
        "{}",
        run.stderr
    );
    assert_eq!(w.snapshot("demo"), before, "nothing written");
}

#[test]
fn save_refuses_uncommitted_changes() {
    let (w, _) = world_with_three_patches("save-dirty");
    w.write(&w.checkout("demo"), "README", "changed\n");
    let run = w.fails(&["save", "demo"], 1);
    assert!(
        run.stderr.contains("uncommitted changes (README)"),
        "{}",
        run.stderr
    );
}

/// `git am` cleans subjects for mail (drops `[3.15]`, `Re:`, `[PATCH v2]`, folds spaces), so a
/// sync followed by a save of the untouched checkout used to rename and re-version patches.
#[test]
fn sync_then_save_keeps_every_subject_form() {
    let w = World::new("subjects");
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    w.write_stack("demo", &base, &[]);
    w.ok(&["sync"]);
    let long = "Make the long subject wrap ".repeat(6);
    let long_unicode = "Ünïcödé wörds that wrap ".repeat(6);
    let subjects = [
        "[3.15] Backport the fix",
        "[PATCH] Literal patch prefix",
        "[PATCH v2] Second version",
        "Re: Reply-style subject",
        "RE: [3.15] Shouting reply",
        ": Leading colon",
        "Ünïcödé subject — with a dash",
        long.trim_end(),
        long_unicode.trim_end(),
        "Trailing whitespace   ",
        "Two  spaces\tand a tab",
        "[a] [b] Two groups",
    ];
    for (i, subject) in subjects.iter().enumerate() {
        w.commit_in_checkout("demo", &format!("f{i}.txt"), "x\n", subject);
    }
    let commits = w.stack_subjects("demo");
    w.ok(&["save", "demo"]);
    let saved = w.stack_subjects("demo");
    assert_eq!(saved, commits);
    let before = w.snapshot("demo");

    std::fs::remove_dir_all(w.root.join("checkouts")).unwrap();
    w.ok(&["sync"]);
    assert_eq!(w.stack_subjects("demo"), saved);
    let run = w.ok(&["save", "demo"]);
    assert!(run.stdout.contains("nothing to save"), "{}", run.stdout);
    assert_eq!(w.snapshot("demo"), before);
}
