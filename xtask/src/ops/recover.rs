//! When a sync does not go through: what unsaved work is in the way, the backup `--force`
//! keeps, the report of a patch that stopped, and `--continue`, `--skip`, `--abort`.

use std::time::SystemTime;

use anyhow::{Result, bail};
use xshell::Shell;

use super::checkout::{Observed, Stopped};
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

/// Keeps HEAD, and uncommitted changes if any, under `refs/xtask/backup/`.
pub fn backup(co: &Checkout, o: &Observed) -> Result<Vec<String>> {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    let repo = co.open()?;
    let mut n = 0;
    let mut stamp = secs.to_string();
    while repo
        .find_reference(&format!("refs/xtask/backup/{stamp}"))
        .is_ok()
        || repo
            .find_reference(&format!("refs/xtask/backup/{stamp}-uncommitted"))
            .is_ok()
    {
        n += 1;
        stamp = format!("{secs}.{n}");
    }
    let mut refs = Vec::new();
    if let Some(head) = o.before_sync.as_ref().or(o.head.as_ref()) {
        let name = format!("refs/xtask/backup/{stamp}");
        co.update_ref(&name, head, "xtask: backup before sync --force")?;
        refs.push(name);
    }
    if !o.uncommitted.is_empty()
        && let Some(stash) = co.stash_create()?
    {
        let name = format!("refs/xtask/backup/{stamp}-uncommitted");
        co.update_ref(
            &name,
            &stash,
            "xtask: uncommitted changes before sync --force",
        )?;
        refs.push(format!("{name} (restore with `git stash apply {name}`)"));
    }
    Ok(refs)
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
    if !co.am_in_progress() {
        let what = if skip { "skip" } else { "continue" };
        bail!(
            "nothing to {what}: `{}` is not stopped at a patch",
            layout.show(&co.dir)
        );
    }
    let outcome = if skip {
        co.am_skip()?
    } else {
        co.am_continue()?
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
            Ok(format!(
                "all patches applied; the checkout now differs from patches/{0}/, so run `cargo xtask save {0}` to keep it",
                project.name
            ))
        }
    }
}

pub fn abort(sh: &Shell, layout: &Layout, project: &Project) -> Result<String> {
    let co = Checkout::new(sh, &layout.checkout(&project.name));
    let repo = co.open()?;
    let was_applying = co.am_in_progress();
    if was_applying {
        co.am_abort()?;
    }
    match git::ref_target(&repo, git::BEFORE_SYNC_REF) {
        Some(before) => {
            co.reset_branch(&before.to_string())?;
            // The base goes back too: to the one of the last sync or save, when known.
            if let Some(state) = CheckoutState::read(&co.dir) {
                co.update_ref(git::BASE_REF, &state.base, "xtask: sync aborted")?;
            }
            co.delete_ref(git::BEFORE_SYNC_REF)?;
            Ok(format!("aborted; back at {}", git::short(before)))
        }
        None if was_applying => Ok("aborted".into()),
        None => bail!(
            "nothing to abort: `{}` is not stopped at a patch",
            layout.show(&co.dir)
        ),
    }
}
