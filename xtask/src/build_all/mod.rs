//! `cargo xtask build-all`: the end-to-end abi3t experiment from the checkouts, as a graph of
//! cached steps (`graph`), run in parallel (`run`) with a progress display (`progress`), made of
//! real recipes (`recipes`), checked (`wheel`) and reported (`report`).

mod experiment;
mod graph;
mod platform;
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

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::manifest::RecipeKind;
use crate::ops::interpreters::Platform;
use crate::stack::{self, Layout, Project};
use experiment::{Sources, TargetInfo};
use graph::Graph;
use recipes::pytest::CellResult;
use run::Status;
use step::{Flavour, Installer, StepId};
use tools::Tools;

/// Build and test the experiment: CPython twice (GIL-enabled and free-threaded), the
/// toolchain from the stacks, then each target's one abi3.abi3t wheel, installed into both
/// interpreters with pip and with uv and tested there.
///
/// Syncs first. Steps are cached under `target/xtask/cache/<step>/<key>/` by a key over
/// everything they depend on, so a run with nothing changed does nothing. Logs go to
/// `target/xtask/logs/<step>.log`; the report to `target/xtask/report.{json,md}`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Steps to run at most at once (default: the number of cores).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Go on with the steps that do not depend on a failed one.
    #[arg(long)]
    pub keep_going: bool,
    /// Only these steps (a name such as `cpython/freethreaded`, or a prefix such as
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
        preflight(sh, Platform::host())?;
        let projects = sync_all(sh, layout)?;
        let target_dir = layout.xtask_target();
        let env = recipes::Env {
            root: layout.root.clone(),
            work: target_dir.join("work"),
            constraints: layout.root.join("xtask").join("constraints.txt"),
        };
        let tools = Tools::probe(sh, &env.constraints)?;
        let (src, targets) = sources(layout, &projects)?;
        let specs = experiment::specs(&src, &tools, &targets)?;
        let actions = experiment::actions(&Arc::new(env), &specs, &targets)?;
        let graph = Graph::new(specs)?;
        let selection = graph.select(&self.only, self.from.as_deref())?;
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

        let report = make_report(&summary, &projects, &targets, &tools)?;
        crate::fsx::write_atomic(
            &target_dir.join("report.json"),
            (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
        )?;
        crate::fsx::write_atomic(&target_dir.join("report.md"), report.markdown().as_bytes())?;
        if !self.quiet {
            print!("{}", report.table());
            crate::outln!(
                "wall {:.1} s, steps' own time {:.1} s; report: {}",
                report.wall_seconds,
                report.step_seconds,
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

/// The tools build-all runs, and on POSIX the system packages CPython needs for `ssl`,
/// `ctypes`, `sqlite3` and `zlib`, found before the long steps start.
fn preflight(sh: &Shell, platform: Platform) -> Result<()> {
    let path: Vec<_> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    if let Some(tool) = platform::missing_tools(platform, &path, |p| p.is_file()).first() {
        bail!("`{tool}` is not on PATH; build-all needs it");
    }
    if platform == Platform::Windows {
        // PCbuild fetches CPython's libraries itself (`build.bat -e`).
        return Ok(());
    }
    // ccache is optional: without it every CPython build compiles everything, so say so
    // once here; each CPython step's log says it too.
    if recipes::cpython::find_ccache(&path, std::path::Path::new(""), |p| p.is_file()).is_none() {
        eprintln!("note: {}", recipes::cpython::NO_CCACHE);
    }
    let needs = [
        ("openssl", "libssl-dev", "openssl@3"),
        ("libffi", "libffi-dev", "libffi"),
        ("zlib", "zlib1g-dev", "zlib"),
        ("sqlite3", "libsqlite3-dev", "sqlite"),
    ];
    let mut missing = Vec::new();
    for (module, debian, brew) in needs {
        if cmd!(sh, "pkg-config --exists {module}")
            .quiet()
            .ignore_stderr()
            .run()
            .is_err()
        {
            missing.push((module, debian, brew));
        }
    }
    if !missing.is_empty() {
        let names = |i: usize| {
            missing
                .iter()
                .map(|m| [m.0, m.1, m.2][i])
                .collect::<Vec<_>>()
                .join(" ")
        };
        bail!(
            "missing development files for {} (pkg-config found none); install them first:\n  Debian/Ubuntu: sudo apt-get install pkg-config {}\n  macOS: brew install pkg-config {}",
            names(0),
            names(1),
            names(2)
        );
    }
    Ok(())
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

fn tree_of(layout: &Layout, project: &str) -> Result<String> {
    let dir = layout.checkout(project);
    git2::Repository::open(&dir)
        .and_then(|repo| Ok(repo.head()?.peel_to_tree()?.id().to_string()))
        .with_context(|| format!("reading the tree of `{}`", layout.show(&dir)))
}

/// The trees the experiment builds from, and the stacks with a build target.
fn sources(layout: &Layout, projects: &[Project]) -> Result<(Sources, Vec<TargetInfo>)> {
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
    let needs_pyo3 = targets.iter().any(|t| t.target.kind == RecipeKind::Maturin);
    let src = Sources {
        cpython: tree_of(layout, "cpython")?,
        maturin: tree_of(layout, "maturin")?,
        setuptools: tree_of(layout, "setuptools")?,
        cffi: tree_of(layout, "cffi")?,
        pyo3: if needs_pyo3 {
            Some(tree_of(layout, "pyo3")?)
        } else {
            None
        },
    };
    Ok((src, targets))
}

fn make_report(
    summary: &run::Summary<StepId>,
    projects: &[Project],
    targets: &[TargetInfo],
    tools: &Tools,
) -> Result<report::Report> {
    let mut matrix = Vec::new();
    for t in targets {
        let wheel = summary
            .get(&StepId::Wheel(t.name.clone()))
            .filter(|r| matches!(r.status, Status::Built | Status::Cached))
            .and_then(|r| recipes::wheel_in(&r.out).ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .and_then(|f| wheel::parse_name(&f).ok())
            .map(|n| format!("{}-{}-{}", n.python, n.abi, n.platform));
        for flavour in Flavour::ALL {
            for installer in Installer::ALL {
                let r = summary.get(&StepId::Test(t.name.clone(), flavour, installer));
                let outcome = match r.map(|r| &r.status) {
                    Some(Status::Built | Status::Cached) => "passed",
                    Some(Status::Failed) => "failed",
                    _ => "not-run",
                };
                // What the cell left: counts, and the tests that passed only when re-run.
                let result: Option<CellResult> = r
                    .filter(|r| !r.out.as_os_str().is_empty())
                    .and_then(|r| std::fs::read_to_string(r.out.join("result.json")).ok())
                    .and_then(|t| serde_json::from_str(&t).ok());
                matrix.push(report::Row {
                    target: t.name.clone(),
                    interpreter: flavour.to_string(),
                    installer: installer.to_string(),
                    outcome: outcome.into(),
                    counts: result.as_ref().map(|c| c.counts.clone()),
                    flaky: result.map(|c| c.flaky_tests).unwrap_or_default(),
                    wheel: wheel.clone(),
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
        version: 1,
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
            })
            .collect(),
        wall_seconds: summary.wall.as_secs_f64(),
        step_seconds: summary.step_seconds(),
    })
}
