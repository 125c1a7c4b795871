//! `cargo xtask sync`: make each checkout equal to its stack's base plus series, without ever
//! losing work that is only in the checkout.

use anyhow::{Result, bail};
use xshell::Shell;

use crate::fsx::print_stdout;
use crate::ops::recover::{abort, resume};
use crate::ops::update_state::UpdateState;
use crate::ops::{Stopped, sync_one};
use crate::stack::{Layout, Project};

mod update;

/// Clone or fetch each upstream, check out its pinned base and apply its patch series.
///
/// Each checkout lands in `checkouts/<project>` on branch `patched`, one commit per patch, with
/// `refs/xtask/base` marking the base. A checkout that already equals base plus series is left
/// alone. Work that exists only in the checkout (uncommitted changes, commits not yet saved
/// with `cargo xtask save`) stops the sync unless `--force` is given, which keeps a backup ref.
///
/// Interrupted (Ctrl-C, a kill, a crash)? Run the same command again: the tool records each
/// git operation it starts and finishes it; `cargo xtask status` names the command when one
/// is needed. Exit codes: 0 done, 1 error, 3 stopped at a patch that does not apply.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stacks to sync (default: every stack under `patches/`).
    pub projects: Vec<String>,
    /// Replace unsaved work in the checkout, after keeping it under `refs/xtask/backup/`.
    #[arg(long)]
    pub force: bool,
    /// Go on after resolving a conflict (`git add` the files first).
    #[arg(long = "continue", conflicts_with_all = ["skip", "abort", "force"])]
    pub continue_: bool,
    /// Leave out the patch that stopped the sync and go on; it disappears at the next `save`.
    #[arg(long, conflicts_with_all = ["abort", "force"])]
    pub skip: bool,
    /// Give up a stopped sync or update and put the checkout (and, for an update, the stack
    /// files) back as they were.
    #[arg(long, conflicts_with = "force")]
    pub abort: bool,
    /// Move each stack onto the newest upstream `track` (or `--to`): replay the series patch by
    /// patch, drop what upstream absorbed, stop at conflicts, then save the stack with a new
    /// base and version and a CHANGELOG.md entry.
    #[arg(long, conflicts_with_all = ["force", "continue_", "skip", "abort"])]
    pub update: bool,
    /// With `--update`: the upstream revision (commit, branch or tag; for PyPI a version) to
    /// move to instead of the newest `track`.
    #[arg(long, requires = "update", value_name = "REV")]
    pub to: Option<String>,
    /// With `--update`: say per patch what would happen (applies, absorbed, conflicts) without
    /// changing the checkout or the stack files. `status` shows the last result.
    #[arg(long, requires = "update")]
    pub dry_run: bool,
}

impl Args {
    pub fn run(&self, sh: &Shell, layout: &Layout) -> Result<()> {
        // git also ends its options before the value (see `git`); refusing here gives the
        // clear message instead of "couldn't find remote ref".
        if let Some(to) = self.to.as_deref().filter(|t| t.starts_with('-')) {
            bail!("`--to {to}`: a revision or version never begins with `-`");
        }
        let resuming = self.continue_ || self.skip || self.abort;
        if resuming && self.projects.len() != 1 {
            bail!(
                "`--continue`, `--skip` and `--abort` act on one stack: name it, as in `cargo xtask sync --continue cpython`"
            );
        }
        let projects = layout.select(&self.projects)?;
        // One stack's trouble does not keep the others from syncing; the run fails at the end.
        let mut failed = Vec::new();
        let mut stopped = None;
        for name in &projects {
            let result = (|| {
                let (_lock, project) = Project::lock_and_load(layout, name, "cargo xtask sync")?;
                let update_state = UpdateState::read(&layout.checkout(name))?;
                let updating = update_state.is_some();
                if self.update {
                    update::update_one(sh, layout, &project, self.to.as_deref(), self.dry_run)
                } else if updating && resuming {
                    let how = if self.continue_ {
                        update::Resume::Continue
                    } else if self.skip {
                        update::Resume::Skip
                    } else {
                        update::Resume::Abort
                    };
                    update::resume(sh, layout, &project, how)
                } else if let Some(st) = &update_state {
                    // Say where the update stands, so a stopped one names `--continue`.
                    bail!("{}", st.describe(name))
                } else if self.continue_ || self.skip {
                    resume(sh, layout, &project, self.skip)
                } else if self.abort {
                    abort(sh, layout, &project)
                } else {
                    sync_one(sh, layout, &project, self.force)
                }
            })();
            match result {
                Ok(message) => print_stdout(&format!("{name}: {message}\n"))?,
                Err(e) => match e.downcast::<Stopped>() {
                    Ok(s) => {
                        eprintln!("{name}: stopped: {s}");
                        stopped = Some(Stopped {
                            report: format!("stack `{name}` is stopped at a patch (see above)"),
                        });
                    }
                    Err(e) => {
                        eprintln!("{name}: error: {e:#}");
                        failed.push(name.clone());
                    }
                },
            }
        }
        if !failed.is_empty() {
            bail!(
                "{} of {} stack(s) failed: {}",
                failed.len(),
                projects.len(),
                failed.join(", ")
            );
        }
        if let Some(s) = stopped {
            return Err(s.into());
        }
        Ok(())
    }
}
