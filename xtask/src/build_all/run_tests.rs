//! Tests of the runner with fake steps: caching, invalidation, failures, panics, leaves,
//! `--keep-going`, `--only`/`--from`, parallelism, the core budget and exclusive steps.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use anyhow::bail;

use super::graph::{Cores, Graph, Selection, StepSpec};
use super::progress::{Mode, Progress};
use super::run::*;

type Action = super::run::Action<String>;
type Ctx = super::run::Ctx<String>;
type Summary = super::run::Summary<String>;
type TestGraph = Graph<String>;

mod cases {
    use super::*;

    struct World {
        dir: PathBuf,
        runs: Arc<Mutex<Vec<String>>>,
    }

    impl World {
        fn new(name: &str) -> World {
            let dir = std::env::temp_dir().join(format!("xtask-run-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
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
        fn actions(&self, graph: &TestGraph, failing: &[&str]) -> BTreeMap<String, Action> {
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
                                std::fs::read_to_string(p.join("out.txt"))?
                            ));
                        }
                        std::fs::write(ctx.out.join("out.txt"), &text)?;
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
            graph: &TestGraph,
            sel: &Selection<String>,
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
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn spec(name: &str, deps: &[&str], input: &str) -> StepSpec<String> {
        StepSpec {
            exclusive: false,
            cores: Cores::All,
            leaf: false,
            contained: false,
            name: name.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            inputs: vec![("in".into(), input.into())],
        }
    }

    fn graph(setuptools: &str) -> TestGraph {
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

    fn n(name: &str) -> String {
        name.to_string()
    }

    fn all(g: &TestGraph) -> Selection<String> {
        g.select(&[], None).unwrap()
    }

    #[test]
    fn runs_everything_once_then_nothing() {
        let w = World::new("once");
        let g = graph("s1");
        let s = w.run(&g, &all(&g), &[], 2, false);
        assert_eq!(w.ran().len(), 7);
        assert!(s.results.iter().all(|r| r.status == Status::Built));
        let out =
            std::fs::read_to_string(s.get(&n("test/ft")).unwrap().out.join("out.txt")).unwrap();
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
        let tc = s.get(&n("toolchain/ft")).unwrap();
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
        assert_eq!(s.get(&n("wheel")).unwrap().status, Status::Blocked);
        assert!(
            tail(&log_path(&w.dir.join("logs"), &"toolchain/ft"), 40).contains("some log line")
        );
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
        // Without --keep-going, one job, the run stops at the failure. cpython/ft goes
        // first (four steps wait on it), so maturin and cpython/default never start.
        let s = w.run(&g, &all(&g), &["cpython/ft"], 1, false);
        assert_eq!(s.get(&n("maturin")).unwrap().status, Status::Blocked);
        assert_eq!(
            s.get(&n("cpython/default")).unwrap().status,
            Status::Blocked
        );
        let s = w.run(&g, &all(&g), &["cpython/ft"], 1, true);
        assert_eq!(s.get(&n("maturin")).unwrap().status, Status::Built);
        assert_eq!(s.get(&n("test/default")).unwrap().status, Status::Blocked);
        assert_eq!(s.get(&n("cpython/default")).unwrap().status, Status::Built);
    }

    #[test]
    fn an_interrupted_entry_without_the_marker_is_redone() {
        let w = World::new("interrupted");
        let g = graph("s1");
        w.run(&g, &all(&g), &[], 2, false);
        // As if killed while writing the wheel: output there, marker not yet.
        let dir = entry_dir(&w.dir.join("cache"), "wheel", g.key(&n("wheel")).unwrap());
        std::fs::remove_file(dir.join(".xtask-ok")).unwrap();
        std::fs::write(dir.join("half.txt"), "half").unwrap();
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
    fn a_run_of_some_steps_reports_what_earlier_runs_left_for_the_others() {
        let w = World::new("earlier");
        let g = graph("s1");
        // test/ft fails (a leaf: the rest runs); everything else is cached.
        w.run(&g, &all(&g), &["test/ft"], 2, false);
        let only_default = g
            .select(&["test/default".into()], Some("test/default"))
            .unwrap();
        let s = w.run(&g, &only_default, &[], 2, false);
        assert_eq!(w.ran(), ["test/default"]);
        let ft = s
            .get(&n("test/ft"))
            .expect("an unselected step is still reported");
        assert_eq!((&ft.status, ft.earlier), (&Status::Failed, true));
        assert!(ft.error.as_deref().unwrap().contains("step test/ft broke"));
        let wheel = s.get(&n("wheel")).unwrap();
        assert_eq!((&wheel.status, wheel.earlier), (&Status::Cached, false));
        assert!(
            s.failed().is_empty(),
            "an earlier failure is not this run's"
        );
        // A changed key: the earlier results are for another key, so not reported.
        let g2 = graph("s2");
        let s = w.run(
            &g2,
            &g2.select(&["cpython/default".into()], None).unwrap(),
            &[],
            2,
            false,
        );
        assert!(s.get(&n("test/ft")).is_none());
        assert!(s.get(&n("maturin")).unwrap().earlier);
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
    fn steps_many_others_wait_for_are_offered_cores_first() {
        // The cold run's shape: four CPython builds and maturin ready at once, and every
        // environment needs maturin. In graph order maturin started last, on one core, and
        // ran alone for 25 minutes while the other core idled.
        let specs = vec![
            spec("c1", &[], ""),
            spec("c2", &[], ""),
            spec("m", &[], ""),
            spec("e1", &["c1", "m"], ""),
            spec("e2", &["c2", "m"], ""),
            spec("w", &["e1"], ""),
        ];
        let g = Graph::new(specs).unwrap();
        let wanted: Vec<&StepSpec<String>> = g.steps.iter().collect();
        let d = dependents(&wanted);
        let got: Vec<(&str, usize)> = ["c1", "c2", "m", "e1", "e2", "w"]
            .iter()
            .map(|n| (*n, d[&n.to_string()]))
            .collect();
        assert_eq!(
            got,
            [
                ("c1", 2),
                ("c2", 1),
                ("m", 3),
                ("e1", 1),
                ("e2", 0),
                ("w", 0)
            ]
        );
    }

    #[test]
    fn the_granted_cores_never_exceed_the_budget() {
        // Four CPython builds, maturin, a one-core pip step, a build that needs them all,
        // two exclusive test cells and a last build alone; two cores.
        let w = World::new("budget");
        let mut specs = vec![
            spec("c1", &[], ""),
            spec("c2", &[], ""),
            spec("c3", &[], ""),
            spec("c4", &[], ""),
            spec("m", &[], ""),
            spec("e", &["c1"], ""),
            spec("w", &["m", "c2", "c3", "c4"], ""),
            spec("t", &["w"], ""),
            spec("u", &["e"], ""),
            spec("l", &["t"], ""),
        ];
        specs[5].cores = Cores::ONE;
        specs[7].exclusive = true;
        specs[8].exclusive = true;
        let g = Graph::new(specs).unwrap();
        // The cores the running steps hold, and each start: (step, grant, held then).
        let held = Arc::new(AtomicUsize::new(0));
        let started = Arc::new((
            Mutex::new(Vec::<(String, usize, usize)>::new()),
            Condvar::new(),
        ));
        let mut gates: BTreeMap<String, mpsc::Sender<()>> = BTreeMap::new();
        let mut actions: BTreeMap<String, Action> = BTreeMap::new();
        for s in &g.steps {
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            gates.insert(s.name.clone(), gate_tx);
            let gate = Mutex::new(gate_rx);
            let (held, started) = (held.clone(), started.clone());
            let action: Action = Box::new(move |ctx: &Ctx| {
                let now = held.fetch_add(ctx.jobs, Ordering::SeqCst) + ctx.jobs;
                let (log, cv) = &*started;
                log.lock().unwrap().push((ctx.name.clone(), ctx.jobs, now));
                cv.notify_all();
                // Each step finishes when the test says so, by name.
                let released = gate.lock().unwrap().recv();
                held.fetch_sub(ctx.jobs, Ordering::SeqCst);
                released?;
                Ok(())
            });
            actions.insert(s.name.clone(), action);
        }
        // Release a step once this many steps have started: a start shows the runner has
        // taken in the step released before, so every grant below is decided on a known
        // state (`e` and `w` free cores nothing can use alone, so their order is moot).
        // Ready steps are offered cores most-dependents first: c2, c3, c4 and m (three
        // steps wait on each) before c1 (two), t before u.
        let script = [
            ("c2", 2),
            ("c3", 3),
            ("c4", 4),
            ("m", 5),
            ("c1", 6),
            ("e", 7),
            ("w", 7),
            ("t", 8),
            ("u", 9),
            ("l", 10),
        ];
        let opener = {
            let started = started.clone();
            std::thread::spawn(move || {
                let (log, cv) = &*started;
                for (step, seen) in script {
                    let wait =
                        cv.wait_timeout_while(log.lock().unwrap(), Duration::from_secs(300), |l| {
                            l.len() < seen
                        });
                    if wait.unwrap().1.timed_out() {
                        // Dropping the gates fails the waiting steps, so the run ends.
                        return;
                    }
                    gates[step].send(()).unwrap();
                }
            })
        };
        let mut p = Progress::new(Mode::Quiet);
        let s = execute(&g, &actions, &all(&g), &w.opts(2, false), &mut p).unwrap();
        opener.join().unwrap();
        let log = started.0.lock().unwrap().clone();
        let mut granted: Vec<(&str, usize)> =
            log.iter().map(|(n, g, _)| (n.as_str(), *g)).collect();
        // c2 and c3 start together, so either may log first (a loaded machine showed the
        // second first); the order from there on is the script's.
        granted[..2].sort();
        assert_eq!(
            granted,
            [
                ("c2", 1),
                ("c3", 1),
                ("c4", 1),
                ("m", 1),
                ("c1", 1),
                ("w", 1),
                ("e", 1),
                ("t", 2),
                ("u", 2),
                ("l", 2)
            ]
        );
        assert!(log.iter().all(|(_, _, now)| *now <= 2), "{log:?}");
        assert_eq!(log.iter().map(|(_, _, now)| *now).max(), Some(2));
        assert!(s.results.iter().all(|r| r.status == Status::Built));
        assert_eq!(s.cores, 2);
        for (name, grant) in granted {
            assert_eq!(s.get(&n(name)).unwrap().cores, grant, "{name}");
        }
        // The timeline: `l` could only start once `t` had ended, and `t` once `w` had.
        let at = |name: &str| s.get(&n(name)).unwrap();
        for (before, after) in [("w", "t"), ("t", "l")] {
            let (b, a) = (at(before), at(after));
            assert!(
                b.started + b.seconds <= a.started + 1e-3,
                "{before} then {after}"
            );
        }
    }

    #[test]
    fn an_exclusive_step_runs_alone() {
        let w = World::new("exclusive");
        let mut specs = vec![spec("a", &[], ""), spec("t", &[], ""), spec("b", &[], "")];
        specs[1].exclusive = true;
        let g = Graph::new(specs).unwrap();
        let now = Arc::new(AtomicUsize::new(0));
        let alone = Arc::new(Mutex::new(Vec::new()));
        // `a` and `b` meet (no sleep: each waits until the other has started, so the test
        // does not depend on how fast a loaded machine runs them); `t` records how many
        // steps run while it does.
        let met = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
        let actions: BTreeMap<String, Action> = ["a", "t", "b"]
            .iter()
            .map(|n| {
                let (now, alone, met) = (now.clone(), alone.clone(), met.clone());
                let action: Action = Box::new(move |ctx: &Ctx| {
                    let cur = now.fetch_add(1, Ordering::SeqCst) + 1;
                    let seen = if ctx.name == "t" {
                        now.load(Ordering::SeqCst).max(cur)
                    } else {
                        let (lock, cv) = &*met;
                        let mut arrived = lock.lock().unwrap();
                        *arrived += 1;
                        cv.notify_all();
                        let (arrived, _) = cv
                            .wait_timeout_while(arrived, Duration::from_secs(60), |a| *a < 2)
                            .unwrap();
                        *arrived
                    };
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

    #[test]
    fn a_panicking_step_fails_and_the_run_ends() {
        // Once, the runner waited forever for a step whose thread had panicked: the run
        // goes on a thread of its own here, so a hang fails the test instead of hanging it.
        for keep_going in [false, true] {
            let w = World::new(&format!("panic-{keep_going}"));
            let g = graph("s1");
            let mut actions = w.actions(&g, &[]);
            actions.insert(
                n("toolchain/ft"),
                Box::new(|_ctx: &Ctx| -> anyhow::Result<()> {
                    let state: Vec<u8> = Vec::new();
                    // As a recipe indexing state it read from disk would.
                    let _ = state[3];
                    Ok(())
                }),
            );
            let (tx, rx) = mpsc::channel();
            let (g2, opts) = (g.clone(), w.opts(2, keep_going));
            std::thread::spawn(move || {
                let mut p = Progress::new(Mode::Quiet);
                let _ = tx.send(execute(&g2, &actions, &all(&g2), &opts, &mut p));
            });
            let s = rx
                .recv_timeout(Duration::from_secs(300))
                .expect("the run never ended")
                .unwrap();
            let tc = s.get(&n("toolchain/ft")).unwrap();
            assert_eq!(tc.status, Status::Failed);
            let error = tc.error.as_deref().unwrap();
            assert!(
                error.contains("the step panicked: index out of bounds"),
                "{error}"
            );
            assert!(
                !entry_dir(&w.dir.join("cache"), "toolchain/ft", &tc.key)
                    .join(DONE_MARKER)
                    .exists()
            );
            assert_eq!(s.get(&n("wheel")).unwrap().status, Status::Blocked);
            assert_eq!(s.failed().len(), 1);
        }
    }

    #[test]
    fn a_failed_leaf_stops_nothing_else() {
        let w = World::new("leaves");
        // Two targets' test cells; one job, so without the leaf rule the first failure
        // would stop the run before the other target's cells start.
        let mut specs = vec![
            spec("cpython", &[], "c"),
            spec("a/wheel", &["cpython"], "a"),
            spec("b/wheel", &["cpython"], "b"),
            spec("a/test/1", &["a/wheel"], "t"),
            spec("a/test/2", &["a/wheel"], "t"),
            spec("b/test/1", &["b/wheel"], "t"),
            spec("b/test/2", &["b/wheel"], "t"),
        ];
        for s in &mut specs {
            s.leaf = s.name.contains("/test/");
        }
        let g = Graph::new(specs).unwrap();
        let s = w.run(&g, &all(&g), &["a/test/1"], 1, false);
        assert_eq!(s.get(&n("a/test/1")).unwrap().status, Status::Failed);
        for other in ["a/test/2", "b/wheel", "b/test/1", "b/test/2"] {
            assert_eq!(s.get(&n(other)).unwrap().status, Status::Built, "{other}");
        }
        assert_eq!(s.failed().len(), 1, "the run still says something failed");
        // A failed step that is not a leaf still stops the run.
        let w = World::new("leaves-2");
        let s = w.run(&g, &all(&g), &["a/wheel"], 1, false);
        assert_eq!(s.get(&n("a/wheel")).unwrap().status, Status::Failed);
        assert_eq!(s.get(&n("b/test/1")).unwrap().status, Status::Blocked);
    }
}
