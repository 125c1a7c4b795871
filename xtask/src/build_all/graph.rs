//! The build graph as data: steps with declared inputs and dependencies, their cache keys,
//! a dependency order, and which steps a run selects (`--only`, `--from`). Pure, and generic
//! over the step id so that the runner's tests use plain names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use anyhow::{Context, Result, bail};

use crate::ops::interpreters::step_key;

/// What a step id must be: ordered, shown as its name (`kind/detail`), sent to a thread.
pub trait Id: Clone + Ord + Display + Send + Sync + 'static {}
impl<T: Clone + Ord + Display + Send + Sync + 'static> Id for T {}

/// How many cores a step can keep busy. The runner grants it between one and that many, never
/// more than are free, and the recipe passes the grant on (`make -j`, cargo, `pytest -n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cores {
    /// At most this many: a pip install or a venv uses one.
    Upto(usize),
    /// As many as the run has: make, cargo, pytest-xdist.
    All,
}

impl Cores {
    pub const ONE: Cores = Cores::Upto(1);

    /// The want in a budget of `budget` cores: at least one, at most the budget.
    pub fn within(self, budget: usize) -> usize {
        let budget = budget.max(1);
        match self {
            Cores::Upto(n) => n.clamp(1, budget),
            Cores::All => budget,
        }
    }
}

/// One step, without its action: what the scheduler and the cache need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec<I> {
    pub name: I,
    pub deps: Vec<I>,
    /// Everything the step's result depends on besides its dependencies' keys: source tree
    /// ids, parameters, tool versions. Label and value.
    pub inputs: Vec<(String, String)>,
    /// The step keeps every core busy itself (`pytest -n <jobs>`), or is sensitive to
    /// timing: it runs alone, nothing else alongside it. It is granted the whole core budget,
    /// whatever `cores` says, and starts only when every core is free.
    pub exclusive: bool,
    /// How many cores the step can use (see `run::grants` for how they are shared).
    pub cores: Cores,
    /// Nothing depends on the step (a test cell), so its failure stops nothing else: the
    /// run goes on without `--keep-going`.
    pub leaf: bool,
    /// Its failure stops only what depends on it (a target's wheel: the other targets go
    /// on), even without `--keep-going`.
    pub contained: bool,
}

/// Steps in dependency order with their keys.
#[derive(Debug, Clone)]
pub struct Graph<I> {
    pub steps: Vec<StepSpec<I>>,
    pub keys: BTreeMap<I, String>,
}

impl<I: Id> Graph<I> {
    /// Orders the steps (dependencies first, ties by declaration order) and computes keys.
    /// Unknown dependencies, cycles and steps that depend on a leaf are errors naming the
    /// step.
    pub fn new(steps: Vec<StepSpec<I>>) -> Result<Graph<I>> {
        let names: BTreeSet<&I> = steps.iter().map(|s| &s.name).collect();
        if names.len() != steps.len() {
            bail!("two build steps have the same name");
        }
        for s in &steps {
            for d in &s.deps {
                match steps.iter().find(|t| &t.name == d) {
                    None => bail!(
                        "build step `{}` depends on `{d}`, which does not exist",
                        s.name
                    ),
                    Some(t) if t.leaf => bail!(
                        "build step `{}` depends on `{d}`, which is a leaf (its failure stops nothing)",
                        s.name
                    ),
                    Some(_) => {}
                }
            }
        }
        let mut ordered: Vec<StepSpec<I>> = Vec::with_capacity(steps.len());
        let mut placed: BTreeSet<I> = BTreeSet::new();
        while ordered.len() < steps.len() {
            let next = steps
                .iter()
                .find(|s| !placed.contains(&s.name) && s.deps.iter().all(|d| placed.contains(d)));
            match next {
                Some(s) => {
                    placed.insert(s.name.clone());
                    ordered.push(s.clone());
                }
                None => {
                    let stuck: Vec<String> = steps
                        .iter()
                        .filter(|s| !placed.contains(&s.name))
                        .map(|s| s.name.to_string())
                        .collect();
                    bail!(
                        "the build steps {} depend on each other in a cycle",
                        stuck.join(", ")
                    );
                }
            }
        }
        let mut keys: BTreeMap<I, String> = BTreeMap::new();
        for s in &ordered {
            let deps: Vec<(String, String)> = s
                .deps
                .iter()
                .map(|d| (d.to_string(), keys.get(d).cloned().unwrap_or_default()))
                .collect();
            let key = step_key(&s.name.to_string(), &s.inputs, &deps);
            keys.insert(s.name.clone(), key);
        }
        Ok(Graph {
            steps: ordered,
            keys,
        })
    }

    /// A step's key; an unknown step is an error naming it.
    pub fn key(&self, step: &I) -> Result<&str> {
        self.keys
            .get(step)
            .map(String::as_str)
            .with_context(|| format!("no build step `{step}`"))
    }

    pub fn spec(&self, step: &I) -> Option<&StepSpec<I>> {
        self.steps.iter().find(|s| &s.name == step)
    }

    /// Steps that (transitively) depend on `name`, including it.
    pub fn dependents(&self, name: &I) -> BTreeSet<I> {
        let mut out = BTreeSet::from([name.clone()]);
        for s in &self.steps {
            if s.deps.iter().any(|d| out.contains(d)) {
                out.insert(s.name.clone());
            }
        }
        out
    }

    /// Steps `name` needs (transitively), including it.
    pub fn prerequisites(&self, name: &I) -> BTreeSet<I> {
        let mut out = BTreeSet::from([name.clone()]);
        for s in self.steps.iter().rev() {
            if out.contains(&s.name) {
                out.extend(s.deps.iter().cloned());
            }
        }
        out
    }

    /// The steps a run is about. `--only` names steps (or a prefix such as `cpython`) and
    /// takes their prerequisites too (those are normally cached); `--from` takes a step and
    /// everything after it, and forces those to run again.
    pub fn select(&self, only: &[String], from: Option<&str>) -> Result<Selection<I>> {
        let matching = |pat: &str| -> Result<Vec<I>> {
            let found: Vec<I> = self
                .steps
                .iter()
                .filter(|s| {
                    let name = s.name.to_string();
                    name == pat || name.starts_with(&format!("{pat}/"))
                })
                .map(|s| s.name.clone())
                .collect();
            if found.is_empty() {
                let all: Vec<String> = self.steps.iter().map(|s| s.name.to_string()).collect();
                bail!("no build step `{pat}`; the steps are: {}", all.join(", "));
            }
            Ok(found)
        };
        let mut wanted: BTreeSet<I> = BTreeSet::new();
        if only.is_empty() {
            wanted.extend(self.steps.iter().map(|s| s.name.clone()));
        } else {
            for pat in only {
                for s in matching(pat)? {
                    wanted.extend(self.prerequisites(&s));
                }
            }
        }
        let mut forced = BTreeSet::new();
        if let Some(pat) = from {
            for s in matching(pat)? {
                forced.extend(self.dependents(&s));
            }
            forced.retain(|s| wanted.contains(s));
        }
        Ok(Selection { wanted, forced })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<I> {
    pub wanted: BTreeSet<I>,
    /// Run again even when cached.
    pub forced: BTreeSet<I>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, deps: &[&str], input: &str) -> StepSpec<String> {
        StepSpec {
            exclusive: false,
            cores: Cores::All,
            leaf: false,
            contained: false,
            name: name.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            inputs: vec![("tree".into(), input.into())],
        }
    }

    fn experiment(setuptools: &str) -> Vec<StepSpec<String>> {
        vec![
            step("wheel/x", &["toolchain/ft", "maturin"], "x"),
            step("cpython/default", &[], "cp"),
            step("cpython/ft", &[], "cp"),
            step("toolchain/ft", &["cpython/ft"], setuptools),
            step("maturin", &[], "m"),
            step("test/default", &["wheel/x", "cpython/default"], ""),
        ]
    }

    #[test]
    fn orders_dependencies_first() {
        let g = Graph::new(experiment("s1")).unwrap();
        let order: Vec<&str> = g.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "cpython/default",
                "cpython/ft",
                "toolchain/ft",
                "maturin",
                "wheel/x",
                "test/default"
            ]
        );
    }

    #[test]
    fn a_changed_input_changes_the_key_of_the_step_and_its_dependents_only() {
        let a = Graph::new(experiment("s1")).unwrap();
        let b = Graph::new(experiment("s2")).unwrap();
        let changed: Vec<&str> = a
            .keys
            .iter()
            .filter(|(k, v)| b.keys[*k] != **v)
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(changed, ["test/default", "toolchain/ft", "wheel/x"]);
        assert_eq!(
            Graph::new(experiment("s1")).unwrap().keys,
            a.keys,
            "keys are stable"
        );
    }

    #[test]
    fn refuses_cycles_and_unknown_deps() {
        let err = Graph::new(vec![step("a", &["b"], ""), step("b", &["a"], "")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("a, b depend on each other in a cycle"),
            "{err}"
        );
        let err = Graph::new(vec![step("a", &["nope"], "")]).unwrap_err();
        assert!(err.to_string().contains("`a` depends on `nope`"), "{err}");
        let mut leaf = step("t", &[], "");
        leaf.leaf = true;
        let err = Graph::new(vec![leaf, step("a", &["t"], "")]).unwrap_err();
        assert!(err.to_string().contains("`t`, which is a leaf"), "{err}");
        let g = Graph::new(vec![step("a", &[], "")]).unwrap();
        assert!(g.key(&"b".to_string()).is_err());
    }

    #[test]
    fn selections() {
        let g = Graph::new(experiment("s1")).unwrap();
        let only = g.select(&["toolchain".into()], None).unwrap();
        assert_eq!(
            only.wanted,
            BTreeSet::from(["cpython/ft".to_string(), "toolchain/ft".to_string()])
        );
        let from = g.select(&[], Some("toolchain/ft")).unwrap();
        assert_eq!(
            from.forced,
            BTreeSet::from([
                "test/default".to_string(),
                "toolchain/ft".to_string(),
                "wheel/x".to_string()
            ])
        );
        assert_eq!(from.wanted.len(), 6);
        assert!(
            g.select(&["nope".into()], None)
                .unwrap_err()
                .to_string()
                .contains("no build step `nope`")
        );
    }
}
