//! `cargo xtask sync --update`: move a stack onto the newest upstream, one patch at a time,
//! dropping what upstream absorbed, stopping where a person must decide, and recording it.
//!
//! The update is a resumable transaction kept in `.git/xtask-update.json`: the stack folder is
//! copied to `.git/xtask-update-backup/` first (the patches are replayed from that copy and
//! `--abort` restores it byte for byte), each replayed patch is recorded before the next one
//! starts, and the stack files are written only at the end, from the copy and HEAD, so a
//! rerun after any interruption reaches the same result.

use std::path::Path;

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::absorb::Outcome;
use crate::changelog;
use crate::git::{self, AmOutcome, Checkout};
use crate::manifest::{self, PatchName, Source};
use crate::ops::Stopped;
use crate::ops::checkout::untracked_in_the_way;
use crate::ops::export;
use crate::ops::intent::{self, Op, checkpoint};
use crate::ops::update_state::{
    DryRun, STATE_VERSION, UpdateState, backup_dir, dry_run_path, state_path,
};
use crate::pypi;
use crate::stack::{self, CheckoutState, Layout, Project};

mod replay;
use replay::{Step, dry, replay_one};

/// `sync --update` for one stack.
pub fn update_one(
    sh: &Shell,
    layout: &Layout,
    project: &Project,
    to: Option<&str>,
    dry_run: bool,
) -> Result<String> {
    let dir = layout.checkout(&project.name);
    let co = Checkout::new(sh, &dir);
    if let Some(st) = UpdateState::read(&dir)? {
        let recovery = intent::recover(&co, &layout.show(&dir), &project.name)?;
        if dry_run {
            bail!(
                "an update of `{}` is under way; finish it before a dry run",
                project.name
            );
        }
        if st.stopped {
            bail!("{}", st.describe(&project.name));
        }
        eprintln!("{}: resuming the interrupted update", project.name);
        return run_to_end(layout, project, &co, st, recovery.redo());
    }
    // Start from a checkout that equals its stack.
    crate::ops::sync_one(sh, layout, project, false)
        .context("the checkout must match its stack before an update")?;
    let repo = co.open()?;
    let old_tip = git::head_commit(&repo).context("no HEAD")?.to_string();
    let old_base = git::ref_target(&repo, git::BASE_REF)
        .context("no base ref")?
        .to_string();
    let (new_base, new_source) = find_new_base(sh, layout, &co, &repo, project, to)?;
    if new_base == old_base {
        let _ = fs_err::remove_file(dry_run_path(&dir));
        return Ok(format!(
            "already on the newest `{}` ({})",
            project.stack.track,
            git::short(&old_base)
        ));
    }
    let is_git = matches!(project.stack.source, Source::Git { .. });
    let (commits_between, upstream_ids) = if is_git {
        let (new, old) = (
            git2::Oid::from_str(&new_base)?,
            git2::Oid::from_str(&old_base)?,
        );
        let n = repo.graph_ahead_behind(new, old).map(|(a, _)| a).ok();
        (
            n,
            co.upstream_patch_ids(&old_base, &new_base, &series_paths(project))?,
        )
    } else {
        (None, Vec::new())
    };
    let patches: Vec<String> = project.stack.series.iter().map(|p| p.to_string()).collect();
    let st = UpdateState {
        version: STATE_VERSION,
        old_base,
        new_base: new_base.clone(),
        new_pin: new_source.pin(),
        old_tip,
        old_state: CheckoutState::read(&dir),
        commits_between,
        patches,
        done: Vec::new(),
        head: new_base.clone(),
        stopped: false,
        upstream_ids,
    };
    if dry_run {
        return dry(layout, project, &co, st);
    }
    let in_the_way = untracked_in_the_way(&repo, &dir, git2::Oid::from_str(&new_base)?)?;
    if !in_the_way.is_empty() {
        bail!(
            "`{}` has untracked files that {} tracks, and moving there would write over them: {}; move them away and rerun",
            layout.show(&dir),
            git::short(&new_base),
            in_the_way.join(", ")
        );
    }
    // The transaction starts: copy the stack folder, record, then move the checkout.
    copy_dir(&project.dir, &backup_dir(&dir))?;
    co.enable_rerere()?;
    st.write(&dir)?;
    checkpoint("after-start");
    co.update_ref(git::BEFORE_SYNC_REF, &st.old_tip, "xtask: update started")?;
    reset(&co, &new_base)?;
    run_to_end(layout, project, &co, st, false)
}

/// `--continue`, `--skip` or `--abort` of a stopped update.
pub fn resume(sh: &Shell, layout: &Layout, project: &Project, how: Resume) -> Result<String> {
    let dir = layout.checkout(&project.name);
    let co = Checkout::new(sh, &dir);
    let mut st = UpdateState::read(&dir)?.context("no update under way")?;
    intent::recover(&co, &layout.show(&dir), &project.name)?;
    match how {
        Resume::Abort => return abort(layout, project, &co, &st),
        Resume::Continue | Resume::Skip if !st.stopped => {
            bail!("the update of `{}` is not stopped at a patch", project.name)
        }
        // An interrupted `--continue` or `--skip` may have got as far as ending `git am`.
        Resume::Continue if !co.am_in_progress() && head_of(&co)? != st.head => {
            let head = head_of(&co)?;
            record(&co, &mut st, Outcome::ResolvedByHand, head)?;
        }
        Resume::Skip if !co.am_in_progress() => {
            let head = head_of(&co)?;
            record(&co, &mut st, Outcome::SkippedByHand, head)?;
        }
        Resume::Continue => {
            let before = st.head.clone();
            if let AmOutcome::Stopped { .. } =
                intent::run(&co, Op::AmContinue, || co.am_continue())?
            {
                bail!(
                    "git am could not go on: are all conflicts resolved and `git add`ed? (`git -C {} status`; if the resolution leaves nothing of the patch, use `--skip`)",
                    layout.show(&dir)
                );
            }
            let head = head_of(&co)?;
            let outcome = if head == before {
                Outcome::SkippedByHand
            } else {
                Outcome::ResolvedByHand
            };
            record(&co, &mut st, outcome, head)?;
        }
        Resume::Skip => {
            intent::run(&co, Op::AmSkip, || co.am_skip())?;
            let head = head_of(&co)?;
            record(&co, &mut st, Outcome::SkippedByHand, head)?;
        }
    }
    run_to_end(layout, project, &co, st, false)
}

#[derive(Debug, Clone, Copy)]
pub enum Resume {
    Continue,
    Skip,
    Abort,
}

/// `git checkout --force -B patched <commit>`, recorded so a crash in it is recovered.
fn reset(co: &Checkout, commit: &str) -> Result<()> {
    intent::run(
        co,
        Op::Checkout {
            target: commit.to_string(),
        },
        || co.reset_branch(commit),
    )
}

fn head_of(co: &Checkout) -> Result<String> {
    Ok(git::head_commit(&co.open()?)
        .context("no HEAD")?
        .to_string())
}

fn record(co: &Checkout, st: &mut UpdateState, outcome: Outcome, head: String) -> Result<()> {
    let name = st.patches[st.done.len()].clone();
    st.done.push((name, outcome));
    st.head = head;
    st.stopped = false;
    st.write(&co.dir)
}

fn series_paths(project: &Project) -> Vec<String> {
    let mut paths = Vec::new();
    for p in &project.stack.series {
        if let Ok(bytes) = fs_err::read(project.patch_path(p))
            && let Ok(info) = crate::patch::parse(&String::from_utf8_lossy(&bytes))
        {
            paths.extend(info.paths);
        }
    }
    paths.sort();
    paths.dedup();
    paths
}

fn find_new_base(
    sh: &Shell,
    layout: &Layout,
    co: &Checkout,
    repo: &git2::Repository,
    project: &Project,
    to: Option<&str>,
) -> Result<(String, Source)> {
    match &project.stack.source {
        Source::Git { url, .. } => {
            let id = match to {
                Some(rev) if manifest::is_full_hex(rev, 40) && co.has_commit(repo, rev) => {
                    rev.to_string()
                }
                Some(rev) => {
                    intent::run(co, Op::Fetch, || co.fetch_commit(rev))?;
                    let repo = co.open()?;

                    repo.revparse_single("FETCH_HEAD")?
                        .peel_to_commit()?
                        .id()
                        .to_string()
                }
                None => {
                    eprintln!("{}: fetching `{}`", project.name, project.stack.track);
                    intent::run(co, Op::Fetch, || co.fetch_branch(&project.stack.track))?;
                    let r = format!("refs/remotes/origin/{}", project.stack.track);
                    git::ref_target(&co.open()?, &r)
                        .with_context(|| format!("no `{r}` after fetching"))?
                        .to_string()
                }
            };
            let source = Source::Git {
                url: url.clone(),
                commit: id.clone(),
            };
            Ok((id, source))
        }
        Source::Pypi {
            name,
            version: cur,
            sha256,
        } => {
            // One look at the index serves both the version choice and the download.
            let index = pypi::Index::fetch(sh, name)?;
            let version = match to {
                Some(v) => v.to_string(),
                None => pypi::newest_matching(&index.versions(), &project.stack.track)?
                    .with_context(|| {
                        format!("no {name} release matches `{}`", project.stack.track)
                    })?,
            };
            if *cur == version {
                let id = git::ref_target(repo, &pypi::import_ref(sha256))
                    .context("sdist not imported")?;
                return Ok((id.to_string(), project.stack.source.clone()));
            }
            eprintln!("{}: downloading the {name} {version} sdist", project.name);
            let sdist = index.sdist(&version)?;
            let id = pypi::download_and_import(
                co,
                &layout.xtask_target(),
                name,
                &version,
                &sdist,
                &sdist.sha256,
            )?;
            let source = Source::Pypi {
                name: name.clone(),
                version,
                sha256: sdist.sha256,
            };
            Ok((id, source))
        }
    }
}

/// Replays the remaining patches, then writes the stack. Stops (exit 3) at a conflict.
/// `redo`: a crash left the work tree half-done (see `intent::recover`).
fn run_to_end(
    layout: &Layout,
    project: &Project,
    co: &Checkout,
    mut st: UpdateState,
    redo: bool,
) -> Result<String> {
    let dir = co.dir.clone();
    // A step that was under way when the process died is redone from the recorded HEAD.
    if co.am_in_progress() {
        intent::run(co, Op::AmAbort, || co.am_abort())?;
    }
    if redo || head_of(co)? != st.head {
        reset(co, &st.head)?;
    }
    let backup = backup_dir(&dir);
    while st.done.len() < st.patches.len() {
        let name = st.patches[st.done.len()].clone();
        checkpoint("before-patch");
        match replay_one(layout, project, co, &st, &backup.join(&name))? {
            Step::Done(outcome) => {
                eprintln!("{}: {name}: {}", project.name, outcome.describe());
                let head = head_of(co)?;
                checkpoint("before-record");
                record(co, &mut st, outcome, head)?;
            }
            Step::Stopped(report) => {
                st.stopped = true;
                st.write(&dir)?;
                return Err(Stopped { report }.into());
            }
        }
    }
    finish(co, layout, project, &st)
}

/// Writes the new stack from the backup copy and HEAD; safe to repeat after an interruption.
fn finish(co: &Checkout, layout: &Layout, project: &Project, st: &UpdateState) -> Result<String> {
    let dir = co.dir.clone();
    let backup = backup_dir(&dir);
    let old_text = crate::fsx::read_to_string(&backup.join("stack.yaml"))?;
    let old = Project {
        name: project.name.clone(),
        dir: backup.clone(),
        manifest_path: backup.join("stack.yaml"),
        stack: manifest::parse("stack.yaml (before the update)", &old_text)?,
        text: old_text,
    };
    let head = git2::Oid::from_str(&head_of(co)?)?;
    let exported =
        export::export_range(co, layout, git2::Oid::from_str(&st.new_base)?, head, &old)?;
    let version = (old.stack.version, old.stack.version + 1);
    let names: Vec<PatchName> = exported.iter().map(|e| e.name.clone()).collect();
    // The record is read from disk: a pin of the other kind (edited by hand) is refused here
    // rather than written into a stack that `parse` would then refuse.
    let new_source = old.stack.source.with_pin(&st.new_pin).map_err(|why| {
        anyhow::anyhow!(
            "`{}`: `new_pin`: {why}; give up with `cargo xtask sync --abort {}`",
            layout.show(&state_path(&dir)),
            project.name
        )
    })?;
    let text = manifest::with_series(
        &manifest::with_base(&old.text, &new_source)?,
        version.1,
        &names,
    )?;
    // git refuses an empty range with its whole usage text: no series, no range-diff.
    let range_diff = if st.old_base == st.old_tip || st.new_base == head.to_string() {
        Vec::new()
    } else {
        co.range_diff_summary(
            (&st.old_base, &st.old_tip),
            (&st.new_base, &head.to_string()),
        )
        .unwrap_or_default()
    };
    let shown_base = |b: &str, source: &Source| match source {
        Source::Pypi { version, .. } => format!("{version} ({})", git::short(b)),
        Source::Git { .. } => git::short(b),
    };
    let entry = changelog::render(&changelog::Entry {
        date: changelog::today(),
        old_base: &shown_base(&st.old_base, &old.stack.source),
        new_base: &shown_base(&st.new_base, &new_source),
        commits_between: st.commits_between,
        version,
        outcomes: &st.done,
        range_diff: &range_diff,
    });
    let old_log = fs_err::read_to_string(backup.join("CHANGELOG.md"))
        .unwrap_or_else(|_| changelog::HEADER.to_string());
    checkpoint("before-write");
    export::write_files(&project.dir, &old.stack.series, &exported, &text)?;
    checkpoint("after-write");
    crate::fsx::write_atomic(
        &project.dir.join("CHANGELOG.md"),
        (old_log + &entry).as_bytes(),
    )?;
    let project = Project::load(layout, &project.name)?;
    co.update_ref(git::BASE_REF, &st.new_base, "xtask: update")?;
    CheckoutState::new(
        st.new_base.clone(),
        head.to_string(),
        stack::digest(&project)?,
    )
    .write(&dir)?;
    co.delete_ref(git::BEFORE_SYNC_REF)?;
    let _ = fs_err::remove_file(dry_run_path(&dir));
    fs_err::remove_file(state_path(&dir))?;
    let _ = fs_err::remove_dir_all(&backup);
    co.settle_index()?;
    let dropped = st.done.iter().filter(|(_, o)| !o.kept()).count();
    Ok(format!(
        "updated onto {}: {} patch(es) kept, {dropped} dropped; version {} -> {}; see patches/{}/CHANGELOG.md",
        git::short(&st.new_base),
        names.len(),
        version.0,
        version.1,
        project.name
    ))
}

fn abort(layout: &Layout, project: &Project, co: &Checkout, st: &UpdateState) -> Result<String> {
    let dir = co.dir.clone();
    if co.am_in_progress() {
        intent::run(co, Op::AmAbort, || co.am_abort())?;
    }
    reset(co, &st.old_tip)?;
    co.update_ref(git::BASE_REF, &st.old_base, "xtask: update aborted")?;
    let backup = backup_dir(&dir);
    if backup.is_dir() {
        restore_dir(&backup, &project.dir)?;
    }
    match &st.old_state {
        Some(s) => s.write(&dir)?,
        None => CheckoutState::remove(&dir),
    }
    co.delete_ref(git::BEFORE_SYNC_REF)?;
    fs_err::remove_file(state_path(&dir))?;
    let _ = fs_err::remove_dir_all(&backup);
    co.settle_index()?;
    Ok(format!(
        "update aborted; checkout and {} are as before",
        layout.show(&project.dir)
    ))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let _ = fs_err::remove_dir_all(to);
    std::fs::create_dir_all(to).with_context(|| format!("creating `{}`", to.display()))?;
    for entry in fs_err::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("copying `{}`", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Makes `to` hold exactly the files of `from`, byte for byte.
fn restore_dir(from: &Path, to: &Path) -> Result<()> {
    let wanted: Vec<_> = fs_err::read_dir(from)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    for entry in fs_err::read_dir(to)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && !wanted.contains(&entry.file_name()) {
            fs_err::remove_file(entry.path())?;
        }
    }
    for name in wanted {
        crate::fsx::write_if_changed(&to.join(&name), &fs_err::read(from.join(&name))?)?;
    }
    Ok(())
}
