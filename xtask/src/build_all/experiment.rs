//! The experiment's graph: which steps there are, what each one's key holds, what it needs,
//! and which recipe runs it. `specs` is pure (tree ids and tool versions in, steps out), so
//! the graph is tested without running anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::graph::{Cores, StepSpec};
use super::recipes::{self, Env};
use super::run::Action;
use super::step::{Flavour, Installer, StepId};
use super::tools::Tools;
use crate::manifest::{RecipeKind, Target};
use crate::ops::interpreters::{CPYTHON_RECIPE, cpython_inputs};

/// The CPython the stacks build; the wheel's python tag.
pub const PYTHON_TAG: &str = "cp315";

/// The environment every wheel is built on.
pub const WHEEL_FLAVOUR: Flavour = Flavour::Freethreaded;

/// Revision of each step's recipe, part of its key: bump one when its recipe changes what it
/// produces. Revision 0 adds nothing to the key.
pub fn recipe_revision(id: &StepId) -> u32 {
    match id {
        StepId::CPython(_) => CPYTHON_RECIPE,
        StepId::Maturin => 1,
        StepId::Env(_) => 2,
        StepId::Wheel(_) => 1,
        // 3: a failed test is re-run once on its own; `result.json` names flaky tests.
        StepId::Test(..) => 3,
    }
}

/// The cores a step can use: its grant goes to `make -j`, cargo and `pytest -n`.
pub fn cores(id: &StepId) -> Cores {
    match id {
        // A venv and pip installs (cffi's one C file included) keep one core busy.
        StepId::Env(_) => Cores::ONE,
        StepId::CPython(_) | StepId::Maturin | StepId::Wheel(_) | StepId::Test(..) => Cores::All,
    }
}

/// The tree ids of the toolchain's checkouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub cpython: String,
    pub maturin: String,
    pub setuptools: String,
    pub cffi: String,
    /// Needed only when a target is built with maturin.
    pub pyo3: Option<String>,
}

/// A stack with a `build.target`, and the tree id of its checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    pub name: String,
    pub target: Target,
    pub tree: String,
}

fn kind_name(kind: RecipeKind) -> &'static str {
    match kind {
        RecipeKind::Maturin => "maturin",
        RecipeKind::Setuptools => "setuptools",
    }
}

fn input(label: &str, value: &str) -> (String, String) {
    (label.to_string(), value.to_string())
}

/// Every step of the experiment with its inputs and dependencies.
pub fn specs(
    src: &Sources,
    tools: &Tools,
    targets: &[TargetInfo],
) -> Result<Vec<StepSpec<StepId>>> {
    let step = |name: StepId, deps: Vec<StepId>, inputs: Vec<(String, String)>| StepSpec {
        cores: cores(&name),
        name,
        deps,
        inputs,
        exclusive: false,
        leaf: false,
    };
    let mut specs = Vec::new();
    for flavour in Flavour::ALL {
        // `cpython_inputs` holds the recipe revision: `verify` computes the same key.
        let inputs = cpython_inputs(&src.cpython, &tools.cc, flavour);
        specs.push(step(StepId::CPython(flavour), vec![], inputs));
    }
    specs.push(step(
        StepId::Maturin,
        vec![],
        vec![input("tree", &src.maturin), input("rustc", &tools.rustc)],
    ));
    for flavour in Flavour::ALL {
        specs.push(step(
            StepId::Env(flavour),
            vec![StepId::CPython(flavour), StepId::Maturin],
            vec![
                input("constraints", &tools.constraints),
                input("setuptools", &src.setuptools),
                input("cffi", &src.cffi),
            ],
        ));
    }
    for t in targets {
        if t.name.is_empty() || t.name.contains('/') {
            bail!("`{}` cannot name a build target", t.name);
        }
        // The wheel depends on the source and the recipe, not on how it is tested.
        let mut inputs = vec![
            input("tree", &t.tree),
            input("kind", kind_name(t.target.kind)),
            input("rustc", &tools.rustc),
        ];
        if t.target.kind == RecipeKind::Maturin {
            let pyo3 = src
                .pyo3
                .as_deref()
                .context("a maturin target needs the `pyo3` stack, and there is none")?;
            inputs.push(input("pyo3", pyo3));
        }
        let wheel = StepId::Wheel(t.name.clone());
        specs.push(step(
            wheel.clone(),
            vec![StepId::Env(WHEEL_FLAVOUR)],
            inputs,
        ));
        let spec_text = serde_json::to_string(&t.target)?;
        for flavour in Flavour::ALL {
            for installer in Installer::ALL {
                let mut cell = step(
                    StepId::Test(t.name.clone(), flavour, installer),
                    vec![
                        wheel.clone(),
                        StepId::CPython(flavour),
                        StepId::Env(flavour),
                    ],
                    vec![
                        input("tree", &t.tree),
                        input("target", &spec_text),
                        input("constraints", &tools.constraints),
                    ],
                );
                // pytest -n <jobs> uses every core; two at once starve the targets'
                // threading tests (brotlicffi's concurrency test fails when oversubscribed).
                cell.exclusive = true;
                // A failed cell stops no other cell: nothing needs it.
                cell.leaf = true;
                specs.push(cell);
            }
        }
    }
    for s in &mut specs {
        let rev = recipe_revision(&s.name);
        if rev > 0 && !matches!(s.name, StepId::CPython(_)) {
            s.inputs.push(input("recipe", &rev.to_string()));
        }
    }
    Ok(specs)
}

/// The recipe that runs a step.
pub fn action(env: &Arc<Env>, id: &StepId, targets: &[TargetInfo]) -> Result<Action<StepId>> {
    let e = env.clone();
    let target = |name: &str| -> Result<Target> {
        targets
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.target.clone())
            .with_context(|| format!("no build target `{name}`"))
    };
    Ok(match id.clone() {
        StepId::CPython(flavour) => Box::new(move |ctx| recipes::cpython(&e, ctx, flavour)),
        StepId::Maturin => Box::new(move |ctx| recipes::maturin(&e, ctx)),
        StepId::Env(flavour) => Box::new(move |ctx| recipes::environment(&e, ctx, flavour)),
        StepId::Wheel(project) => match target(&project)?.kind {
            RecipeKind::Maturin => Box::new(move |ctx| {
                recipes::maturin_wheel(&e, ctx, &project, WHEEL_FLAVOUR, PYTHON_TAG)
            }),
            RecipeKind::Setuptools => Box::new(move |ctx| {
                recipes::setuptools_wheel(&e, ctx, &project, WHEEL_FLAVOUR, PYTHON_TAG)
            }),
        },
        StepId::Test(project, flavour, installer) => {
            let t = target(&project)?;
            Box::new(move |ctx| recipes::test(&e, ctx, &project, &t, flavour, installer))
        }
    })
}

/// The actions of every step.
pub fn actions(
    env: &Arc<Env>,
    specs: &[StepSpec<StepId>],
    targets: &[TargetInfo],
) -> Result<BTreeMap<StepId, Action<StepId>>> {
    specs
        .iter()
        .map(|s| Ok((s.name.clone(), action(env, &s.name, targets)?)))
        .collect()
}

#[cfg(test)]
#[path = "experiment_tests.rs"]
mod tests;
