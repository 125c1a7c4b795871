//! `cargo xtask build-all`: the end-to-end abi3t experiment from the checkouts, as a graph of
//! cached steps (`graph`), run in parallel (`run`) with a progress display (`progress`), made of
//! real recipes (`recipes`), checked (`wheel`) and reported (`report`).

mod experiment;
mod graph;
mod platform;
mod preflight;
mod progress;
mod recipes;
mod report;
mod run;
#[cfg(test)]
mod run_tests;
mod step;
mod tools;
mod wheel;

use std::sync::Arc;

use anyhow::{Result, bail};
use xshell::Shell;

use crate::manifest::Experiment;
use crate::ops::interpreters::{Platform, tree_of};
use crate::stack::{self, Layout, Project};
use experiment::{TargetInfo, Trees};
use graph::Graph;
use recipes::pytest::CellResult;
use recipes::refusal::RefusalResult;
use run::Status;
use step::StepId;
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
        let projects = sync_all(sh, layout)?;
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

        let report = make_report(&summary, &experiment, &projects, &targets, &tools)?;
        crate::fsx::write_atomic(
            &target_dir.join("report.json"),
            (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
        )?;
        crate::fsx::write_atomic(&target_dir.join("report.md"), report.markdown().as_bytes())?;
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
        if !failed.is_empty() {
            bail!(
                "{} step(s) failed: {}",
                failed.len(),
                failed
                    .iter()
                    .map(|f| f.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }
}

fn sync_all(sh: &Shell, layout: &Layout) -> Result<Vec<Project>> {
    let mut projects = Vec::new();
    for name in layout.projects()? {
        let (project, _lock) =
            crate::ops::locked_and_synced(sh, layout, &name, "cargo xtask build-all", "the build")?;
        projects.push(project);
    }
    Ok(projects)
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

fn make_report(
    summary: &run::Summary<StepId>,
    e: &Experiment,
    projects: &[Project],
    targets: &[TargetInfo],
    tools: &Tools,
) -> Result<report::Report> {
    let outcome = |r: Option<&run::StepResult<StepId>>| match r.map(|r| &r.status) {
        Some(Status::Built | Status::Cached) => "passed",
        Some(Status::Failed) => "failed",
        _ => "not-run",
    };
    let read = |r: Option<&run::StepResult<StepId>>, file: &str| -> Option<String> {
        r.filter(|r| !r.out.as_os_str().is_empty())
            .and_then(|r| std::fs::read_to_string(r.out.join(file)).ok())
    };
    let wheel_tag = |id: StepId, sub: &str| {
        summary
            .get(&id)
            .filter(|r| matches!(r.status, Status::Built | Status::Cached))
            .and_then(|r| recipes::wheel_in(&r.out.join(sub)).ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .and_then(|f| wheel::parse_name(&f).ok())
            .map(|n| format!("{}-{}-{}", n.python, n.abi, n.platform))
    };
    let mut matrix = Vec::new();
    for t in targets {
        let wheel = wheel_tag(StepId::Wheel(t.name.clone()), "");
        // The wheel step's Stable ABI audit, on the interpreter that built it.
        let r = summary.get(&StepId::Wheel(t.name.clone()));
        let audit: Option<recipes::AuditRecord> =
            read(r, recipes::AUDIT_JSON).and_then(|t| serde_json::from_str(&t).ok());
        matrix.push(report::Row {
            target: t.name.clone(),
            interpreter: e.builder().name.clone(),
            check: "audit".into(),
            installer: "-".into(),
            outcome: match &audit {
                Some(a) if a.verdict == crate::stable_abi::Verdict::Violations => "failed",
                Some(_) => "passed",
                None => outcome(r),
            }
            .into(),
            counts: None,
            flaky: vec![],
            wheel: wheel.clone(),
            detail: audit.map(|a| a.summary),
        });
        for i in e.tested() {
            for &installer in &e.tests.installers {
                let r = summary.get(&StepId::Install(t.name.clone(), i.name.clone(), installer));
                matrix.push(report::Row {
                    target: t.name.clone(),
                    interpreter: i.name.clone(),
                    check: "install".into(),
                    installer: installer.to_string(),
                    outcome: outcome(r).into(),
                    counts: None,
                    flaky: vec![],
                    wheel: wheel.clone(),
                    detail: None,
                });
            }
            let r = summary.get(&StepId::Test(t.name.clone(), i.name.clone()));
            // What the cell left: counts, and the tests that passed only when re-run.
            let result: Option<CellResult> =
                read(r, "result.json").and_then(|t| serde_json::from_str(&t).ok());
            matrix.push(report::Row {
                target: t.name.clone(),
                interpreter: i.name.clone(),
                check: "tests".into(),
                installer: e.tests.suite.to_string(),
                outcome: outcome(r).into(),
                counts: result.as_ref().map(|c| c.counts.clone()),
                flaky: result.map(|c| c.flaky_tests).unwrap_or_default(),
                wheel: wheel.clone(),
                detail: None,
            });
        }
    }
    for refusal in &e.refusals {
        let wheel = wheel_tag(StepId::Abi3Wheel(refusal.target.clone()), "dist");
        for i in e.tested() {
            for &installer in &e.tests.installers {
                let id = StepId::Refusal(refusal.target.clone(), i.name.clone(), installer);
                let r = summary.get(&id);
                let found: Option<RefusalResult> =
                    read(r, "result.json").and_then(|t| serde_json::from_str(&t).ok());
                matrix.push(report::Row {
                    target: refusal.target.clone(),
                    interpreter: i.name.clone(),
                    check: format!(
                        "refusal (expect {})",
                        if experiment::accepts_abi3(i) {
                            "accept"
                        } else {
                            "refuse"
                        }
                    ),
                    installer: installer.to_string(),
                    outcome: outcome(r).into(),
                    counts: None,
                    flaky: vec![],
                    wheel: wheel.clone(),
                    detail: found.map(|f| format!("{}: {}", f.got, f.message)),
                });
            }
        }
    }
    let mut stacks = Vec::new();
    for p in projects {
        stacks.push(report::StackInfo {
            project: p.name.clone(),
            base: match &p.stack.source {
                crate::manifest::Source::Git { commit, .. } => commit.clone(),
                crate::manifest::Source::Pypi {
                    version, sha256, ..
                } => {
                    format!("{version} sha256:{sha256}")
                }
            },
            version: p.stack.version,
            series_digest: stack::digest(p)?,
            patches: p.stack.series.len(),
        });
    }
    Ok(report::Report {
        version: 2,
        date: crate::changelog::today(),
        stacks,
        tools: tools.pairs(),
        matrix,
        steps: summary
            .results
            .iter()
            .map(|r| report::StepTime {
                step: r.name.to_string(),
                status: r.status.clone(),
                seconds: r.seconds,
                key: r.key.clone(),
                cores: r.cores,
                started: r.started,
            })
            .collect(),
        wall_seconds: summary.wall.as_secs_f64(),
        step_seconds: summary.step_seconds(),
        core_seconds: summary.core_seconds(),
        cores: summary.cores,
    })
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
