//! `cargo xtask export-prs`: turn a stack's `prs:` groups into `pr/<name>` branches, each
//! verified on its own, with its description written; find hidden dependencies; push to a fork.

mod commits;
mod describe;
mod plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use xshell::Shell;

use crate::git::{self, AmOutcome, Checkout, Proposer};
use crate::manifest::{PatchName, PrGroup, Source};
use crate::stack::{self, Layout, Project};
use describe::{Check, CommitChecks, Rules};

/// Split a stack into pull-request branches `pr/<name>`, verify each on its own, and write
/// their descriptions to `target/xtask/prs/<project>/<name>.md`.
///
/// Groups come from `prs:` in `stack.yaml`. An independent group is based on the newest
/// upstream `track`; a stacked one (`depends_on`) on its dependency's branch. Each branch runs
/// the stack's `verify` commands and upstream's `conventions.checks`, with one cargo target
/// directory shared by all branches (and, with `verify_each_commit`, every commit of each).
/// A group that only works on top of another is named with the `depends_on` line it needs.
/// Commits carry your git identity (`user.name`, `user.email`). Running it again with
/// nothing changed does nothing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stack (default: every stack with `prs:`).
    pub project: Option<String>,
    /// Only this group (and the groups it is stacked on).
    #[arg(long)]
    pub group: Option<String>,
    /// Push the branches that changed to this remote (your fork) with --force-with-lease.
    #[arg(long, value_name = "REMOTE")]
    pub push: Option<String>,
    /// Show the groups, their bases and order; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What the last export made of each group, in `target/xtask/prs/<project>/state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    groups: BTreeMap<String, GroupState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GroupState {
    tip: String,
    checks: Vec<Check>,
    /// The commands those checks ran: other commands mean verifying again.
    #[serde(default)]
    commands: Vec<String>,
    /// Each commit's checks, when every commit was verified.
    #[serde(default)]
    commits: Vec<CommitChecks>,
    /// Remote name -> the tip last pushed there.
    #[serde(default)]
    pushed: BTreeMap<String, String>,
}

impl Args {
    pub fn run(&self, sh: &Shell, layout: &Layout) -> Result<()> {
        let names = match &self.project {
            Some(p) => layout.select(std::slice::from_ref(p))?,
            None => {
                let mut v = Vec::new();
                for n in layout.projects()? {
                    if !Project::load(layout, &n)?.stack.prs.is_empty() {
                        v.push(n);
                    }
                }
                v
            }
        };
        if names.is_empty() {
            bail!("no stack has `prs:` groups (see docs/stack-format.md)");
        }
        for name in names {
            let (_lock, project) = Project::lock_and_load(layout, &name, "cargo xtask export-prs")?;
            export(sh, layout, &project, self)?;
        }
        Ok(())
    }
}

struct Built {
    tip: String,
    changed: bool,
    checks: Vec<Check>,
    commits: Vec<CommitChecks>,
    /// The news entries the branch adds: its patches' own, or the placeholder.
    news: Vec<String>,
    problem: Option<String>,
}

fn export(sh: &Shell, layout: &Layout, project: &Project, args: &Args) -> Result<()> {
    let Source::Git { url, .. } = &project.stack.source else {
        bail!(
            "`{}` comes from PyPI; pull requests need a git upstream",
            project.name
        );
    };
    if project.stack.prs.is_empty() {
        bail!(
            "`{}` has no `prs:` groups in {}",
            project.name,
            layout.show(&project.manifest_path)
        );
    }
    stack::require_clean_lint(layout, project)?;
    let mut files: BTreeMap<PatchName, Vec<crate::patch::Hunk>> = BTreeMap::new();
    for p in &project.stack.series {
        let text = String::from_utf8_lossy(&fs_err::read(project.patch_path(p))?).into_owned();
        files.insert(p.clone(), crate::patch::hunks(&text));
    }
    let mut groups = plan::order(&project.stack.series, &project.stack.prs, &files)
        .with_context(|| format!("checking `prs:` in {}", layout.show(&project.manifest_path)))?;
    if let Some(only) = &args.group {
        let by_name: BTreeMap<&str, &PrGroup> = project
            .stack
            .prs
            .iter()
            .map(|g| (g.name.as_str(), g))
            .collect();
        if !by_name.contains_key(only.as_str()) {
            bail!("no group `{only}` in `{}`", project.name);
        }
        let keep: Vec<String> = plan::ancestors(only, &by_name)
            .into_iter()
            .map(str::to_string)
            .chain([only.clone()])
            .collect();
        groups.retain(|g| keep.contains(&g.name));
    }
    if args.dry_run {
        for g in &groups {
            let base = g
                .depends_on
                .first()
                .map_or(format!("upstream `{}`", project.stack.track), |d| {
                    format!("pr/{d}")
                });
            crate::outln!(
                "pr/{:<24} on {base}: {}",
                g.name,
                g.patches
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        return Ok(());
    }

    // Fail before any work when there is no one to commit as.
    let who = Checkout::new(sh, &layout.root).proposer()?;
    // The checkout holds the branches; it must match its stack.
    crate::ops::sync_one(sh, layout, project, false)
        .context("the checkout must match its stack before an export")?;
    let co = Checkout::new(sh, &layout.checkout(&project.name));
    co.fetch_branch(&project.stack.track)?;
    let upstream = git::ref_target(
        &co.open()?,
        &format!("refs/remotes/origin/{}", project.stack.track),
    )
    .with_context(|| format!("no `origin/{}` after fetching", project.stack.track))?
    .to_string();
    let dir = layout.xtask_target().join("prs").join(&project.name);
    fs_err::create_dir_all(&dir)?;
    let state_path = dir.join("state.json");
    let mut state: State = fs_err::read_to_string(&state_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let rules = Rules::of(url, project.stack.conventions.as_ref());
    let cargo_target = VerifyEnv {
        cargo_target: dir.join("cargo-target"),
        layout: layout.clone(),
        rules,
        who,
    };

    let mut tips: BTreeMap<String, String> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for g in &groups {
        let base = match g.depends_on.first() {
            Some(d) => match tips.get(d) {
                Some(t) => t.clone(),
                None => {
                    failed.push(g.name.clone());
                    rows.push(format!("pr/{:<24} not built: `{d}` failed", g.name));
                    continue;
                }
            },
            None => upstream.clone(),
        };
        let previous = state.groups.get(&g.name).cloned().unwrap_or_default();
        let built = build_group(sh, &co, project, g, &base, &dir, &cargo_target, &previous)?;
        if let Some(problem) = &built.problem {
            // Does it stand on another group without saying so?
            let hint = hidden_dependency(sh, &co, project, g, &tips, &dir, &cargo_target)?;
            let hint = hint.map_or(String::new(), |other| {
                format!("; it works on top of `{other}`: add `depends_on: [{other}]` to group `{}` in {}", g.name, layout.show(&project.manifest_path))
            });
            eprintln!("{}: pr/{}: {problem}{hint}", project.name, g.name);
            rows.push(format!("pr/{:<24} FAILED: {problem}{hint}", g.name));
            failed.push(g.name.clone());
            continue;
        }
        co.update_ref(
            &format!("refs/heads/pr/{}", g.name),
            &built.tip,
            "xtask: export-prs",
        )?;
        tips.insert(g.name.clone(), built.tip.clone());
        write_description(&co, &dir, g, &base, &built, &cargo_target.rules)?;
        let verified: f64 = built.checks.iter().map(|c| c.seconds).sum();
        rows.push(format!(
            "pr/{:<24} {} {}  {}",
            g.name,
            git::short(&built.tip),
            if built.changed {
                "updated "
            } else {
                "unchanged"
            },
            if built.checks.is_empty() {
                "no verify commands".to_string()
            } else if built.changed && !built.commits.is_empty() {
                format!(
                    "verified commit by commit, {} commit(s) ({verified:.1} s)",
                    built.commits.len()
                )
            } else if built.changed {
                format!("verified ({verified:.1} s)")
            } else {
                format!("verified earlier ({verified:.1} s), not run again")
            }
        ));
        let entry = state.groups.entry(g.name.clone()).or_default();
        entry.tip = built.tip.clone();
        entry.checks = built.checks.clone();
        entry.commands = cargo_target.commands(project);
        entry.commits = built.commits.clone();
    }
    let mut pushed = 0;
    if let Some(remote) = &args.push {
        for g in &groups {
            let Some(tip) = tips.get(&g.name) else {
                continue;
            };
            let entry = state.groups.entry(g.name.clone()).or_default();
            if entry.pushed.get(remote) == Some(tip) {
                continue;
            }
            let expected = entry.pushed.get(remote).cloned().unwrap_or_default();
            let branch = format!("refs/heads/pr/{}", g.name);
            if let Some(refusal) = co.push_with_lease(remote, &branch, &expected)? {
                bail!(
                    "pushing pr/{} to `{remote}` was refused: the branch there is not where this tool last left it (someone else moved it?).\n{refusal}\nlook with `git -C {} fetch {remote}` and compare before deciding",
                    g.name,
                    layout.show(&co.dir)
                );
            }
            entry.pushed.insert(remote.clone(), tip.clone());
            pushed += 1;
        }
    }
    crate::fsx::write_atomic(
        &state_path,
        (serde_json::to_string_pretty(&state)? + "\n").as_bytes(),
    )?;
    for r in &rows {
        crate::outln!("{}: {r}", project.name);
    }
    if let Some(remote) = &args.push {
        crate::outln!("{}: pushed {pushed} branch(es) to `{remote}`", project.name);
    }
    crate::outln!("{}: descriptions in {}", project.name, layout.show(&dir));
    if !failed.is_empty() {
        bail!("{} group(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

/// Builds one group's branch in a worktree on `base`, committed as the proposer, and
/// verifies it (unless this exact tip was verified before with the same commands).
#[allow(clippy::too_many_arguments)]
fn build_group(
    sh: &Shell,
    co: &Checkout,
    project: &Project,
    g: &PrGroup,
    base: &str,
    dir: &Path,
    env: &VerifyEnv,
    previous: &GroupState,
) -> Result<Built> {
    let path = dir.join("worktrees").join(&g.name);
    let wt = co.worktree_at(&path, base)?;
    let patches: Vec<PathBuf> = g.patches.iter().map(|p| project.patch_path(p)).collect();
    if let AmOutcome::Stopped { .. } = wt.am(&patches)? {
        let n = wt.am_current().unwrap_or(0);
        wt.am_abort()?;
        let which = g
            .patches
            .get(n.wrapping_sub(1))
            .map_or("?".into(), |p| p.to_string());
        return Ok(Built {
            tip: String::new(),
            changed: false,
            checks: vec![],
            commits: vec![],
            news: vec![],
            problem: Some(format!("`{which}` does not apply on {}", git::short(base))),
        });
    }
    // A group whose patches bring their own news entries gets no placeholder; either way the
    // description says which entries still need upstream's number.
    let repo = wt.open()?;
    let base_id = git2::Oid::from_str(base)?;
    let am_tip = git::head_commit(&repo).context("no HEAD in the worktree")?;
    let mut news = match env.rules.news_dir() {
        Some(dir) => git::added_files_under(&repo, base_id, am_tip, dir)?,
        None => vec![],
    };
    if let (true, Some((file, text))) = (
        news.is_empty(),
        env.rules.news_file(&g.name, &g.title, g.news.as_deref()),
    ) {
        add_news(&wt, &file, &text)?;
        news.push(file);
    }
    // `am` and the news commit are by the tool; the branch is the proposer's.
    let applied = git::head_commit(&repo).context("no HEAD in the worktree")?;
    let keep = if env.rules.keep_author {
        g.patches.len()
    } else {
        0
    };
    let tip = git::restamp(&repo, base_id, applied, &env.who, keep)?.to_string();
    let wt = co.worktree_at(&path, &tip)?;
    let changed = previous.tip != tip;
    let commands = env.commands(project);
    let reuse = !changed
        && previous.commands == commands
        && !previous.checks.is_empty()
        && previous.checks.iter().all(|c| c.passed)
        && (!env.rules.each_commit || !previous.commits.is_empty());
    let (checks, commits, problem) = if reuse {
        (previous.checks.clone(), previous.commits.clone(), None)
    } else if env.rules.each_commit {
        let (commits, problem) =
            commits::verify_each(co, &path, base, &tip, |wt| verify(sh, project, wt, env))?;
        let tip_checks = commits.last().map(|c| c.checks.clone()).unwrap_or_default();
        (tip_checks, commits, problem)
    } else {
        let checks = verify(sh, project, &wt, env)?;
        let problem = checks
            .iter()
            .find(|c| !c.passed)
            .map(|c| format!("`{}` failed on the branch", c.command));
        (checks, vec![], problem)
    };
    Ok(Built {
        tip,
        changed,
        checks,
        commits,
        news,
        problem,
    })
}

/// Commits the upstream's news placeholder (dated like the last patch, so the tip stays the
/// same for the same patches).
fn add_news(wt: &Checkout, file: &str, text: &str) -> Result<()> {
    let path = wt.dir.join(file);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(&path, text)?;
    let message = format!(
        "Add a news entry placeholder\n\nRename {file} once the pull request has a number."
    );
    wt.commit_file_as_tool(file, &message)
}

/// What branches are made and verified with: their own cargo target folder, the layout the
/// commands' variables come from (worked out when a branch is verified: an unchanged one
/// needs no interpreters), upstream's rules and the proposer.
struct VerifyEnv {
    cargo_target: PathBuf,
    layout: Layout,
    rules: Rules,
    who: Proposer,
}

impl VerifyEnv {
    /// The stack's `verify:` commands, then upstream's checks.
    fn commands(&self, project: &Project) -> Vec<String> {
        project
            .stack
            .verify
            .iter()
            .chain(&self.rules.checks)
            .cloned()
            .collect()
    }
}

fn verify(sh: &Shell, project: &Project, wt: &Checkout, env: &VerifyEnv) -> Result<Vec<Check>> {
    crate::ops::checks::run_checks(
        sh,
        &wt.dir,
        &env.commands(project),
        &crate::ops::checks::variables(&env.layout, project)?,
        &[("CARGO_TARGET_DIR", &env.cargo_target)],
        false,
    )
}

/// When a group fails alone, tries it on top of each group built so far; returns the first
/// it works on.
#[allow(clippy::too_many_arguments)]
fn hidden_dependency(
    sh: &Shell,
    co: &Checkout,
    project: &Project,
    g: &PrGroup,
    tips: &BTreeMap<String, String>,
    dir: &Path,
    cargo_target: &VerifyEnv,
) -> Result<Option<String>> {
    for (other, tip) in tips {
        if g.depends_on.contains(other) {
            continue;
        }
        let probe = build_group(
            sh,
            co,
            project,
            g,
            tip,
            &dir.join("probe"),
            cargo_target,
            &GroupState::default(),
        )?;
        if probe.problem.is_none() {
            return Ok(Some(other.clone()));
        }
    }
    Ok(None)
}

fn write_description(
    co: &Checkout,
    dir: &Path,
    g: &PrGroup,
    base: &str,
    built: &Built,
    rules: &Rules,
) -> Result<()> {
    let repo = co.open()?;
    let commits: Vec<(String, String)> = git::commits_between(
        &repo,
        git2::Oid::from_str(base)?,
        git2::Oid::from_str(&built.tip)?,
    )?
    .into_iter()
    .map(|(id, _)| {
        let message = repo
            .find_commit(id)
            .ok()
            .and_then(|c| c.message().ok().map(str::to_string))
            .unwrap_or_default();
        (git::short(id), plan::public_message(&message))
    })
    .collect();
    let title = rules.title(&g.title);
    let todo = rules.todo(&title, &built.news);
    let text = describe::render(&describe::Description {
        title: &title,
        body: g.body.as_deref(),
        commits: &commits,
        depends_on: g.depends_on.first().map(|s| s.as_str()),
        checks: &built.checks,
        commit_checks: &built.commits,
        statement: rules.statement.as_deref(),
        todo: &todo,
    });
    crate::fsx::write_if_changed(&dir.join(format!("{}.md", g.name)), text.as_bytes())?;
    Ok(())
}
