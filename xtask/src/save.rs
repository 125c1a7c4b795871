//! `cargo xtask save`: write a checkout's commits since its base back into
//! `patches/<project>/` as deterministic patch files, and update the series.

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::git::{self, Checkout};
use crate::manifest::{PatchName, Source};
use crate::ops::export::{describe_changes, export_range, write_series};
use crate::ops::intent::{self, Op};
use crate::ops::update_state::UpdateState;
use crate::pypi;
use crate::stack::{self, CheckoutState, Layout, Project};

/// Write the checkout's commits since the base back into `patches/<project>/`.
///
/// Edit a stack by committing, amending or rebasing (`git rebase -i refs/xtask/base`) in
/// `checkouts/<project>`, then save. Every commit needs an `Upstream-Status:` trailer. The
/// export is deterministic: saving unchanged commits rewrites nothing, and `version` in
/// `stack.yaml` goes up only when the series' content changed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stacks to save (default: every stack that has a checkout).
    pub projects: Vec<String>,
}

impl Args {
    pub fn run(&self, sh: &Shell, layout: &Layout) -> Result<()> {
        let mut projects = layout.select(&self.projects)?;
        if self.projects.is_empty() {
            projects.retain(|p| layout.checkout(p).exists());
        }
        for name in &projects {
            let (_lock, project) = Project::lock_and_load(layout, name, "cargo xtask save")?;
            let message = save_one(sh, layout, &project)?;
            crate::outln!("{name}: {message}");
        }
        Ok(())
    }
}

pub fn save_one(sh: &Shell, layout: &Layout, project: &Project) -> Result<String> {
    let dir = layout.checkout(&project.name);
    let shown = layout.show(&dir);
    if !dir.exists() {
        bail!(
            "no checkout `{shown}`; run `cargo xtask sync {}` first",
            project.name
        );
    }
    let co = Checkout::new(sh, &dir);
    // An update or a sync under way leaves commits and files that are not a stack yet.
    if let Some(st) = UpdateState::read(&dir)? {
        bail!("cannot save now: {}", st.describe(&project.name));
    }
    // A fetch or a backup that was cut short left nothing half-done.
    let again = intent::read(&dir).and_then(|i| match i.op {
        Op::AmContinue => Some(format!(
            "`cargo xtask sync --continue {}` again",
            project.name
        )),
        Op::AmSkip => Some(format!("`cargo xtask sync --skip {}` again", project.name)),
        op if op.redone() => Some(format!("`cargo xtask sync {}`", project.name)),
        _ => None,
    });
    if let Some(again) = again {
        bail!(
            "cannot save now: a sync of `{}` was interrupted in `{shown}`; run {again} to finish it, then save",
            project.name
        );
    }
    if co.am_in_progress() {
        bail!(
            "`{shown}` is stopped at a patch; finish with `cargo xtask sync --continue {0}` or `--abort {0}` first",
            project.name
        );
    }
    let repo = co.open()?;
    let dirty = co.uncommitted_changes()?;
    if !dirty.is_empty() {
        bail!(
            "`{shown}` has uncommitted changes ({}); commit them (`git commit`, `git commit --amend`) or stash them, then save",
            dirty.join(", ")
        );
    }
    let base = git::ref_target(&repo, git::BASE_REF).with_context(|| {
        format!(
            "`{shown}` has no `{}`; run `cargo xtask sync {}`",
            git::BASE_REF,
            project.name
        )
    })?;
    let pinned = match &project.stack.source {
        Source::Git { commit, .. } => Some(git2::Oid::from_str(commit)?),
        Source::Pypi { sha256, .. } => git::ref_target(&repo, &pypi::import_ref(sha256)),
    };
    if pinned != Some(base) {
        bail!(
            "`{shown}` is based on {} but {} pins another base; run `cargo xtask sync {}` first",
            git::short(base),
            layout.show(&project.manifest_path),
            project.name
        );
    }
    let head = git::head_commit(&repo).context("the checkout has no HEAD")?;
    if head != base && !repo.graph_descendant_of(head, base)? {
        bail!(
            "HEAD {} of `{shown}` does not descend from the base {}",
            git::short(head),
            git::short(base)
        );
    }
    let commits = git::commits_between(&repo, base, head)?;
    for (id, subject) in &commits {
        if repo.find_commit(*id)?.parent_count() > 1 {
            bail!(
                "{} `{subject}` is a merge; a stack is a straight line of commits (rebase it first)",
                git::short(id)
            );
        }
    }

    let exported = export_range(&co, layout, base, head, project)?;

    let old: Vec<(PatchName, Option<Vec<u8>>)> = project
        .stack
        .series
        .iter()
        .map(|n| (n.clone(), fs_err::read(project.patch_path(n)).ok()))
        .collect();
    let unchanged = old.len() == exported.len()
        && old
            .iter()
            .zip(&exported)
            .all(|((n, b), e)| *n == e.name && b.as_deref() == Some(&e.bytes[..]));
    let summary = if unchanged {
        "nothing to save: patches/ already matches the checkout".to_string()
    } else {
        let version = project.stack.version + 1;
        write_series(project, &exported, version)?;
        format!(
            "{}; version {} -> {version}",
            describe_changes(&old, &exported),
            project.stack.version
        )
    };
    // The checkout now equals the stack on disk: record it so `sync` has nothing to do.
    let project = Project::load(layout, &project.name)?;
    let digest = stack::digest(&project)?;
    CheckoutState::new(base.to_string(), head.to_string(), digest).write(&dir)?;
    co.delete_ref(git::BEFORE_SYNC_REF)?;
    Ok(summary)
}
