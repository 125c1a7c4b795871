//! `cargo xtask build-all`: the end-to-end abi3t experiment from the checkouts, as a graph of
//! cached steps (`graph`), run in parallel (`run`) with a progress display (`progress`), made of
//! real recipes (`recipes`), checked (`wheel`) and reported (`report`).

mod classify;
mod experiment;
mod graph;
mod matrix;
mod platform;
mod preflight;
mod progress;
mod recipes;
mod report;
mod run;
#[cfg(test)]
mod run_tests;
mod step;
#[cfg(all(test, unix))]
mod survey_tests;
mod tools;
mod wheel;

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::manifest::Experiment;
use crate::ops::interpreters::{Platform, tree_of};
use crate::stack::{self, Layout, Project};
use experiment::{TargetInfo, Trees};
use graph::Graph;
use run::Status;
use tools::Tools;

/// Build and test the experiment `experiment.yaml` describes: each interpreter built from
/// its CPython stack, the toolchain from the stacks that play its roles, then each target's
/// one abi3.abi3t wheel, built once, installed into every interpreter with every installer
/// and imported, and tested there with its own test suite.
///
/// Syncs first. Steps are cached under `target/xtask/cache/<step>/<key>/` by a key over
/// everything they depend on, so a run with nothing changed does nothing. Logs go to
/// `target/xtask/logs/<step>.log`; the report to `target/xtask/report.{json,md}`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The core budget the steps share (default: the number of cores). Each step is granted
    /// some of it, which it passes to `make -j`, cargo and `pytest -n`; a step starts only
    /// when its cores are free, so the grants never add up to more than N. With more steps
    /// ready than free cores each gets one; a step that can use more gets the cores left over;
    /// a test cell takes all N and runs alone.
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Go on with the steps that do not depend on a failed one.
    #[arg(long)]
    pub keep_going: bool,
    /// Only these steps (a name such as `cpython/3.15t`, or a prefix such as
    /// `cryptography`), with what they need.
    #[arg(long, value_name = "STEP")]
    pub only: Vec<String>,
    /// Run this step and everything after it again, even if cached.
    #[arg(long, value_name = "STEP")]
    pub from: Option<String>,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
    /// List the steps with their keys and whether they are cached, and stop.
    #[arg(long)]
    pub plan: bool,
}

impl Args {
    pub fn run(&self, sh: &Shell, layout: &Layout) -> Result<()> {
        let jobs = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        preflight::preflight(sh, Platform::host(), &preflight::system_requires(layout)?)?;
        let experiment = stack::load_experiment(layout)?;
        let (projects, unsynced) = sync_all(sh, layout)?;
        // A refusal of a target that did not sync has no wheel to refuse: that target's
        // cells say why.
        let mut experiment = experiment;
        experiment
            .refusals
            .retain(|r| !unsynced.iter().any(|u| u.target == r.target));
        let target_dir = layout.xtask_target();
        let env = recipes::Env {
            root: layout.root.clone(),
            work: target_dir.join("work"),
            constraints: layout.root.join("xtask").join("constraints.txt"),
        };
        let tools = Tools::probe(sh, &env.constraints)?;
        let (trees, targets) = sources(layout, &projects, &experiment)?;
        let specs = experiment::specs(&experiment, &trees, &tools, &targets)?;
        let actions = experiment::actions(&Arc::new(env), &specs, &experiment, &targets)?;
        let graph = Graph::new(specs)?;
        let selection = graph
            .select(&self.only, self.from.as_deref())
            .map_err(
                |e| match renamed_step(&experiment, &self.only, self.from.as_deref()) {
                    Some(hint) => e.context(hint),
                    None => e,
                },
            )?;
        let opts = run::Options {
            jobs,
            keep_going: self.keep_going,
            cache: target_dir.join("cache"),
            logs: target_dir.join("logs"),
        };
        if self.plan {
            for s in &graph.steps {
                let key = graph.key(&s.name)?;
                let cached =
                    run::is_done(&run::entry_dir(&opts.cache, &s.name.to_string(), key), key);
                let mark = if !selection.wanted.contains(&s.name) {
                    "-"
                } else if cached && !selection.forced.contains(&s.name) {
                    "cached"
                } else {
                    "run"
                };
                crate::outln!("{:<40} {key} {mark}", s.name.to_string());
            }
            return Ok(());
        }
        let durations_path = target_dir.join("durations.json");
        let mut progress = progress::Progress::new(progress::Mode::detect(self.quiet));
        progress.expected = std::fs::read_to_string(&durations_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let summary = run::execute(&graph, &actions, &selection, &opts, &mut progress)?;

        let mut durations = progress.expected.clone();
        for r in summary.results.iter().filter(|r| r.status == Status::Built) {
            durations.insert(r.name.to_string(), r.seconds);
        }
        crate::fsx::write_atomic(
            &durations_path,
            serde_json::to_string_pretty(&durations)?.as_bytes(),
        )?;

        let report = matrix::make_report(
            &summary,
            &graph,
            &experiment,
            &projects,
            &targets,
            &unsynced,
            &tools,
        )?;
        crate::fsx::write_atomic(
            &target_dir.join("report.json"),
            (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
        )?;
        crate::fsx::write_atomic(&target_dir.join("report.md"), report.markdown().as_bytes())?;
        job_summary(&report)?;
        if !self.quiet {
            print!("{}", report.table());
            crate::outln!(
                "wall {:.1} s, steps' own time {:.1} s, core-seconds / cores {:.1} s; report: {}",
                report.wall_seconds,
                report.step_seconds,
                summary.core_seconds() / summary.cores as f64,
                layout.show(&target_dir.join("report.md"))
            );
        }
        let failed = summary.failed();
        for f in &failed {
            let log = run::log_path(&opts.logs, &f.name);
            eprintln!(
                "\nstep `{}` failed: {}\n--- last 40 lines of {} ---\n{}\n---\nre-run just this step: cargo xtask build-all --from {} --only {}",
                f.name,
                f.error.as_deref().unwrap_or(""),
                layout.show(&log),
                run::tail(&log, 40),
                f.name,
                f.name
            );
        }
        for u in &unsynced {
            eprintln!(
                "\ntarget `{}` did not sync, so none of its steps ran: {}\nsee: cargo xtask status {}",
                u.target, u.error, u.target
            );
        }
        if !failed.is_empty() || !unsynced.is_empty() {
            let mut names: Vec<String> = failed.iter().map(|f| f.name.to_string()).collect();
            names.extend(unsynced.iter().map(|u| format!("{} (sync)", u.target)));
            bail!("{} step(s) failed: {}", names.len(), names.join(", "));
        }
        Ok(())
    }
}

/// What `merge-reports` shows of the merged report.
pub struct Merged {
    /// The survey, as markdown.
    pub survey: String,
    /// Cells that did not pass (failed, or not run with a class saying why).
    pub failing: usize,
}

/// Reads build-all reports, merges them (`report::Report::merge`) and writes `report.json`
/// and `report.md` to `out`; the survey goes to the GitHub job summary when there is one.
pub fn merge_reports(paths: &[std::path::PathBuf], out: &std::path::Path) -> Result<Merged> {
    let mut reports = Vec::new();
    for p in paths {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading `{}`", p.display()))?;
        let r: report::Report = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not a build-all report.json", p.display()))?;
        reports.push((p.display().to_string(), r));
    }
    let merged = report::Report::merge(reports)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating `{}`", out.display()))?;
    crate::fsx::write_atomic(
        &out.join("report.json"),
        (serde_json::to_string_pretty(&merged)? + "\n").as_bytes(),
    )?;
    crate::fsx::write_atomic(&out.join("report.md"), merged.markdown().as_bytes())?;
    job_summary(&merged)?;
    Ok(Merged {
        survey: merged.survey_markdown(),
        failing: merged
            .matrix
            .iter()
            // A cell no job ran (its job died before writing a report) did not pass either.
            .filter(|r| {
                r.outcome != "passed" || r.class.is_some_and(|c| c != classify::Class::Flaky)
            })
            .count(),
    })
}

/// Appends the survey to the GitHub Actions job summary, when there is one
/// (`GITHUB_STEP_SUMMARY` names the file).
fn job_summary(report: &report::Report) -> Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening the job summary `{}`", path.to_string_lossy()))?;
    writeln!(f, "{}", report.survey_markdown())
        .with_context(|| format!("writing the job summary `{}`", path.to_string_lossy()))
}

/// Syncs every stack. A target's stack that does not sync (a patch that no longer applies)
/// stops only that target: it is left out of the graph and reported; any other stack's
/// failure stops the run, since every target needs the toolchain.
fn sync_all(sh: &Shell, layout: &Layout) -> Result<(Vec<Project>, Vec<matrix::SyncFailure>)> {
    let mut projects = Vec::new();
    let mut unsynced = Vec::new();
    for name in layout.projects()? {
        match crate::ops::locked_and_synced(sh, layout, &name, "cargo xtask build-all", "the build")
        {
            Ok((project, _lock)) => projects.push(project),
            Err(e) => {
                let is_target = Project::load(layout, &name)
                    .map(|p| p.stack.build.is_some_and(|b| b.target.is_some()))
                    .unwrap_or(false);
                if !is_target {
                    return Err(e);
                }
                unsynced.push(matrix::SyncFailure {
                    target: name,
                    error: classify::one_line(&format!("{e:#}")),
                });
            }
        }
    }
    Ok((projects, unsynced))
}

/// What a step named with the flavours of old (`cpython/default`, `env/freethreaded`,
/// `<target>/test/default/pip`) is called now, if one of them was asked for.
fn renamed_step(e: &Experiment, only: &[String], from: Option<&str>) -> Option<String> {
    let old = only.iter().map(String::as_str).chain(from).find(|p| {
        p.split('/')
            .any(|seg| seg == "default" || seg == "freethreaded")
    })?;
    let names: Vec<&str> = e.interpreters.iter().map(|i| i.name.as_str()).collect();
    Some(format!(
        "`{old}` names a CPython flavour; steps are named by the interpreters of experiment.yaml ({}): `cpython/<interpreter>`, `env/<interpreter>`, `<target>/install/<interpreter>/<installer>`, `<target>/test/<interpreter>`",
        names.join(", ")
    ))
}

/// The trees of every stack the experiment builds from, and the stacks with a build target.
fn sources(
    layout: &Layout,
    projects: &[Project],
    e: &Experiment,
) -> Result<(Trees, Vec<TargetInfo>)> {
    let mut targets = Vec::new();
    for p in projects {
        if let Some(target) = p.stack.build.as_ref().and_then(|b| b.target.clone()) {
            targets.push(TargetInfo {
                name: p.name.clone(),
                target,
                tree: tree_of(layout, &p.name)?,
            });
        }
    }
    let mut trees = Trees::new();
    for stack in e.stacks() {
        trees.insert(stack.to_string(), tree_of(layout, stack)?);
    }
    Ok((trees, targets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_step_names_name_the_interpreters() {
        let e = crate::manifest::experiment::parse(
            "experiment.yaml",
            include_str!("../../../experiment.yaml"),
        )
        .unwrap();
        let hint = renamed_step(&e, &["cpython/default".into()], None).unwrap();
        assert!(hint.contains("(3.15, 3.15t, 3.16, 3.16t)"), "{hint}");
        assert!(hint.contains("`<target>/test/<interpreter>`"), "{hint}");
        let from = renamed_step(&e, &[], Some("brotlicffi/test/freethreaded/uv")).unwrap();
        assert!(
            from.starts_with("`brotlicffi/test/freethreaded/uv`"),
            "{from}"
        );
        assert_eq!(renamed_step(&e, &["cpython/3.15t".into()], None), None);
    }
}
