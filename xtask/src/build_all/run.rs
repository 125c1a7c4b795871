//! Running a build graph: cache entries by key, parallel steps up to `--jobs`, per-step logs,
//! `--keep-going`, and the record of what ran and how long it took.
//!
//! A step's output lives in `cache/<step>/<key>/` and counts only once `.xtask-ok` is written
//! there, last and atomically; an entry without it is removed before the step runs again, so
//! a failed or interrupted step never counts as success.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::graph::{Graph, Selection};
use super::progress::Progress;
use crate::fsx;

/// What a step does, given where to put its output and where its dependencies' outputs are.
pub type Action = Box<dyn Fn(&Ctx) -> Result<()> + Send + Sync>;

/// What a running step can see.
pub struct Ctx {
    pub name: String,
    /// The step's output folder (its final path: outputs may embed it).
    pub out: PathBuf,
    /// Output folders of the steps it depends on.
    pub deps: BTreeMap<String, PathBuf>,
    pub log: PathBuf,
    pub jobs: usize,
}

impl Ctx {
    pub fn dep(&self, name: &str) -> &Path {
        self.deps
            .get(name)
            .unwrap_or_else(|| panic!("step `{}` did not declare `{name}`", self.name))
    }

    /// Appends a line to the step's log.
    pub fn note(&self, text: &str) -> Result<()> {
        use std::io::Write;
        let mut f = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        writeln!(f, "{text}")?;
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
    /// Not run because a step it needs failed.
    Blocked,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepResult {
    pub name: String,
    pub key: String,
    pub status: Status,
    pub seconds: f64,
    #[serde(skip)]
    pub out: PathBuf,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub results: Vec<StepResult>,
    pub wall: Duration,
}

impl Summary {
    pub fn failed(&self) -> Vec<&StepResult> {
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
    pub fn get(&self, name: &str) -> Option<&StepResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

/// `cache/<step>/<key>`; the step name's `/` become folders.
pub fn entry_dir(cache: &Path, step: &str, key: &str) -> PathBuf {
    cache.join(step).join(key)
}

pub fn log_path(logs: &Path, step: &str) -> PathBuf {
    logs.join(format!("{}.log", step.replace('/', "-")))
}

/// Whether a cache entry holds a finished step with this key.
pub fn is_done(dir: &Path, key: &str) -> bool {
    fs_err::read_to_string(dir.join(".xtask-ok")).is_ok_and(|k| k.trim() == key)
}

/// Runs the selected steps. Failures are results, not errors; errors are about the runner.
pub fn execute(
    graph: &Graph,
    actions: &BTreeMap<String, Action>,
    selection: &Selection,
    opts: &Options,
    progress: &mut Progress,
) -> Result<Summary> {
    std::fs::create_dir_all(&opts.logs)
        .with_context(|| format!("creating `{}`", opts.logs.display()))?;
    let start = Instant::now();
    let mut results: BTreeMap<String, StepResult> = BTreeMap::new();
    let mut running: BTreeSet<String> = BTreeSet::new();
    let (tx, rx) = mpsc::channel::<(String, Result<()>, f64)>();
    let wanted: Vec<&super::graph::StepSpec> = graph
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
                    let dep_state: Vec<Option<&Status>> = s
                        .deps
                        .iter()
                        .map(|d| results.get(d).map(|r| &r.status))
                        .collect();
                    if dep_state
                        .iter()
                        .any(|st| matches!(st, Some(Status::Failed | Status::Blocked)))
                    {
                        results.insert(s.name.clone(), blocked(graph, s));
                        progress.finished(&s.name, "blocked", None);
                        progressed = true;
                        continue;
                    }
                    if !dep_state
                        .iter()
                        .all(|st| matches!(st, Some(Status::Cached | Status::Built)))
                    {
                        continue;
                    }
                    let key = graph.key(&s.name).to_string();
                    let out = entry_dir(&opts.cache, &s.name, &key);
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
                        progress.finished(&s.name, "cached", None);
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
                        deps: s
                            .deps
                            .iter()
                            .map(|d| (d.clone(), results[d].out.clone()))
                            .collect(),
                        log: log_path(&opts.logs, &s.name),
                        jobs: opts.jobs,
                    };
                    // A leftover without the marker is a failed or interrupted attempt.
                    let _ = fs_err::remove_dir_all(&out);
                    std::fs::create_dir_all(&out)
                        .with_context(|| format!("creating `{}`", out.display()))?;
                    fsx::write_atomic(&ctx.log, format!("# {} (key {key})\n", s.name).as_bytes())?;
                    running.insert(s.name.clone());
                    progress.started(&s.name);
                    let tx = tx.clone();
                    scope.spawn(move || {
                        let t = Instant::now();
                        let r = action(&ctx).and_then(|()| {
                            fsx::write_atomic(&ctx.out.join(".xtask-ok"), key.as_bytes())
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
                    let key = graph.key(&name).to_string();
                    let out = entry_dir(&opts.cache, &name, &key);
                    let (status, error) = match r {
                        Ok(()) => (Status::Built, None),
                        Err(e) => (Status::Failed, Some(format!("{e:#}"))),
                    };
                    progress.finished(
                        &name,
                        if status == Status::Built {
                            "done"
                        } else {
                            "FAILED"
                        },
                        Some(seconds),
                    );
                    if status == Status::Failed && !opts.keep_going {
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
    let order: Vec<StepResult> = graph
        .steps
        .iter()
        .filter_map(|s| results.remove(&s.name))
        .collect();
    Ok(Summary {
        results: order,
        wall: start.elapsed(),
    })
}

fn blocked(graph: &Graph, s: &super::graph::StepSpec) -> StepResult {
    StepResult {
        name: s.name.clone(),
        key: graph.key(&s.name).to_string(),
        status: Status::Blocked,
        seconds: 0.0,
        out: PathBuf::new(),
        error: None,
    }
}

/// The last `n` lines of a log, for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs_err::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::super::graph::StepSpec;
    use super::super::progress::Mode;
    use super::*;

    struct World {
        dir: PathBuf,
        runs: Arc<Mutex<Vec<String>>>,
    }

    impl World {
        fn new(name: &str) -> World {
            let dir = std::env::temp_dir().join(format!("xtask-run-{name}-{}", std::process::id()));
            let _ = fs_err::remove_dir_all(&dir);
            World {
                dir,
                runs: Arc::new(Mutex::new(Vec::new())),
            }
        }
        fn opts(&self, jobs: usize, keep_going: bool) -> Options {
            Options {
                jobs,
                keep_going,
                cache: self.dir.join("cache"),
                logs: self.dir.join("logs"),
            }
        }
        /// Steps that append their name to `runs`, write `out.txt` from their deps, and fail
        /// when their name is in `failing`.
        fn actions(&self, graph: &Graph, failing: &[&str]) -> BTreeMap<String, Action> {
            graph
                .steps
                .iter()
                .map(|s| {
                    let runs = self.runs.clone();
                    let fail = failing.contains(&s.name.as_str());
                    let action: Action = Box::new(move |ctx: &Ctx| {
                        runs.lock().unwrap().push(ctx.name.clone());
                        let mut text = ctx.name.clone();
                        for (d, p) in &ctx.deps {
                            text.push_str(&format!(
                                " <{d}:{}>",
                                fs_err::read_to_string(p.join("out.txt"))?
                            ));
                        }
                        fs_err::write(ctx.out.join("out.txt"), &text)?;
                        ctx.note("some log line")?;
                        if fail {
                            bail!("step {} broke", ctx.name);
                        }
                        Ok(())
                    });
                    (s.name.clone(), action)
                })
                .collect()
        }
        fn run(
            &self,
            graph: &Graph,
            sel: &Selection,
            failing: &[&str],
            jobs: usize,
            keep_going: bool,
        ) -> Summary {
            self.runs.lock().unwrap().clear();
            let mut p = Progress::new(Mode::Quiet);
            execute(
                graph,
                &self.actions(graph, failing),
                sel,
                &self.opts(jobs, keep_going),
                &mut p,
            )
            .unwrap()
        }
        fn ran(&self) -> Vec<String> {
            let mut r = self.runs.lock().unwrap().clone();
            r.sort();
            r
        }
    }

    impl Drop for World {
        fn drop(&mut self) {
            let _ = fs_err::remove_dir_all(&self.dir);
        }
    }

    fn spec(name: &str, deps: &[&str], input: &str) -> StepSpec {
        StepSpec {
            exclusive: false,
            name: name.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            inputs: vec![("in".into(), input.into())],
        }
    }

    fn graph(setuptools: &str) -> Graph {
        Graph::new(vec![
            spec("cpython/default", &[], "c"),
            spec("cpython/ft", &[], "c"),
            spec("maturin", &[], "m"),
            spec("toolchain/ft", &["cpython/ft"], setuptools),
            spec("wheel", &["toolchain/ft", "maturin"], "w"),
            spec("test/default", &["wheel", "cpython/default"], "t"),
            spec("test/ft", &["wheel", "cpython/ft"], "t"),
        ])
        .unwrap()
    }

    fn all(g: &Graph) -> Selection {
        g.select(&[], None).unwrap()
    }

    #[test]
    fn runs_everything_once_then_nothing() {
        let w = World::new("once");
        let g = graph("s1");
        let s = w.run(&g, &all(&g), &[], 2, false);
        assert_eq!(w.ran().len(), 7);
        assert!(s.results.iter().all(|r| r.status == Status::Built));
        let out = fs_err::read_to_string(s.get("test/ft").unwrap().out.join("out.txt")).unwrap();
        assert!(
            out.starts_with("test/ft <cpython/ft:cpython/ft> <wheel:wheel <maturin:maturin>"),
            "{out}"
        );
        let again = w.run(&g, &all(&g), &[], 2, false);
        assert!(w.ran().is_empty());
        assert!(again.results.iter().all(|r| r.status == Status::Cached));
    }

    #[test]
    fn a_changed_input_reruns_that_step_and_its_dependents_only() {
        let w = World::new("invalidate");
        w.run(&graph("s1"), &all(&graph("s1")), &[], 2, false);
        let g2 = graph("s2");
        w.run(&g2, &all(&g2), &[], 2, false);
        assert_eq!(
            w.ran(),
            ["test/default", "test/ft", "toolchain/ft", "wheel"]
        );
    }

    #[test]
    fn a_failed_step_leaves_no_entry_and_blocks_its_dependents() {
        let w = World::new("fail");
        let g = graph("s1");
        let s = w.run(&g, &all(&g), &["toolchain/ft"], 1, false);
        let tc = s.get("toolchain/ft").unwrap();
        assert_eq!(tc.status, Status::Failed);
        assert!(
            tc.error
                .as_deref()
                .unwrap()
                .contains("step toolchain/ft broke")
        );
        assert!(
            !entry_dir(&w.dir.join("cache"), "toolchain/ft", &tc.key)
                .join(".xtask-ok")
                .exists()
        );
        assert_eq!(s.get("wheel").unwrap().status, Status::Blocked);
        assert!(tail(&log_path(&w.dir.join("logs"), "toolchain/ft"), 40).contains("some log line"));
        // Fixed, the rerun does the failed step and what it blocked, and nothing else.
        w.run(&g, &all(&g), &[], 1, false);
        let mut ran = w.ran();
        ran.retain(|r| !r.starts_with("cpython") && r != "maturin");
        assert_eq!(ran, ["test/default", "test/ft", "toolchain/ft", "wheel"]);
    }

    #[test]
    fn keep_going_runs_what_does_not_depend_on_the_failure() {
        let w = World::new("keep-going");
        let g = graph("s1");
        // Without --keep-going, one job, the run stops at the failure: maturin never starts.
        let s = w.run(&g, &all(&g), &["cpython/ft"], 1, false);
        assert_eq!(s.get("maturin").unwrap().status, Status::Blocked);
        let s = w.run(&g, &all(&g), &["cpython/ft"], 1, true);
        assert_eq!(s.get("maturin").unwrap().status, Status::Built);
        assert_eq!(s.get("test/default").unwrap().status, Status::Blocked);
        assert_eq!(s.get("cpython/default").unwrap().status, Status::Cached);
    }

    #[test]
    fn an_interrupted_entry_without_the_marker_is_redone() {
        let w = World::new("interrupted");
        let g = graph("s1");
        w.run(&g, &all(&g), &[], 2, false);
        // As if killed while writing the wheel: output there, marker not yet.
        let dir = entry_dir(&w.dir.join("cache"), "wheel", g.key("wheel"));
        fs_err::remove_file(dir.join(".xtask-ok")).unwrap();
        fs_err::write(dir.join("half.txt"), "half").unwrap();
        w.run(&g, &all(&g), &[], 2, false);
        // Same key, so what depends on it stays cached.
        assert_eq!(w.ran(), ["wheel"]);
        assert!(!dir.join("half.txt").exists());
        assert!(dir.join(".xtask-ok").exists());
    }

    #[test]
    fn only_and_from() {
        let w = World::new("only-from");
        let g = graph("s1");
        w.run(
            &g,
            &g.select(&["toolchain".into()], None).unwrap(),
            &[],
            2,
            false,
        );
        assert_eq!(w.ran(), ["cpython/ft", "toolchain/ft"]);
        w.run(&g, &all(&g), &[], 2, false);
        w.run(&g, &g.select(&[], Some("wheel")).unwrap(), &[], 2, false);
        assert_eq!(w.ran(), ["test/default", "test/ft", "wheel"]);
    }

    #[test]
    fn independent_steps_run_in_parallel_up_to_jobs() {
        let w = World::new("parallel");
        let g = Graph::new(vec![
            spec("a", &[], ""),
            spec("b", &[], ""),
            spec("c", &[], ""),
        ])
        .unwrap();
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate_rx));
        let actions: BTreeMap<String, Action> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                let (now, peak, gate) = (now.clone(), peak.clone(), gate.clone());
                let action: Action = Box::new(move |_ctx: &Ctx| {
                    let cur = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(cur, Ordering::SeqCst);
                    // Wait until the test lets one step finish.
                    gate.lock().unwrap().recv().unwrap();
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                });
                (n.to_string(), action)
            })
            .collect();
        let opener = std::thread::spawn(move || {
            for want in [2, 2, 1] {
                // Release one step only once `want` are running at the same time.
                while now_running(&now) < want {
                    std::thread::yield_now();
                }
                gate_tx.send(()).unwrap();
            }
        });
        fn now_running(n: &AtomicUsize) -> usize {
            n.load(Ordering::SeqCst)
        }
        let mut p = Progress::new(Mode::Quiet);
        let s = execute(&g, &actions, &all(&g), &w.opts(2, false), &mut p).unwrap();
        opener.join().unwrap();
        assert!(s.results.iter().all(|r| r.status == Status::Built));
        assert_eq!(peak.load(Ordering::SeqCst), 2, "two at once, never three");
    }

    #[test]
    fn an_exclusive_step_runs_alone() {
        let w = World::new("exclusive");
        let mut specs = vec![spec("a", &[], ""), spec("t", &[], ""), spec("b", &[], "")];
        specs[1].exclusive = true;
        let g = Graph::new(specs).unwrap();
        let now = Arc::new(AtomicUsize::new(0));
        let alone = Arc::new(Mutex::new(Vec::new()));
        let actions: BTreeMap<String, Action> = ["a", "t", "b"]
            .iter()
            .map(|n| {
                let (now, alone) = (now.clone(), alone.clone());
                let action: Action = Box::new(move |ctx: &Ctx| {
                    let cur = now.fetch_add(1, Ordering::SeqCst) + 1;
                    std::thread::sleep(Duration::from_millis(50));
                    // Sampled mid-run: how many steps run alongside this one.
                    let seen = now.load(Ordering::SeqCst).max(cur);
                    alone.lock().unwrap().push((ctx.name.clone(), seen));
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                });
                (n.to_string(), action)
            })
            .collect();
        let mut p = Progress::new(Mode::Quiet);
        let s = execute(&g, &actions, &all(&g), &w.opts(2, false), &mut p).unwrap();
        assert!(s.results.iter().all(|r| r.status == Status::Built));
        let alone = alone.lock().unwrap().clone();
        let t = alone.iter().find(|(n, _)| n == "t").unwrap();
        assert_eq!(t.1, 1, "the exclusive step ran with others: {alone:?}");
        // Without it the other two still share the cores.
        assert!(
            alone.iter().any(|(n, seen)| n != "t" && *seen == 2),
            "{alone:?}"
        );
    }
}
