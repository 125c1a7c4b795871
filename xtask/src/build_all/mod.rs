//! `cargo xtask build-all`: the end-to-end abi3t experiment from the checkouts, as a graph of
//! cached steps (`graph`), run in parallel (`run`) with a progress display (`progress`), made of
//! real recipes (`recipes`), checked (`wheel`) and reported (`report`).

mod graph;
mod progress;
mod recipes;
mod report;
mod run;
mod wheel;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::manifest::{RecipeKind, Target};
use crate::stack::{self, Layout, Project};
use graph::{Graph, StepSpec};
use run::{Action, Status};

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

const INTERPRETERS: [(&str, bool); 2] = [("default", false), ("freethreaded", true)];
const INSTALLERS: [&str; 2] = ["pip", "uv"];
/// The CPython the stacks build; the wheel's python tag.
const PYTHON_TAG: &str = "cp315";
/// Revisions of the recipes, part of their steps' keys: bump one when its recipe changes what
/// it produces. Revision 0 adds nothing to the key.
const RECIPE_REVISIONS: [(&str, u32); 5] = [
    ("cpython", 0),
    ("maturin", 1),
    ("env", 2),
    ("wheel", 1),
    ("test", 2),
];

impl Args {
    pub fn run(&self, sh: &Shell, layout: &Layout) -> Result<()> {
        let jobs = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        preflight(sh)?;
        let projects = sync_all(sh, layout)?;
        let target_dir = layout.xtask_target();
        let env = recipes::Env {
            root: layout.root.clone(),
            work: target_dir.join("work"),
            constraints: layout.root.join("xtask").join("constraints.txt"),
        };
        let tools = tool_versions(sh, &env)?;
        let (graph, actions, targets) = experiment(layout, &env, &projects, &tools)?;
        let selection = graph.select(&self.only, self.from.as_deref())?;
        let opts = run::Options {
            jobs,
            keep_going: self.keep_going,
            cache: target_dir.join("cache"),
            logs: target_dir.join("logs"),
        };
        if self.plan {
            for s in &graph.steps {
                let key = graph.key(&s.name);
                let cached = run::is_done(&run::entry_dir(&opts.cache, &s.name, key), key);
                let mark = if !selection.wanted.contains(&s.name) {
                    "-"
                } else if cached && !selection.forced.contains(&s.name) {
                    "cached"
                } else {
                    "run"
                };
                println!("{:<40} {} {mark}", s.name, graph.key(&s.name));
            }
            return Ok(());
        }
        let durations_path = target_dir.join("durations.json");
        let mut progress = progress::Progress::new(progress::Mode::detect(self.quiet));
        progress.expected = fs_err::read_to_string(&durations_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let summary = run::execute(&graph, &actions, &selection, &opts, &mut progress)?;

        let mut durations = progress.expected.clone();
        for r in summary.results.iter().filter(|r| r.status == Status::Built) {
            durations.insert(r.name.clone(), r.seconds);
        }
        crate::fsx::write_atomic(
            &durations_path,
            serde_json::to_string_pretty(&durations)?.as_bytes(),
        )?;

        let report = make_report(&graph, &summary, &projects, &targets, &tools)?;
        crate::fsx::write_atomic(
            &target_dir.join("report.json"),
            (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
        )?;
        crate::fsx::write_atomic(&target_dir.join("report.md"), report.markdown().as_bytes())?;
        if !self.quiet {
            print!("{}", report.table());
            println!(
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
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }
}

/// The interpreters build-all built from the current CPython checkout (`default`,
/// `freethreaded`), for commands that run on them; an error says how to build a missing one.
pub fn interpreters(layout: &Layout) -> Result<Vec<(String, std::path::PathBuf)>> {
    if !layout.projects()?.iter().any(|p| p == "cpython") {
        bail!(
            "there is no `cpython` stack in {}, so build-all has built no interpreters",
            layout.show(&layout.patches())
        );
    }
    let cc = cc_version(&Shell::new()?)?;
    let tree = tree_of(layout, "cpython")
        .context("reading the CPython checkout (run `cargo xtask sync cpython`)")?;
    let mut specs: Vec<StepSpec> = cpython_specs(&tree, &cc)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    add_recipe_revisions(&mut specs);
    let graph = Graph::new(specs)?;
    let cache = layout.xtask_target().join("cache");
    let mut out = Vec::new();
    for (interp, _) in INTERPRETERS {
        let step = format!("cpython/{interp}");
        let dir = run::entry_dir(&cache, &step, graph.key(&step));
        if !run::is_done(&dir, graph.key(&step)) {
            bail!(
                "`{step}` is not built for the current CPython checkout; run `cargo xtask build-all --only {step}` first"
            );
        }
        out.push((interp.to_string(), recipes::python_in(&dir)?));
    }
    Ok(out)
}

/// System packages CPython needs for `ssl`, `ctypes`, `sqlite3` and `zlib`, found before the
/// long steps start.
fn preflight(sh: &Shell) -> Result<()> {
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
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in ["cc", "make", "cargo", "git", "curl", "tar", "pkg-config"] {
        if !std::env::split_paths(&path).any(|d| d.join(tool).is_file()) {
            bail!("`{tool}` is not on PATH; build-all needs it");
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

/// The C compiler's first `--version` line: part of the CPython steps' keys.
fn cc_version(sh: &Shell) -> Result<String> {
    let out = cmd!(sh, "cc --version").read()?;
    Ok(out.lines().next().unwrap_or("").trim().to_string())
}

fn tool_versions(sh: &Shell, env: &recipes::Env) -> Result<Vec<(String, String)>> {
    let first = |s: String| s.lines().next().unwrap_or("").trim().to_string();
    let constraints = std::fs::read_to_string(&env.constraints)
        .with_context(|| format!("reading `{}`", env.constraints.display()))?;
    let digest = {
        use sha2::Digest;
        stack::hex(&sha2::Sha256::digest(constraints.as_bytes()))[..16].to_string()
    };
    let mut tools = vec![
        ("rustc".into(), first(cmd!(sh, "rustc --version").read()?)),
        ("cc".into(), cc_version(sh)?),
        ("constraints".into(), digest),
    ];
    // The pinned Python tools, as the report's record of what ran the tests.
    for line in constraints
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some((name, version)) = line.split_once("==") {
            tools.push((name.to_string(), version.to_string()));
        }
    }
    Ok(tools)
}

fn tree_of(layout: &Layout, project: &str) -> Result<String> {
    let repo = git2::Repository::open(layout.checkout(project))?;
    Ok(repo.head()?.peel_to_tree()?.id().to_string())
}

type Targets = Vec<(String, Target)>;

/// The experiment's graph: what to build, from what, in which order.
fn experiment(
    layout: &Layout,
    env: &recipes::Env,
    projects: &[Project],
    tools: &[(String, String)],
) -> Result<(Graph, BTreeMap<String, Action>, Targets)> {
    let tool = |k: &str| {
        tools
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let input = |k: &str, v: String| (k.to_string(), v);
    let env = Arc::new(env.clone());
    let mut specs = Vec::new();
    let mut actions: BTreeMap<String, Action> = BTreeMap::new();
    let (setuptools_tree, cffi_tree) = (tree_of(layout, "setuptools")?, tree_of(layout, "cffi")?);
    for (spec, ft) in cpython_specs(&tree_of(layout, "cpython")?, &tool("cc")) {
        let e = env.clone();
        actions.insert(
            spec.name.clone(),
            Box::new(move |ctx| recipes::cpython(&e, ctx, ft)),
        );
        specs.push(spec);
    }
    specs.push(StepSpec {
        exclusive: false,
        name: "maturin".into(),
        deps: vec![],
        inputs: vec![
            input("tree", tree_of(layout, "maturin")?),
            input("rustc", tool("rustc")),
        ],
    });
    let e = env.clone();
    actions.insert(
        "maturin".into(),
        Box::new(move |ctx| recipes::maturin(&e, ctx)),
    );
    for (interp, _) in INTERPRETERS {
        let name = format!("env/{interp}");
        let cpython = format!("cpython/{interp}");
        specs.push(StepSpec {
            exclusive: false,
            name: name.clone(),
            deps: vec![cpython.clone(), "maturin".into()],
            inputs: vec![
                input("constraints", tool("constraints")),
                input("setuptools", setuptools_tree.clone()),
                input("cffi", cffi_tree.clone()),
            ],
        });
        let e = env.clone();
        actions.insert(
            name,
            Box::new(move |ctx| recipes::environment(&e, ctx, &cpython)),
        );
    }
    let mut targets = Vec::new();
    for p in projects {
        let Some(target) = p.stack.build.as_ref().and_then(|b| b.target.clone()) else {
            continue;
        };
        let spec_text = serde_json::to_string(&target)?;
        let tree = tree_of(layout, &p.name)?;
        let wheel_step = format!("{}/wheel", p.name);
        // The wheel depends on the source and the recipe, not on how it is tested.
        let mut inputs = vec![
            input("tree", tree.clone()),
            input("kind", format!("{:?}", target.kind)),
            input("rustc", tool("rustc")),
        ];
        if target.kind == RecipeKind::Maturin {
            inputs.push(input("pyo3", tree_of(layout, "pyo3")?));
        }
        specs.push(StepSpec {
            exclusive: false,
            name: wheel_step.clone(),
            deps: vec!["env/freethreaded".into()],
            inputs,
        });
        let (e, project, kind) = (env.clone(), p.name.clone(), target.kind);
        actions.insert(
            wheel_step.clone(),
            Box::new(move |ctx| match kind {
                RecipeKind::Maturin => {
                    recipes::maturin_wheel(&e, ctx, &project, "env/freethreaded", PYTHON_TAG)
                }
                RecipeKind::Setuptools => {
                    recipes::setuptools_wheel(&e, ctx, &project, "env/freethreaded", PYTHON_TAG)
                }
            }),
        );
        for (interp, ft) in INTERPRETERS {
            for installer in INSTALLERS {
                let name = format!("{}/test/{interp}/{installer}", p.name);
                let (cpython, env_step) = (format!("cpython/{interp}"), format!("env/{interp}"));
                specs.push(StepSpec {
                    // pytest -n <jobs> uses every core; two at once starve the targets'
                    // threading tests (brotlicffi's concurrency test fails when oversubscribed).
                    exclusive: true,
                    name: name.clone(),
                    deps: vec![wheel_step.clone(), cpython.clone(), env_step.clone()],
                    inputs: vec![
                        input("tree", tree.clone()),
                        input("target", spec_text.clone()),
                        input("constraints", tool("constraints")),
                    ],
                });
                let (e, project, t, w) = (
                    env.clone(),
                    p.name.clone(),
                    target.clone(),
                    wheel_step.clone(),
                );
                actions.insert(
                    name,
                    Box::new(move |ctx| {
                        recipes::test(
                            &e, ctx, &project, &t, &cpython, &env_step, &w, installer, ft,
                        )
                    }),
                );
            }
        }
        targets.push((p.name.clone(), target));
    }
    add_recipe_revisions(&mut specs);
    Ok((Graph::new(specs)?, actions, targets))
}

/// The two CPython steps (and whether each is free-threaded): their keys depend only on the
/// CPython tree and the C compiler.
fn cpython_specs(tree: &str, cc: &str) -> Vec<(StepSpec, bool)> {
    INTERPRETERS
        .iter()
        .map(|&(interp, ft)| {
            let spec = StepSpec {
                exclusive: false,
                name: format!("cpython/{interp}"),
                deps: vec![],
                inputs: vec![
                    ("tree".into(), tree.to_string()),
                    ("disable-gil".into(), ft.to_string()),
                    ("cc".into(), cc.to_string()),
                ],
            };
            (spec, ft)
        })
        .collect()
}

fn add_recipe_revisions(specs: &mut [StepSpec]) {
    for s in specs {
        let kind = s
            .name
            .split('/')
            .find(|part| RECIPE_REVISIONS.iter().any(|(k, _)| k == part))
            .unwrap_or("");
        if let Some((_, rev)) = RECIPE_REVISIONS
            .iter()
            .find(|(k, rev)| *k == kind && *rev > 0)
        {
            s.inputs.push(("recipe".into(), rev.to_string()));
        }
    }
}

fn make_report(
    graph: &Graph,
    summary: &run::Summary,
    projects: &[Project],
    targets: &Targets,
    tools: &[(String, String)],
) -> Result<report::Report> {
    let mut matrix = Vec::new();
    for (project, _) in targets {
        let wheel = summary
            .get(&format!("{project}/wheel"))
            .filter(|r| matches!(r.status, Status::Built | Status::Cached))
            .and_then(|r| recipes::wheel_in(&r.out).ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .and_then(|f| wheel::parse_name(&f).ok())
            .map(|n| format!("{}-{}-{}", n.python, n.abi, n.platform));
        for (interp, _) in INTERPRETERS {
            for installer in INSTALLERS {
                let r = summary.get(&format!("{project}/test/{interp}/{installer}"));
                let outcome = match r.map(|r| &r.status) {
                    Some(Status::Built | Status::Cached) => "passed",
                    Some(Status::Failed) => "failed",
                    _ => "not-run",
                };
                let counts = r
                    .and_then(|r| {
                        let dir = if r.out.as_os_str().is_empty() {
                            None
                        } else {
                            Some(r.out.join("result.json"))
                        };
                        dir.and_then(|p| fs_err::read_to_string(p).ok())
                    })
                    .and_then(|t| serde_json::from_str(&t).ok());
                matrix.push(report::Row {
                    target: project.clone(),
                    interpreter: interp.into(),
                    installer: installer.into(),
                    outcome: outcome.into(),
                    counts,
                    wheel: wheel.clone(),
                });
            }
        }
    }
    let mut stacks = Vec::new();
    for p in projects {
        stacks.push(report::StackInfo {
            project: p.name.clone(),
            base: match &p.stack.base {
                crate::manifest::Base::Commit(id) => id.clone(),
                crate::manifest::Base::Sdist { version, sha256 } => {
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
        tools: tools.to_vec(),
        matrix,
        steps: summary
            .results
            .iter()
            .map(|r| report::StepTime {
                step: r.name.clone(),
                status: r.status.clone(),
                seconds: r.seconds,
                key: graph.key(&r.name).to_string(),
            })
            .collect(),
        wall_seconds: summary.wall.as_secs_f64(),
        step_seconds: summary.step_seconds(),
    })
}
