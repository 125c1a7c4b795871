//! Running a build graph: cache entries by key, parallel steps sharing a core budget
//! (`--jobs`), per-step logs, `--keep-going`, leaves, and the record of what ran, on how many
//! cores and for how long.
//!
//! A step's output lives in `cache/<step>/<key>/` and counts only once `.xtask-ok` is written
//! there, last and atomically; an entry without it is removed before the step runs again, so
//! a failed or interrupted step never counts as success. A step that panics has failed like
//! one that returned an error: the runner always hears back from every thread it starts.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::classify::Failure;
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
    /// The cores the step was granted from the run's budget: what it passes to `make -j`,
    /// cargo and `pytest -n`.
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
    /// The core budget: the grants of the running steps never add up to more.
    pub jobs: usize,
    pub keep_going: bool,
    pub cache: PathBuf,
    pub logs: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The cores it was granted (its `Ctx::jobs`); 0 when it did not run.
    pub cores: usize,
    /// When it started, in seconds from the start of the run (0 when it did not run): with
    /// `seconds` and `cores`, the timeline that shows where cores sat idle.
    pub started: f64,
    pub out: PathBuf,
    pub error: Option<String>,
    /// Why it failed, when its recipe said (a [`Failure`] in its error).
    pub failure: Option<Failure>,
    /// Not run by this run (not selected): a result an earlier run left for the same key,
    /// cached or failed.
    pub earlier: bool,
}

/// What a failed step leaves in its entry (which has no done marker): its key and its error,
/// so a later run that does not select it can still report it.
pub const FAILED_RECORD: &str = ".xtask-failed";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct FailedRecord {
    key: String,
    error: String,
    failure: Option<Failure>,
}

#[derive(Debug, Clone)]
pub struct Summary<I> {
    pub results: Vec<StepResult<I>>,
    pub wall: Duration,
    /// The core budget the steps shared (`--jobs`).
    pub cores: usize,
}

impl<I: Id> Summary<I> {
    /// The steps that failed in this run (not the failures earlier runs left).
    pub fn failed(&self) -> Vec<&StepResult<I>> {
        self.results
            .iter()
            .filter(|r| r.status == Status::Failed && !r.earlier)
            .collect()
    }
    pub fn step_seconds(&self) -> f64 {
        self.results
            .iter()
            .filter(|r| r.status == Status::Built)
            .map(|r| r.seconds)
            .sum()
    }
    /// Each step's own time times the cores it was granted, summed over the steps that ran
    /// (built or failed). Divided by `cores`, it is the wall time of a run that never left a
    /// core of the budget ungranted.
    pub fn core_seconds(&self) -> f64 {
        self.results
            .iter()
            .filter(|r| matches!(r.status, Status::Built | Status::Failed))
            .map(|r| r.seconds * r.cores as f64)
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

/// A ready step as the core budget sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// The cores it can use, one to the budget (`Cores::within`).
    pub cores: usize,
    /// It takes the whole budget and nothing starts beside it.
    pub exclusive: bool,
}

/// Which of the ready steps (in graph order) start now, and with how many cores:
/// `(index in ready, grant)`. `busy` is the sum of the running steps' grants.
///
/// An exclusive step starts only when every core is free and no step before it starts; it
/// is granted all of them. Otherwise as many steps start as there are free cores, in order,
/// one core each, and the cores left over go round, in order, to those that can use more.
/// A grant is fixed for the step's life (`make -j` cannot grow), so running more steps on
/// fewer cores each is what keeps cores busy through the single-threaded parts of a build
/// (CPython's `configure`, `make install`, a link): four CPython builds on two cores run two
/// at a time with `-j1`, and the last step left alone is granted every core. What this
/// cannot avoid: a step granted one core while others ran keeps one, even once it is alone.
pub fn grants(budget: usize, busy: usize, ready: &[Want]) -> Vec<(usize, usize)> {
    let budget = budget.max(1);
    let free = budget.saturating_sub(busy);
    // (index, grant, want) of the steps that start.
    let mut chosen: Vec<(usize, usize, usize)> = Vec::new();
    for (i, w) in ready.iter().enumerate() {
        if chosen.len() == free {
            break;
        }
        if w.exclusive {
            if chosen.is_empty() && free == budget {
                return vec![(i, budget)];
            }
            continue;
        }
        chosen.push((i, 1, w.cores.max(1)));
    }
    let mut left = free - chosen.len();
    while left > 0 {
        let before = left;
        for c in chosen.iter_mut().filter(|c| c.1 < c.2) {
            if left > 0 {
                c.1 += 1;
                left -= 1;
            }
        }
        if left == before {
            break;
        }
    }
    chosen.into_iter().map(|(i, grant, _)| (i, grant)).collect()
}

/// For each step, how many of the others depend on it, directly or through others: the
/// order in which ready steps are offered cores (most first, then graph order).
pub fn dependents<I: Id>(steps: &[&StepSpec<I>]) -> BTreeMap<I, usize> {
    let mut out = BTreeMap::new();
    for s in steps {
        // Walk from `s` down the reverse edges; every step reached depends on it.
        let mut seen: std::collections::BTreeSet<&I> = std::collections::BTreeSet::new();
        let mut todo = vec![&s.name];
        while let Some(n) = todo.pop() {
            for t in steps.iter().filter(|t| t.deps.contains(n)) {
                if seen.insert(&t.name) {
                    todo.push(&t.name);
                }
            }
        }
        out.insert(s.name.clone(), seen.len());
    }
    out
}

/// A step whose dependencies are done and that is not cached: what starting it takes.
struct Ready<'a, I> {
    spec: &'a StepSpec<I>,
    key: String,
    out: PathBuf,
    deps: BTreeMap<I, PathBuf>,
}

/// Runs the selected steps. Failures are results, not errors; errors are about the runner.
///
/// `opts.jobs` is a core budget the steps share: each is granted cores by `grants` and sees
/// its grant as `Ctx::jobs`; the grants of the running steps never add up to more.
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
    let budget = opts.jobs.max(1);
    let mut results: BTreeMap<I, StepResult<I>> = BTreeMap::new();
    // The running steps and the cores each was granted.
    let mut running: BTreeMap<I, usize> = BTreeMap::new();
    let (tx, rx) = mpsc::channel::<(I, Result<()>, f64)>();
    let wanted: Vec<&StepSpec<I>> = graph
        .steps
        .iter()
        .filter(|s| selection.wanted.contains(&s.name))
        .collect();
    let weight = dependents(&wanted);
    let mut stop = false;
    std::thread::scope(|scope| -> Result<()> {
        loop {
            if !stop {
                // Settle what needs no thread (blocked and cached steps) until nothing
                // changes; what is left with its dependencies done is ready.
                let ready = loop {
                    let mut changed = false;
                    let mut ready: Vec<Ready<'_, I>> = Vec::new();
                    for s in &wanted {
                        if results.contains_key(&s.name) || running.contains_key(&s.name) {
                            continue;
                        }
                        let dep_state: Vec<Option<&StepResult<I>>> =
                            s.deps.iter().map(|d| results.get(d)).collect();
                        if dep_state.iter().any(|r| {
                            r.is_some_and(|r| matches!(r.status, Status::Failed | Status::Blocked))
                        }) {
                            results.insert(s.name.clone(), blocked(graph, s));
                            progress.finished(&s.name.to_string(), "blocked", None);
                            changed = true;
                            continue;
                        }
                        let Some(deps) = dep_state
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
                                    cores: 0,
                                    started: 0.0,
                                    out,
                                    error: None,
                                    failure: None,
                                    earlier: false,
                                },
                            );
                            progress.finished(&s.name.to_string(), "cached", None);
                            changed = true;
                            continue;
                        }
                        ready.push(Ready {
                            spec: s,
                            key,
                            out,
                            deps,
                        });
                    }
                    if !changed {
                        break ready;
                    }
                };
                // Most dependents first: a step many others wait for (maturin, which every
                // environment needs) must not start last on one core while the rest idles.
                let mut ready = ready;
                ready.sort_by_key(|r| {
                    std::cmp::Reverse(weight.get(&r.spec.name).copied().unwrap_or(0))
                });
                let wants: Vec<Want> = ready
                    .iter()
                    .map(|r| Want {
                        cores: r.spec.cores.within(budget),
                        exclusive: r.spec.exclusive,
                    })
                    .collect();
                let busy: usize = running.values().sum();
                let mut ready: Vec<Option<Ready<'_, I>>> = ready.into_iter().map(Some).collect();
                for (i, grant) in grants(budget, busy, &wants) {
                    let Some(Ready {
                        spec: s,
                        key,
                        out,
                        deps,
                    }) = ready.get_mut(i).and_then(Option::take)
                    else {
                        bail!("the core budget chose a step that is not ready");
                    };
                    let action = actions
                        .get(&s.name)
                        .with_context(|| format!("no action for build step `{}`", s.name))?;
                    let ctx = Ctx {
                        name: s.name.clone(),
                        out: out.clone(),
                        deps,
                        log: log_path(&opts.logs, &s.name),
                        jobs: grant,
                    };
                    // A leftover without the marker is a failed or interrupted attempt.
                    let _ = std::fs::remove_dir_all(&out);
                    std::fs::create_dir_all(&out)
                        .with_context(|| format!("creating `{}`", out.display()))?;
                    fsx::write_atomic(
                        &ctx.log,
                        format!("# {} (key {key}, {grant} core(s))\n", s.name).as_bytes(),
                    )?;
                    running.insert(s.name.clone(), grant);
                    progress.started(&s.name.to_string(), grant);
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
                }
            }
            if running.is_empty() {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok((name, r, seconds)) => {
                    let cores = running.remove(&name).unwrap_or(0);
                    let key = graph.key(&name)?.to_string();
                    let out = entry_dir(&opts.cache, &name.to_string(), &key);
                    let (status, error, failure) = match r {
                        Ok(()) => (Status::Built, None, None),
                        Err(e) => {
                            let record = FailedRecord {
                                key: key.clone(),
                                error: format!("{e:#}"),
                                failure: Failure::of(&e),
                            };
                            // Best effort: without it a later run reports the cell not-run.
                            let _ = fsx::write_atomic(
                                &out.join(FAILED_RECORD),
                                &serde_json::to_vec(&record)?,
                            );
                            (Status::Failed, Some(record.error), record.failure)
                        }
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
                    let contained = graph.spec(&name).is_some_and(|s| s.leaf || s.contained);
                    if status == Status::Failed && !opts.keep_going && !contained {
                        stop = true;
                    }
                    results.insert(
                        name.clone(),
                        StepResult {
                            name,
                            key,
                            status,
                            seconds,
                            cores,
                            started: (start.elapsed().as_secs_f64() - seconds).max(0.0),
                            out,
                            error,
                            failure,
                            earlier: false,
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
    // What earlier runs left for the steps not selected: the report is the state of the
    // whole matrix, not of this run's part.
    for s in graph
        .steps
        .iter()
        .filter(|s| !selection.wanted.contains(&s.name))
    {
        let key = graph.key(&s.name)?.to_string();
        let out = entry_dir(&opts.cache, &s.name.to_string(), &key);
        if let Some(r) = earlier_result(&s.name, &key, &out) {
            results.insert(s.name.clone(), r);
        }
    }
    let order: Vec<StepResult<I>> = graph
        .steps
        .iter()
        .filter_map(|s| results.remove(&s.name))
        .collect();
    Ok(Summary {
        results: order,
        wall: start.elapsed(),
        cores: budget,
    })
}

/// The result an earlier run left in a cache entry for this key: done, or failed with its
/// record; none when the entry is missing, unfinished or for another key.
pub fn earlier_result<I: Id>(name: &I, key: &str, out: &Path) -> Option<StepResult<I>> {
    let result = |status, error, failure| StepResult {
        name: name.clone(),
        key: key.to_string(),
        status,
        seconds: 0.0,
        cores: 0,
        started: 0.0,
        out: out.to_path_buf(),
        error,
        failure,
        earlier: true,
    };
    if is_done(out, key) {
        return Some(result(Status::Cached, None, None));
    }
    let record: FailedRecord =
        serde_json::from_slice(&std::fs::read(out.join(FAILED_RECORD)).ok()?).ok()?;
    (record.key == key).then(|| result(Status::Failed, Some(record.error), record.failure))
}

fn blocked<I: Id>(graph: &Graph<I>, s: &StepSpec<I>) -> StepResult<I> {
    StepResult {
        name: s.name.clone(),
        key: graph.key(&s.name).unwrap_or_default().to_string(),
        status: Status::Blocked,
        seconds: 0.0,
        cores: 0,
        started: 0.0,
        out: PathBuf::new(),
        error: None,
        failure: None,
        earlier: false,
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

#[cfg(test)]
mod tests {
    use super::super::graph::Cores;
    use super::*;

    /// `"all"` wants the budget, a number wants that many, `"x"` is exclusive.
    fn wants(budget: usize, ready: &[&str]) -> Vec<Want> {
        ready
            .iter()
            .map(|w| match *w {
                "x" => Want {
                    cores: budget,
                    exclusive: true,
                },
                "all" => Want {
                    cores: budget,
                    exclusive: false,
                },
                n => Want {
                    cores: n.parse::<usize>().unwrap().min(budget),
                    exclusive: false,
                },
            })
            .collect()
    }

    /// Budget, cores busy, the ready steps, the grants expected, and why.
    type Case = (
        usize,
        usize,
        &'static [&'static str],
        &'static [(usize, usize)],
        &'static str,
    );

    #[test]
    fn grants_share_the_budget() {
        #[rustfmt::skip]
        let table: &[Case] = &[
            (2, 0, &["all", "all", "all", "all", "all"], &[(0, 1), (1, 1)],
             "four CPython builds and maturin on two cores: two at a time, one core each"),
            (2, 1, &["all", "all", "all"], &[(0, 1)], "one core free: the next step gets it"),
            (2, 2, &["all", "1"], &[], "no core free: nothing starts"),
            (2, 0, &["all"], &[(0, 2)], "alone, a step that can use them gets every core"),
            (2, 0, &["1", "all"], &[(0, 1), (1, 1)], "a pip step and a build"),
            (2, 0, &["1"], &[(0, 1)], "a one-core step is never granted more"),
            (3, 0, &["all", "all"], &[(0, 2), (1, 1)], "cores left over go round in order"),
            (4, 0, &["1", "all"], &[(0, 1), (1, 3)], "the rest to the step that can use it"),
            (4, 0, &["2", "1"], &[(0, 2), (1, 1)], "wants are upper bounds: a core stays idle"),
            (1, 0, &["all", "all"], &[(0, 1)], "one core: one step at a time"),
            (2, 0, &["x", "all"], &[(0, 2)], "an exclusive step first takes everything"),
            (2, 0, &["all", "x", "all"], &[(0, 1), (2, 1)],
             "an exclusive step after one that starts waits; later steps do not"),
            (2, 1, &["x", "all"], &[(1, 1)], "an exclusive step waits for every core"),
            (2, 1, &["x"], &[], "and nothing starts in its place when nothing else is ready"),
        ];
        for (budget, busy, ready, want, why) in table {
            assert_eq!(
                grants(*budget, *busy, &wants(*budget, ready)),
                *want,
                "{why}: budget {budget}, busy {busy}, ready {ready:?}"
            );
        }
    }

    #[test]
    fn grants_never_exceed_the_free_cores() {
        let shapes: &[&[&str]] = &[&["all"; 6], &["1", "all", "2", "x", "all", "1", "3"]];
        for budget in 1..=5 {
            for busy in 0..=budget {
                for ready in shapes {
                    let g = grants(budget, busy, &wants(budget, ready));
                    let sum: usize = g.iter().map(|(_, n)| n).sum();
                    assert!(sum <= budget - busy, "{budget} {busy} {ready:?}: {g:?}");
                    assert!(g.iter().all(|(_, n)| *n >= 1), "{g:?}");
                }
            }
        }
    }

    #[test]
    fn core_seconds_count_what_ran_times_its_grant() {
        let r = |status, seconds, cores| StepResult {
            name: "s".to_string(),
            key: String::new(),
            status,
            seconds,
            cores,
            started: 0.0,
            out: PathBuf::new(),
            error: None,
            failure: None,
            earlier: false,
        };
        let s = Summary {
            results: vec![
                r(Status::Built, 3.0, 2),
                r(Status::Failed, 1.0, 1),
                r(Status::Cached, 0.0, 0),
            ],
            wall: Duration::from_secs(4),
            cores: 2,
        };
        assert_eq!(s.core_seconds(), 7.0);
        assert_eq!(s.step_seconds(), 3.0);
    }

    #[test]
    fn a_want_lies_within_the_budget() {
        assert_eq!(Cores::All.within(4), 4);
        assert_eq!(Cores::ONE.within(4), 1);
        assert_eq!(Cores::Upto(8).within(2), 2);
        assert_eq!(Cores::Upto(0).within(2), 1);
        assert_eq!(Cores::All.within(0), 1);
    }
}
