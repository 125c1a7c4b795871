//! When a sync does not go through: what unsaved work is in the way, the backup `--force`
//! keeps, the report of a patch that stopped, and `--continue`, `--skip`, `--abort`.

use std::time::SystemTime;

use anyhow::{Result, bail};
use xshell::Shell;

use super::checkout::Stopped;
use super::intent::{self, Op};
use crate::git::{self, AmOutcome, Checkout};
use crate::stack::{CheckoutState, Layout, Project};

pub fn describe_unsaved(
    repo: &git2::Repository,
    uncommitted: &[String],
    moved_from: Option<&str>,
    head: Option<&str>,
) -> Result<String> {
    let mut lines = Vec::new();
    for f in uncommitted.iter().take(10) {
        lines.push(format!("  uncommitted: {f}"));
    }
    if uncommitted.len() > 10 {
        lines.push(format!(
            "  ... and {} more uncommitted files",
            uncommitted.len() - 10
        ));
    }
    if let (Some(tip), Some(head)) = (moved_from, head) {
        let (tip, head) = (git2::Oid::from_str(tip)?, git2::Oid::from_str(head)?);
        let new = git::commits_between(repo, tip, head).unwrap_or_default();
        let gone = git::commits_between(repo, head, tip).unwrap_or_default();
        for (id, subject) in &new {
            lines.push(format!("  not saved: {} {subject}", git::short(id)));
        }
        if !gone.is_empty() {
            lines.push(format!(
                "  HEAD no longer has {} commit(s) of the last sync or save, such as {} {}",
                gone.len(),
                git::short(gone[0].0),
                gone[0].1
            ));
        }
        if new.is_empty() && gone.is_empty() {
            lines.push(format!("  HEAD moved to {}", git::short(head)));
        }
    }
    Ok(lines.join("\n"))
}

/// What a backup keeps: a commit, uncommitted changes of tracked files, and work-tree files
/// by content (untracked files a checkout would write over, files found after a crash).
#[derive(Debug, Default)]
pub struct Keep<'a> {
    pub head: Option<&'a str>,
    pub uncommitted: &'a [String],
    pub files: &'a [String],
}

/// Keeps what is about to be discarded under `refs/xtask/backup/<unix time>[-what]` and
/// returns each ref as people should see it (with how to restore it). Everything that
/// discards work goes through here: `sync --force`, `sync --abort`, and crash recovery.
pub fn backup(co: &Checkout, keep: &Keep, why: &str) -> Result<Vec<String>> {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    let repo = co.open()?;
    let mut n = 0;
    let mut stamp = secs.to_string();
    while ["", "-uncommitted", "-files"].iter().any(|suffix| {
        repo.find_reference(&format!("refs/xtask/backup/{stamp}{suffix}"))
            .is_ok()
    }) {
        n += 1;
        stamp = format!("{secs}.{n}");
    }
    let mut refs = Vec::new();
    if let Some(head) = keep.head {
        let name = format!("refs/xtask/backup/{stamp}");
        co.update_ref(&name, head, why)?;
        refs.push(name);
    }
    let head = git::head_commit(&repo);
    if !keep.uncommitted.is_empty() {
        let name = format!("refs/xtask/backup/{stamp}-uncommitted");
        // `git stash create` keeps index and work tree apart and restores with `git stash
        // apply`; it refuses a conflicted index, where a snapshot of the files still works.
        let stash = intent::run(co, Op::Stash, || co.stash_create())
            .ok()
            .flatten();
        match stash {
            Some(stash) => {
                co.update_ref(&name, &stash, why)?;
                refs.push(format!("{name} (restore with `git stash apply {name}`)"));
            }
            None => {
                let id = git::snapshot_files(&repo, &co.dir, head, keep.uncommitted, why)?;
                co.update_ref(&name, &id.to_string(), why)?;
                refs.push(restore_hint(&name, keep.uncommitted));
            }
        }
    }
    if !keep.files.is_empty() {
        let name = format!("refs/xtask/backup/{stamp}-files");
        let id = git::snapshot_files(&repo, &co.dir, head, keep.files, why)?;
        co.update_ref(&name, &id.to_string(), why)?;
        refs.push(restore_hint(&name, keep.files));
    }
    Ok(refs)
}

fn restore_hint(name: &str, files: &[String]) -> String {
    let mut shown: Vec<&str> = files.iter().take(5).map(String::as_str).collect();
    if files.len() > 5 {
        shown.push("...");
    }
    format!(
        "{name} ({}; restore a file with `git checkout {name} -- <file>`)",
        shown.join(", ")
    )
}

pub fn stopped(
    layout: &Layout,
    co: &Checkout,
    project: &Project,
    base: &str,
    git_output: &str,
) -> Stopped {
    let n = co.am_current().unwrap_or(0);
    let total = project.stack.series.len();
    let patch = project
        .stack
        .series
        .get(n.wrapping_sub(1))
        .map_or("?".to_string(), |p| p.to_string());
    let shown = layout.show(&co.dir);
    let name = &project.name;
    let mut report = format!(
        "patch `{patch}` ({n} of {total}) does not apply on {} in `{shown}`\n",
        git::short(base)
    );
    for (at, expected) in co.failed_hunks().unwrap_or_default() {
        report.push_str(&format!("  hunk at {at} does not apply; it expects:\n"));
        for l in expected.iter().take(6) {
            report.push_str(&format!("      | {l}\n"));
        }
        if expected.len() > 6 {
            report.push_str(&format!(
                "      | ... ({} more lines)\n",
                expected.len() - 6
            ));
        }
    }
    for line in git_output.lines().map(str::trim) {
        if line.starts_with("error: ") && !line.contains("Failed to merge") {
            report.push_str(&format!("  git: {line}\n"));
        }
    }
    if let Ok(files) = co.conflicted_files() {
        for f in files {
            report.push_str(&format!("  conflict in: {f}\n"));
        }
    }
    report.push_str(&format!(
        "to go on, in `{shown}`:\n  resolve: fix the files, `git add` them, then `cargo xtask sync --continue {name}` and `cargo xtask save {name}`\n  skip the patch: `cargo xtask sync --skip {name}` (it leaves the series at the next save)\n  give up: `cargo xtask sync --abort {name}` puts the checkout back as it was"
    ));
    Stopped { report }
}

pub fn resume(sh: &Shell, layout: &Layout, project: &Project, skip: bool) -> Result<String> {
    let co = Checkout::new(sh, &layout.checkout(&project.name));
    intent::recover(&co, &layout.show(&co.dir), &project.name)?;
    if !co.am_in_progress() {
        let what = if skip { "skip" } else { "continue" };
        bail!(
            "nothing to {what}: `{}` is not stopped at a patch",
            layout.show(&co.dir)
        );
    }
    let outcome = if skip {
        intent::run(&co, Op::AmSkip, || co.am_skip())?
    } else {
        intent::run(&co, Op::AmContinue, || co.am_continue())?
    };
    let base = co
        .open()
        .ok()
        .and_then(|r| git::ref_target(&r, git::BASE_REF))
        .map(|b| b.to_string())
        .unwrap_or_default();
    match outcome {
        AmOutcome::Stopped { git_output } => {
            Err(stopped(layout, &co, project, &base, &git_output).into())
        }
        AmOutcome::Applied => {
            co.delete_ref(git::BEFORE_SYNC_REF)?;
            co.settle_index()?;
            Ok(format!(
                "all patches applied; the checkout now differs from patches/{0}/, so run `cargo xtask save {0}` to keep it",
                project.name
            ))
        }
    }
}

/// `sync --abort`: back to where HEAD was when the sync started. What that discards (changes
/// in the work tree, commits HEAD has and that point does not) is kept under a backup ref
/// first, as `--force` does.
pub fn abort(sh: &Shell, layout: &Layout, project: &Project) -> Result<String> {
    let co = Checkout::new(sh, &layout.checkout(&project.name));
    let shown = layout.show(&co.dir);
    let recovery = intent::recover(&co, &shown, &project.name)?;
    let repo = co.open()?;
    let was_applying = co.am_in_progress();
    let before = git::ref_target(&repo, git::BEFORE_SYNC_REF);
    if before.is_none() && !was_applying && recovery.op.is_none() {
        bail!("nothing to abort: `{shown}` is not stopped at a patch");
    }
    // After a crash, recovery already kept what matched no commit; the rest is the tool's.
    let uncommitted = if recovery.redo() {
        Vec::new()
    } else {
        co.uncommitted_changes()?
    };
    let head = git::head_commit(&repo);
    let base = git::ref_target(&repo, git::BASE_REF);
    let lost_head = match (head, before) {
        (Some(h), Some(b)) => {
            h != b && Some(h) != base && !repo.graph_descendant_of(b, h).unwrap_or(false)
        }
        _ => false,
    };
    let head_text = head.map(|h| h.to_string());
    let kept = backup(
        &co,
        &Keep {
            head: head_text.as_deref().filter(|_| lost_head),
            uncommitted: &uncommitted,
            files: &[],
        },
        "xtask: before sync --abort",
    )?;
    if !kept.is_empty() {
        eprintln!(
            "{}: keeping what --abort discards as {}",
            project.name,
            kept.join(" and ")
        );
    }
    if was_applying {
        intent::run(&co, Op::AmAbort, || co.am_abort())?;
    }
    match before {
        Some(before) => {
            let target = before.to_string();
            intent::run(
                &co,
                Op::Checkout {
                    target: target.clone(),
                },
                || co.reset_branch(&target),
            )?;
            // The base goes back too: to the one of the last sync or save, when known.
            if let Some(state) = CheckoutState::read(&co.dir) {
                co.update_ref(git::BASE_REF, &state.base, "xtask: sync aborted")?;
            }
            co.delete_ref(git::BEFORE_SYNC_REF)?;
            co.settle_index()?;
            Ok(format!("aborted; back at {}", git::short(before)))
        }
        None => {
            // An operation with no starting point to go back to (a first sync): HEAD stays,
            // the work tree is made to match it.
            if let Some(h) = head_text.filter(|_| !was_applying) {
                intent::run(&co, Op::Checkout { target: h.clone() }, || {
                    co.reset_branch(&h)
                })?;
            }
            intent::done(&co)?;
            co.settle_index()?;
            Ok("aborted".into())
        }
    }
}
