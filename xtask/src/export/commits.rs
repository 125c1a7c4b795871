//! Verifying a branch commit by commit (`conventions.verify_each_commit`): each commit checked
//! out on its own in the branch's worktree, so a commit that only passes with the next one's
//! fix is named.

use std::path::Path;

use anyhow::Result;

use super::describe::{Check, CommitChecks};
use crate::git::{self, Checkout};

/// Runs `verify` on every commit of `base..tip`, oldest first, in the worktree at `path`,
/// stopping at the first that fails; returns each commit's checks and, for a failure, what
/// failed where. The worktree is left at `tip`.
pub fn verify_each(
    co: &Checkout,
    path: &Path,
    base: &str,
    tip: &str,
    mut verify: impl FnMut(&Checkout) -> Result<Vec<Check>>,
) -> Result<(Vec<CommitChecks>, Option<String>)> {
    let repo = co.open()?;
    let commits =
        git::commits_between(&repo, git2::Oid::from_str(base)?, git2::Oid::from_str(tip)?)?;
    let mut out = Vec::new();
    let mut problem = None;
    for (id, subject) in commits {
        let wt = co.worktree_at(path, &id.to_string())?;
        let checks = verify(&wt)?;
        let failed = checks.iter().find(|c| !c.passed).map(|c| c.command.clone());
        out.push(CommitChecks {
            id: git::short(id),
            subject: subject.clone(),
            checks,
        });
        if let Some(command) = failed {
            problem = Some(format!(
                "`{command}` failed at commit {} ({subject}), checked out on its own",
                git::short(id)
            ));
            break;
        }
    }
    co.worktree_at(path, tip)?;
    Ok((out, problem))
}
