//! Running a build graph: cache entries by key, parallel steps up to `--jobs`, per-step logs,
//! `--keep-going`, leaves, and the record of what ran and how long it took.
//!
//! A step's output lives in `cache/<step>/<key>/` and counts only once `.xtask-ok` is written
//! there, last and atomically; an entry without it is removed before the step runs again, so
//! a failed or interrupted step never counts as success. A step that panics has failed like
//! one that returned an error: the runner always hears back from every thread it starts.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::graph::{Graph, Id, Selection, StepSpec};
use super::progress::Progress;
use crate::fsx;
pub use crate::ops::interpreters::{DONE_MARKER, entry_dir, is_done};

/// What a step does, given where to put its output and where its dependencies' outputs are.
pub type Action<I> = Box<dyn Fn(&Ctx<I>) -> Result<()> + Send + Sync>;

/// What a running step can see.
pub struct Ctx<I> {
    pub name: I,
    /// The step's output folder (its final path: outputs may embed it).
    pub out: PathBuf,
    /// Output folders of the steps it depends on.
    pub deps: BTreeMap<I, PathBuf>,
    pub log: PathBuf,
    pub jobs: usize,
}

impl<I: Id> Ctx<I> {
    /// The output folder of a step this one declared it needs.
    pub fn dep(&self, name: &I) -> Result<&Path> {
        self.deps
            .get(name)
            .map(PathBuf::as_path)
            .with_context(|| format!("step `{}` did not declare `{name}`", self.name))
    }

    /// Appends a line to the step's log.
    pub fn note(&self, text: &str) -> Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening `{}`", self.log.display()))?;
        writeln!(f, "{text}").with_context(|| format!("writing `{}`", self.log.display()))?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub jobs: usize,
    pub keep_going: bool,
    pub cache: PathBuf,
    pub logs: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Cached,
    Built,
    Failed,
    /// Not run because a step it needs failed, or the run stopped before it.
    Blocked,
}

#[derive(Debug, Clone)]
pub struct StepResult<I> {
    pub name: I,
    pub key: String,
    pub status: Status,
    pub seconds: f64,
    pub out: PathBuf,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Summary<I> {
    pub results: Vec<StepResult<I>>,
    pub wall: Duration,
}

impl<I: Id> Summary<I> {
    pub fn failed(&self) -> Vec<&StepResult<I>> {
        self.results
            .iter()
            .filter(|r| r.status == Status::Failed)
            .collect()
    }
    pub fn step_seconds(&self) -> f64 {
        self.results
            .iter()
            .filter(|r| r.status == Status::Built)
            .map(|r| r.seconds)
            .sum()
    }
    pub fn get(&self, name: &I) -> Option<&StepResult<I>> {
        self.results.iter().find(|r| &r.name == name)
    }
}

/// `logs/<step>.log`, the step's `/` as `-`.
pub fn log_path(logs: &Path, step: &impl Id) -> PathBuf {
    logs.join(format!("{}.log", step.to_string().replace('/', "-")))
}

/// A panic's message, as the step's error.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("the step panicked: {text}")
}

/// Runs the selected steps. Failures are results, not errors; errors are about the runner.
///
/// Without `keep_going` a failed step stops the run (nothing new starts), unless it is a
/// leaf: nothing depends on a leaf, so every other step still runs.
pub fn execute<I: Id>(
    graph: &Graph<I>,
    actions: &BTreeMap<I, Action<I>>,
    selection: &Selection<I>,
    opts: &Options,
    progress: &mut Progress,
) -> Result<Summary<I>> {
    std::fs::create_dir_all(&opts.logs)
        .with_context(|| format!("creating `{}`", opts.logs.display()))?;
    let start = Instant::now();
    let mut results: BTreeMap<I, StepResult<I>> = BTreeMap::new();
    let mut running: BTreeSet<I> = BTreeSet::new();
    let (tx, rx) = mpsc::channel::<(I, Result<()>, f64)>();
    let wanted: Vec<&StepSpec<I>> = graph
        .steps
        .iter()
        .filter(|s| selection.wanted.contains(&s.name))
        .collect();
    let mut stop = false;
    std::thread::scope(|scope| -> Result<()> {
        loop {
            // Start whatever is ready, cached steps first and without a thread.
            let mut progressed = true;
            while progressed && !stop {
                progressed = false;
                for s in &wanted {
                    if results.contains_key(&s.name) || running.contains(&s.name) {
                        continue;
                    }
                    let dep_state: Vec<Option<&StepResult<I>>> =
                        s.deps.iter().map(|d| results.get(d)).collect();
                    if dep_state.iter().any(|r| {
                        r.is_some_and(|r| matches!(r.status, Status::Failed | Status::Blocked))
                    }) {
                        results.insert(s.name.clone(), blocked(graph, s));
                        progress.finished(&s.name.to_string(), "blocked", None);
                        progressed = true;
                        continue;
                    }
                    let Some(dep_outs) = dep_state
                        .iter()
                        .zip(&s.deps)
                        .map(|(r, d)| {
                            r.filter(|r| matches!(r.status, Status::Cached | Status::Built))
                                .map(|r| (d.clone(), r.out.clone()))
                        })
                        .collect::<Option<BTreeMap<I, PathBuf>>>()
                    else {
                        continue;
                    };
                    let key = graph.key(&s.name)?.to_string();
                    let out = entry_dir(&opts.cache, &s.name.to_string(), &key);
                    if is_done(&out, &key) && !selection.forced.contains(&s.name) {
                        results.insert(
                            s.name.clone(),
                            StepResult {
                                name: s.name.clone(),
                                key,
                                status: Status::Cached,
                                seconds: 0.0,
                                out,
                                error: None,
                            },
                        );
                        progress.finished(&s.name.to_string(), "cached", None);
                        progressed = true;
                        continue;
                    }
                    if running.len() >= opts.jobs
                        || (s.exclusive && !running.is_empty())
                        || running
                            .iter()
                            .any(|r| graph.spec(r).is_some_and(|r| r.exclusive))
                    {
                        continue;
                    }
                    let action = actions
                        .get(&s.name)
                        .with_context(|| format!("no action for build step `{}`", s.name))?;
                    let ctx = Ctx {
                        name: s.name.clone(),
                        out: out.clone(),
                        deps: dep_outs,
                        log: log_path(&opts.logs, &s.name),
                        jobs: opts.jobs,
                    };
                    // A leftover without the marker is a failed or interrupted attempt.
                    let _ = std::fs::remove_dir_all(&out);
                    std::fs::create_dir_all(&out)
                        .with_context(|| format!("creating `{}`", out.display()))?;
                    fsx::write_atomic(&ctx.log, format!("# {} (key {key})\n", s.name).as_bytes())?;
                    running.insert(s.name.clone());
                    progress.started(&s.name.to_string());
                    let tx = tx.clone();
                    scope.spawn(move || {
                        let t = Instant::now();
                        // A panic is this step's failure; the thread still reports, so the
                        // runner never waits for a step that is gone.
                        let r = catch_unwind(AssertUnwindSafe(|| action(&ctx)))
                            .unwrap_or_else(|payload| Err(anyhow!(panic_message(&*payload))))
                            .and_then(|()| {
                                fsx::write_atomic(&ctx.out.join(DONE_MARKER), key.as_bytes())
                            });
                        let _ = tx.send((ctx.name, r, t.elapsed().as_secs_f64()));
                    });
                    progressed = true;
                }
            }
            if running.is_empty() {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok((name, r, seconds)) => {
                    running.remove(&name);
                    let key = graph.key(&name)?.to_string();
                    let out = entry_dir(&opts.cache, &name.to_string(), &key);
                    let (status, error) = match r {
                        Ok(()) => (Status::Built, None),
                        Err(e) => (Status::Failed, Some(format!("{e:#}"))),
                    };
                    progress.finished(
                        &name.to_string(),
                        if status == Status::Built {
                            "done"
                        } else {
                            "FAILED"
                        },
                        Some(seconds),
                    );
                    let leaf = graph.spec(&name).is_some_and(|s| s.leaf);
                    if status == Status::Failed && !opts.keep_going && !leaf {
                        stop = true;
                    }
                    results.insert(
                        name.clone(),
                        StepResult {
                            name,
                            key,
                            status,
                            seconds,
                            out,
                            error,
                        },
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => progress.tick(),
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("a build step thread vanished"),
            }
        }
        Ok(())
    })?;
    progress.clear();
    // Steps never started because the run stopped early count as blocked.
    for s in &wanted {
        results
            .entry(s.name.clone())
            .or_insert_with(|| blocked(graph, s));
    }
    let order: Vec<StepResult<I>> = graph
        .steps
        .iter()
        .filter_map(|s| results.remove(&s.name))
        .collect();
    Ok(Summary {
        results: order,
        wall: start.elapsed(),
    })
}

fn blocked<I: Id>(graph: &Graph<I>, s: &StepSpec<I>) -> StepResult<I> {
    StepResult {
        name: s.name.clone(),
        key: graph.key(&s.name).unwrap_or_default().to_string(),
        status: Status::Blocked,
        seconds: 0.0,
        out: PathBuf::new(),
        error: None,
    }
}

/// The last `n` lines of a log, for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .get(lines.len().saturating_sub(n)..)
        .unwrap_or_default()
        .join("\n")
}
