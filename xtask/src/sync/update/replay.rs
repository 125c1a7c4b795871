//! The replay of one patch onto a new base, deciding what upstream did with it, and dry runs.

use std::path::Path;

use anyhow::Result;

use super::{DryRun, UpdateState, dry_run_path, head_of};
use crate::absorb::{self, Evidence, Outcome};
use crate::changelog;
use crate::git::{self, AmOutcome, Checkout, UpstreamChange};
use crate::ops::intent::{self, Op};
use crate::stack::{Layout, Project};

/// What replaying one patch came to.
pub(super) enum Step {
    Done(Outcome),
    /// A conflict a person must resolve; the report says how.
    Stopped(String),
}

/// Replays patch `st.done.len()` on HEAD, deciding whether upstream absorbed it.
pub(super) fn replay_one(
    layout: &Layout,
    project: &Project,
    co: &Checkout,
    st: &UpdateState,
    patch: &Path,
) -> Result<Step> {
    let touched = |paths: &[String]| -> Vec<UpstreamChange> {
        if st.commits_between.is_some() {
            co.commits_touching(&st.old_base, &st.new_base, paths)
                .unwrap_or_default()
        } else {
            Vec::new()
        }
    };
    let text = String::from_utf8_lossy(&fs_err::read(patch)?).into_owned();
    let paths = crate::patch::parse(&text)
        .map(|i| i.paths)
        .unwrap_or_default();
    if let Some(pid) = co.patch_id_of_file(patch)?
        && let Some((_, commit)) = st.upstream_ids.iter().find(|(p, _)| *p == pid)
    {
        return Ok(Step::Done(Outcome::Absorbed {
            evidence: Evidence::PatchId {
                commit: commit.clone(),
            },
        }));
    }
    if co.applies_in_reverse(patch)? {
        return Ok(Step::Done(Outcome::Absorbed {
            evidence: Evidence::AppliesInReverse {
                touched_by: touched(&paths),
            },
        }));
    }
    let before = head_of(co)?;
    match intent::run(co, Op::Am, || co.am(&[patch.to_path_buf()]))? {
        AmOutcome::Applied => {
            let after = head_of(co)?;
            if after == before {
                return Ok(Step::Done(Outcome::Absorbed {
                    evidence: Evidence::EmptyMerge {
                        touched_by: touched(&paths),
                    },
                }));
            }
            let old = absorb::changed_lines(&text);
            let new = absorb::changed_lines(&co.commit_diff(&after)?);
            Ok(Step::Done(absorb::compare(&old, &new)))
        }
        AmOutcome::Stopped { .. } => {
            let files = co.conflicted_files()?;
            if files.is_empty() && co.staged_changes()? {
                // Only rerere stages a merge result while `git am` is stopped.
                // The tool's own continue: after a crash it is redone like the `am` itself.
                if let AmOutcome::Applied = intent::run(co, Op::Am, || co.am_continue())? {
                    return Ok(Step::Done(Outcome::ResolvedByRerere));
                }
            }
            let upstream = touched(if files.is_empty() { &paths } else { &files });
            Ok(Step::Stopped(conflict_report(
                layout, project, co, st, &files, &upstream,
            )))
        }
    }
}

pub(super) fn conflict_report(
    layout: &Layout,
    project: &Project,
    co: &Checkout,
    st: &UpdateState,
    files: &[String],
    upstream: &[UpstreamChange],
) -> String {
    let n = st.done.len();
    let name = &project.name;
    let shown = layout.show(&co.dir);
    let mut r = format!(
        "patch `{}` ({} of {}) conflicts with upstream on {}\n",
        st.patches[n],
        n + 1,
        st.patches.len(),
        git::short(&st.new_base)
    );
    for f in files {
        r.push_str(&format!("  conflict in: {f}\n"));
    }
    for (at, _) in co.failed_hunks().unwrap_or_default() {
        r.push_str(&format!("  hunk at {at} does not apply as is\n"));
    }
    if !upstream.is_empty() {
        r.push_str("  upstream commits since the old base that touch these files:\n");
        for c in upstream.iter().take(10) {
            r.push_str(&format!("    {} {}\n", git::short(&c.id), c.subject));
        }
    }
    r.push_str(&format!(
        "to go on, in `{shown}`:\n  resolve: fix the files, `git add` them, then `cargo xtask sync --continue {name}`\n  drop the patch: `cargo xtask sync --skip {name}` (recorded as dropped by hand)\n  give up: `cargo xtask sync --abort {name}` restores the checkout and patches/{name}/ as they were"
    ));
    r
}

/// A dry run: the same replay in a scratch clone that shares the checkout's objects.
pub(super) fn dry(
    layout: &Layout,
    project: &Project,
    co: &Checkout,
    mut st: UpdateState,
) -> Result<String> {
    let scratch = layout
        .xtask_target()
        .join(format!("dry-run-{}", project.name));
    let clone = co.shared_clone(&scratch)?;
    let result = (|| -> Result<()> {
        clone.enable_rerere()?;
        clone.reset_branch(&st.new_base)?;
        while st.done.len() < st.patches.len() {
            let name = st.patches[st.done.len()].clone();
            let step = replay_one(layout, project, &clone, &st, &project.dir.join(&name))?;
            let outcome = match step {
                Step::Done(o) => o,
                Step::Stopped(_) => {
                    let files = clone.conflicted_files()?;
                    let upstream = if st.commits_between.is_some() {
                        clone.commits_touching(&st.old_base, &st.new_base, &files)?
                    } else {
                        Vec::new()
                    };
                    clone.am_abort()?;
                    Outcome::Conflict { files, upstream }
                }
            };
            st.done.push((name, outcome));
        }
        Ok(())
    })();
    let _ = fs_err::remove_dir_all(&scratch);
    result?;
    let report = DryRun {
        date: changelog::today(),
        new_base: st.new_base.clone(),
        commits_between: st.commits_between,
        patches: st.done.clone(),
    };
    crate::fsx::write_atomic(
        &dry_run_path(&co.dir),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let mut out = format!(
        "dry run onto {}{}: nothing was changed",
        git::short(&st.new_base),
        st.commits_between
            .map_or(String::new(), |n| format!(" ({n} upstream commits)"))
    );
    for (name, o) in &st.done {
        out.push_str(&format!("\n  {name}: {}", o.describe()));
    }
    Ok(out)
}
