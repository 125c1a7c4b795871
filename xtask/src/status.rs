//! `cargo xtask status`: where each stack and its checkout stand, for people or (`--json`)
//! for programs.

use std::fmt::Write;

use anyhow::Result;
use serde::Serialize;
use xshell::Shell;

use crate::fsx::print_stdout;
use crate::git::{self, Checkout};
use crate::manifest::Source;
use crate::ops::update_state::{DryRun, UpdateState};
use crate::ops::{Plan, observe, plan};
use crate::pypi;
use crate::stack::{Layout, Project};

/// Show each stack's base, how far `track` has moved, its patches and its checkout's state.
///
/// "behind" counts upstream commits on `track` after the base, as of the last fetch. The
/// checkout is one of: missing, clean, stale (the stack changed since the last sync),
/// unsaved-commits, uncommitted-changes, mid-conflict.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stacks to show (default: all).
    pub projects: Vec<String>,
    /// Print one JSON document (schema in docs/stack-format.md) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One stack's line of the report; the JSON form is documented and stable.
#[derive(Debug, Serialize)]
pub struct StackStatus {
    pub project: String,
    pub upstream: String,
    pub track: String,
    pub base: String,
    pub version: u64,
    pub patches: usize,
    /// Upstream commits on `track` after the base, when `track` has been fetched.
    pub behind: Option<usize>,
    pub checkout: &'static str,
    /// The first sentence line of `patches/<project>/README.md`: where the stack stands.
    pub summary: Option<String>,
    pub details: Vec<String>,
    /// The last `sync --update --dry-run`: per patch, what would happen on the newest upstream.
    pub last_dry_run: Option<DryRun>,
}

impl Args {
    pub fn run(&self, sh: &Shell, layout: &Layout) -> Result<()> {
        let mut rows = Vec::new();
        for name in layout.select(&self.projects)? {
            rows.push(status_of(sh, layout, &Project::load(layout, &name)?)?);
        }
        if self.json {
            let doc = serde_json::json!({ "version": 1, "stacks": rows });
            return print_stdout(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
        }
        // One write at the end, so a closed pipe is met once (see `print_stdout`).
        let mut text = String::new();
        for r in &rows {
            let behind = r.behind.map_or("not fetched".to_string(), |n| {
                format!("{n} behind {}", r.track)
            });
            writeln!(
                text,
                "{:<13} {:<14} {:>3} patch(es)  v{:<3} {:<20} {}",
                r.project,
                git::short(&r.base),
                r.patches,
                r.version,
                r.checkout,
                behind
            )?;
            if let Some(summary) = &r.summary {
                writeln!(text, "{:<13} {summary}", "")?;
            }
            for d in &r.details {
                writeln!(text, "{:<13} {d}", "")?;
            }
        }
        print_stdout(&text)
    }
}

fn status_of(sh: &Shell, layout: &Layout, project: &Project) -> Result<StackStatus> {
    let s = &project.stack;
    let (upstream, base) = match &s.source {
        Source::Git { url, commit } => (url.clone(), commit.clone()),
        Source::Pypi { name, version, .. } => (format!("pypi:{name}"), version.clone()),
    };
    let mut row = StackStatus {
        project: project.name.clone(),
        upstream,
        track: s.track.clone(),
        base,
        version: s.version,
        patches: s.series.len(),
        behind: None,
        checkout: "missing",
        summary: readme_summary(&project.dir.join("README.md")),
        details: Vec::new(),
        last_dry_run: None,
    };
    let dir = layout.checkout(&project.name);
    if !dir.exists() {
        return Ok(row);
    }
    let co = Checkout::new(sh, &dir);
    let repo = co.open()?;
    if let Source::Git { commit: id, .. } = &s.source {
        let tracked = git::ref_target(&repo, &format!("refs/remotes/origin/{}", s.track));
        if let (Some(t), Ok(b)) = (tracked, git2::Oid::from_str(id)) {
            row.behind = repo.graph_ahead_behind(t, b).ok().map(|(ahead, _)| ahead);
        }
    }
    let update = UpdateState::read(&dir);
    let updating = matches!(update, Ok(Some(_)));
    if let Ok(Some(st)) = update {
        let at = st
            .patches
            .get(st.done.len())
            .map_or("the end".to_string(), |p| format!("`{p}`"));
        row.details.push(format!(
            "update to {} under way, {} at {at}",
            git::short(&st.new_base),
            if st.stopped { "stopped" } else { "interrupted" }
        ));
    }
    if let Some(dry) = DryRun::read(&dir) {
        let count = |label: &str| {
            dry.patches
                .iter()
                .filter(|(_, o)| o.label() == label)
                .count()
        };
        row.details.push(format!(
            "last dry run ({}) onto {}: {} apply, {} absorbed, {} conflict(s), {} shrunk",
            dry.date,
            git::short(&dry.new_base),
            count("applies") + count("changed"),
            count("absorbed"),
            count("conflicts"),
            count("shrunk")
        ));
        for (name, o) in &dry.patches {
            row.details.push(format!("  {name}: {}", o.describe()));
        }
        row.last_dry_run = Some(dry);
    }
    // An operation of the tool's own that a crash or Ctrl-C cut short comes first: its
    // half-done work tree is not the user's uncommitted work. (An update says so above.)
    let interrupted = crate::ops::intent::read(&dir).filter(|_| !updating);
    row.checkout = if let Some(intent) = interrupted {
        row.details.push(format!(
            "`{}` was interrupted: `{}` finishes it",
            intent.op.git_command(),
            intent.op.resume_command(&project.name)
        ));
        "interrupted"
    } else {
        // The same reading of the checkout that sync acts on.
        match plan(&observe(&co, &repo, project)?) {
            Plan::Conflict => {
                row.details.push(
                    "stopped at a patch: `cargo xtask sync --continue|--skip|--abort`".into(),
                );
                "mid-conflict"
            }
            Plan::Unsaved { uncommitted, .. } if !uncommitted.is_empty() => "uncommitted-changes",
            Plan::Unsaved { .. } => {
                row.details
                    .push(format!("keep with `cargo xtask save {}`", project.name));
                "unsaved-commits"
            }
            Plan::UpToDate => "clean",
            Plan::Apply => "stale",
        }
    };
    if let Source::Pypi { sha256, .. } = &s.source
        && git::ref_target(&repo, &pypi::import_ref(sha256)).is_none()
    {
        row.details
            .push("pinned sdist not imported yet: run `cargo xtask sync`".into());
    }
    Ok(row)
}

/// The first line of text after the title of a stack's README.
pub fn readme_summary(path: &std::path::Path) -> Option<String> {
    let text = fs_err::read_to_string(path).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_the_first_line_after_the_title() {
        let dir = std::env::temp_dir().join(format!("xtask-readme-{}", std::process::id()));
        fs_err::create_dir_all(&dir).unwrap();
        let path = dir.join("README.md");
        fs_err::write(
            &path,
            "# cffi\n\nNo patches needed: upstream.\n\n- details\n",
        )
        .unwrap();
        assert_eq!(
            readme_summary(&path).as_deref(),
            Some("No patches needed: upstream.")
        );
        assert_eq!(readme_summary(&dir.join("missing.md")), None);
        fs_err::remove_dir_all(&dir).unwrap();
    }
}
