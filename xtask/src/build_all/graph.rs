//! The build graph as data: steps with declared inputs and dependencies, their cache keys,
//! a dependency order, and which steps a run selects (`--only`, `--from`). Pure.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};

use crate::stack::hex;

/// One step, without its action: what the scheduler and the cache need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec {
    /// `kind/detail`, such as `cpython/freethreaded`.
    pub name: String,
    pub deps: Vec<String>,
    /// Everything the step's result depends on besides its dependencies' keys: source tree
    /// ids, parameters, tool versions. Label and value.
    pub inputs: Vec<(String, String)>,
    /// The step keeps every core busy itself (`pytest -n <jobs>`), or is sensitive to
    /// timing: it runs alone, nothing else alongside it.
    pub exclusive: bool,
}

/// Steps in dependency order with their keys.
#[derive(Debug, Clone)]
pub struct Graph {
    pub steps: Vec<StepSpec>,
    pub keys: BTreeMap<String, String>,
}

impl Graph {
    /// Orders the steps (dependencies first, ties by declaration order) and computes keys.
    /// Unknown dependencies and cycles are errors naming the step.
    pub fn new(steps: Vec<StepSpec>) -> Result<Graph> {
        let names: BTreeSet<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        if names.len() != steps.len() {
            bail!("two build steps have the same name");
        }
        for s in &steps {
            for d in &s.deps {
                if !names.contains(d.as_str()) {
                    bail!(
                        "build step `{}` depends on `{d}`, which does not exist",
                        s.name
                    );
                }
            }
        }
        let mut ordered: Vec<StepSpec> = Vec::with_capacity(steps.len());
        let mut placed: BTreeSet<String> = BTreeSet::new();
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
                    let stuck: Vec<&str> = steps
                        .iter()
                        .filter(|s| !placed.contains(&s.name))
                        .map(|s| s.name.as_str())
                        .collect();
                    bail!(
                        "the build steps {} depend on each other in a cycle",
                        stuck.join(", ")
                    );
                }
            }
        }
        let mut keys = BTreeMap::new();
        for s in &ordered {
            let mut h = Sha256::new();
            h.update(b"xtask-step-v1\0");
            h.update(s.name.as_bytes());
            for (label, value) in &s.inputs {
                h.update(b"\0i\0");
                h.update(label.as_bytes());
                h.update(b"=");
                h.update(value.as_bytes());
            }
            for d in &s.deps {
                h.update(b"\0d\0");
                h.update(d.as_bytes());
                h.update(b"=");
                h.update(keys.get(d).map(String::as_str).unwrap_or("").as_bytes());
            }
            keys.insert(s.name.clone(), hex(&h.finalize())[..16].to_string());
        }
        Ok(Graph {
            steps: ordered,
            keys,
        })
    }

    pub fn key(&self, step: &str) -> &str {
        &self.keys[step]
    }

    pub fn spec(&self, step: &str) -> Option<&StepSpec> {
        self.steps.iter().find(|s| s.name == step)
    }

    /// Steps that (transitively) depend on `name`, including it.
    pub fn dependents(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::from([name.to_string()]);
        for s in &self.steps {
            if s.deps.iter().any(|d| out.contains(d)) {
                out.insert(s.name.clone());
            }
        }
        out
    }

    /// Steps `name` needs (transitively), including it.
    pub fn prerequisites(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::from([name.to_string()]);
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
    pub fn select(&self, only: &[String], from: Option<&str>) -> Result<Selection> {
        let matching = |pat: &str| -> Result<Vec<String>> {
            let found: Vec<String> = self
                .steps
                .iter()
                .filter(|s| s.name == pat || s.name.starts_with(&format!("{pat}/")))
                .map(|s| s.name.clone())
                .collect();
            if found.is_empty() {
                let all: Vec<&str> = self.steps.iter().map(|s| s.name.as_str()).collect();
                bail!("no build step `{pat}`; the steps are: {}", all.join(", "));
            }
            Ok(found)
        };
        let mut wanted: BTreeSet<String> = BTreeSet::new();
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
pub struct Selection {
    pub wanted: BTreeSet<String>,
    /// Run again even when cached.
    pub forced: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, deps: &[&str], input: &str) -> StepSpec {
        StepSpec {
            exclusive: false,
            name: name.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            inputs: vec![("tree".into(), input.into())],
        }
    }

    fn experiment(setuptools: &str) -> Vec<StepSpec> {
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
