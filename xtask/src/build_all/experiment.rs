//! The experiment's graph: which steps there are, what each one's key holds, what it needs,
//! and which recipe runs it, all following from `experiment.yaml` (interpreters, toolchain
//! roles, where wheels are built, how they are tested, which installs must be refused).
//! `specs` is pure (the experiment, tree ids and tool versions in, steps out), so the graph
//! is tested without running anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::graph::{Cores, StepSpec};
use super::recipes::{self, Env};
use super::run::Action;
use super::step::{Installer, StepId};
use super::tools::Tools;
use crate::manifest::{Backend, Experiment, Interpreter, Role, RoleKind, Target};
use crate::ops::interpreters::{CPYTHON_RECIPE, cpython_inputs};

/// Revision of each step's recipe, part of its key: bump one when its recipe changes what it
/// produces. Revision 0 adds nothing to the key.
pub fn recipe_revision(id: &StepId) -> u32 {
    match id {
        StepId::CPython(_) => CPYTHON_RECIPE,
        StepId::Maturin => 1,
        // 3: every `python` role is built into a wheel under `wheels/<role>/`.
        StepId::Env(_) => 3,
        // 2: the source copy does not see this repository's git history (a version tool read
        // it: argon2-cffi-bindings 0.0), and the wheel's version must be its sdist's.
        // Not bumped when the layered venv lost its own pip: the pip that runs `pip wheel`
        // there became the environment's pinned one (in the key through `env/`) instead of
        // ensurepip's, and the backend, not pip, makes the wheel.
        StepId::Wheel(_) => 2,
        // 2: the venv has no pip of its own; the environment's pip installs into it.
        StepId::Install(..) => 2,
        // 4: one suite per interpreter; a failed test is re-run once on its own.
        // 5: the venv has no pip of its own (as `Install` 2).
        StepId::Test(..) => 5,
        StepId::Abi3Wheel(_) => 1,
        // 2: the installer's error lines (or what it installed), not its last line.
        // 3: the venv has no pip of its own; pip is the environment's (the pinned one).
        StepId::Refusal(..) => 3,
    }
}

/// Revision of the Stable ABI audit's rules (crate::stable_abi), part of each wheel's key:
/// bump it when a rule changes its verdict, so cached wheels are audited again.
pub const AUDIT_RULES: u32 = 1;

/// The tree id of each stack's checkout, by stack name.
pub type Trees = BTreeMap<String, String>;

/// The cores a step can use: its grant goes to `make -j`, cargo and `pytest -n`.
pub fn cores(id: &StepId) -> Cores {
    match id {
        // A venv and pip installs (cffi's one C file included) keep one core busy.
        StepId::Env(_) | StepId::Install(..) | StepId::Refusal(..) | StepId::Abi3Wheel(_) => {
            Cores::ONE
        }
        StepId::CPython(_) | StepId::Maturin | StepId::Wheel(_) | StepId::Test(..) => Cores::All,
    }
}

/// A stack with a `build.target`, and the tree id of its checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    pub name: String,
    pub target: Target,
    pub tree: String,
}

/// The backend a target names, or an error naming the target and the backends there are.
pub fn backend_of<'a>(e: &'a Experiment, t: &TargetInfo) -> Result<&'a Backend> {
    e.backend(&t.target.kind).with_context(|| {
        format!(
            "`{}` (patches/{}/stack.yaml) names the build backend `kind: {}`, which experiment.yaml's `backends` does not have ({})",
            t.name,
            t.name,
            crate::manifest::token(&t.target.kind),
            e.backends
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The stack whose crates replace crates.io's in a backend's builds: its `cargo-patch` role's.
pub fn cargo_patch_stack(e: &Experiment, b: &Backend) -> Option<String> {
    e.backend_roles(b)
        .find(|r| r.kind == RoleKind::CargoPatch)
        .map(|r| r.stack.clone())
}

/// A Python role's part of a key: its stack's tree, and its `requires` by name (their
/// versions come from the constraints, in the key through the environment's).
fn role_input(trees: &Trees, r: &Role) -> Result<(String, String)> {
    let mut value = tree(trees, &r.stack)?.to_string();
    if !r.requires.is_empty() {
        value = format!("{value} requires {}", r.requires.join(" "));
    }
    Ok(input(&format!("role:{}", r.role), &value))
}

fn input(label: &str, value: &str) -> (String, String) {
    (label.to_string(), value.to_string())
}

fn tree<'a>(trees: &'a Trees, stack: &str) -> Result<&'a str> {
    trees
        .get(stack)
        .map(String::as_str)
        .with_context(|| format!("no tree for the stack `{stack}` (is it synced?)"))
}

/// Whether an interpreter can run an abi3-only wheel: GIL-enabled builds can, free-threaded
/// ones cannot (their ABI is abi3t).
pub fn accepts_abi3(interp: &Interpreter) -> bool {
    !interp.flavour.free_threaded()
}

/// Every step of the experiment with its inputs and dependencies.
pub fn specs(
    e: &Experiment,
    trees: &Trees,
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
        contained: false,
    };
    let mut specs = Vec::new();
    for i in &e.interpreters {
        // `cpython_inputs` holds the recipe revision: `verify` computes the same key.
        let inputs = cpython_inputs(tree(trees, &i.stack)?, &tools.cc, i);
        specs.push(step(StepId::CPython(i.name.clone()), vec![], inputs));
    }
    let maturin = e.role(RoleKind::Maturin);
    if let Some(m) = maturin {
        specs.push(step(
            StepId::Maturin,
            vec![],
            vec![
                input("tree", tree(trees, &m.stack)?),
                input("rustc", &tools.rustc),
            ],
        ));
    }
    for i in &e.interpreters {
        let mut deps = vec![StepId::CPython(i.name.clone())];
        if maturin.is_some() {
            deps.push(StepId::Maturin);
        }
        let mut inputs = vec![input("constraints", &tools.constraints)];
        for r in e.roles(RoleKind::Python) {
            inputs.push(role_input(trees, r)?);
        }
        specs.push(step(StepId::Env(i.name.clone()), deps, inputs));
    }
    let builder = e.builder();
    for t in targets {
        if t.name.is_empty() || t.name.contains('/') {
            bail!("`{}` cannot name a build target", t.name);
        }
        let backend = backend_of(e, t)?;
        if let Some(r) = e.build_roles(backend).find(|r| r.stack == t.name) {
            bail!(
                "`{}` (patches/{}/stack.yaml) is built with the backend `{}`, whose role `{}` is the same stack: a package cannot be a build tool of its own build",
                t.name,
                t.name,
                backend.name,
                r.role
            );
        }
        // The wheel depends on the source, the backend and its tools, not on how it is tested.
        let mut inputs = vec![
            input("tree", &t.tree),
            input("backend", &serde_json::to_string(backend)?),
            input("rustc", &tools.rustc),
            input("python-tag", &builder.python_tag()),
            // The audit runs in the wheel step: its rules and the target's waivers.
            input(
                "audit",
                &format!(
                    "rules {AUDIT_RULES} waivers {}",
                    serde_json::to_string(&t.target.audit_waivers)?
                ),
            ),
        ];
        if !backend.requires.is_empty() {
            // Its build tools' versions are pinned there.
            inputs.push(input("constraints", &tools.constraints));
        }
        if !t.target.build_env.is_empty() {
            // Only when set, so the other targets keep their keys.
            inputs.push(input(
                "build-env",
                &serde_json::to_string(&t.target.build_env)?,
            ));
        }
        for r in e.backend_roles(backend) {
            // Python roles and maturin reach the wheel through the environment's key.
            match r.kind {
                RoleKind::CargoPatch => {
                    inputs.push(input(&format!("role:{}", r.role), tree(trees, &r.stack)?));
                }
                RoleKind::BuildPython => inputs.push(role_input(trees, r)?),
                RoleKind::Python | RoleKind::Maturin => {}
            }
        }
        let wheel = StepId::Wheel(t.name.clone());
        let mut wheel_step = step(
            wheel.clone(),
            vec![StepId::Env(builder.name.clone())],
            inputs,
        );
        // One target's failed build hides no other target.
        wheel_step.contained = true;
        specs.push(wheel_step);
        let spec_text = serde_json::to_string(&t.target)?;
        for i in e.tested() {
            let needs = vec![
                wheel.clone(),
                StepId::CPython(i.name.clone()),
                StepId::Env(i.name.clone()),
            ];
            for &installer in &e.tests.installers {
                let mut cell = step(
                    StepId::Install(t.name.clone(), i.name.clone(), installer),
                    needs.clone(),
                    vec![
                        input("import", &t.target.import),
                        input("constraints", &tools.constraints),
                    ],
                );
                cell.leaf = true;
                specs.push(cell);
            }
            let mut suite = step(
                StepId::Test(t.name.clone(), i.name.clone()),
                needs,
                vec![
                    input("tree", &t.tree),
                    input("target", &spec_text),
                    input("constraints", &tools.constraints),
                    input("installer", e.tests.suite.as_str()),
                ],
            );
            // A suite shares the cores with the other steps (each cell's pytest -n gets its
            // grant), unless the target says some of its tests are timing-sensitive
            // (brotlicffi's concurrency test fails when another process keeps a core busy).
            suite.exclusive = !t.target.timing_sensitive.is_empty();
            // A failed cell stops no other cell: nothing needs it.
            suite.leaf = true;
            specs.push(suite);
        }
    }
    for r in &e.refusals {
        let Some(t) = targets.iter().find(|t| t.name == r.target) else {
            bail!(
                "experiment.yaml's refusal names `{}`, which has no `build.target` in its stack",
                r.target
            );
        };
        if t.target.kind != "setuptools" {
            bail!(
                "experiment.yaml's refusal names `{}`: the abi3-only wheel is built with the released setuptools, so the target must be `kind: setuptools`",
                r.target
            );
        }
        let wheel = StepId::Abi3Wheel(t.name.clone());
        let mut abi3 = step(
            wheel.clone(),
            vec![StepId::CPython(r.build_on.clone())],
            vec![
                input("tree", &t.tree),
                input("constraints", &tools.constraints),
                input("requires", &r.requires.join(" ")),
                input("audit", &format!("rules {AUDIT_RULES}")),
            ],
        );
        // Like the wheel: its failure stops only its own cells.
        abi3.contained = true;
        specs.push(abi3);
        for i in e.tested() {
            for &installer in &e.tests.installers {
                let mut cell = step(
                    StepId::Refusal(t.name.clone(), i.name.clone(), installer),
                    vec![
                        wheel.clone(),
                        StepId::CPython(i.name.clone()),
                        StepId::Env(i.name.clone()),
                    ],
                    vec![
                        input("import", &t.target.import),
                        input("expect", if accepts_abi3(i) { "accept" } else { "refuse" }),
                    ],
                );
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
pub fn action(
    env: &Arc<Env>,
    id: &StepId,
    e: &Experiment,
    targets: &[TargetInfo],
) -> Result<Action<StepId>> {
    let env = env.clone();
    let target = |name: &str| -> Result<Target> {
        targets
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.target.clone())
            .with_context(|| format!("no build target `{name}`"))
    };
    let interp = |name: &str| -> Result<Interpreter> {
        e.interpreter(name)
            .cloned()
            .with_context(|| format!("no interpreter `{name}` in experiment.yaml"))
    };
    let e = Arc::new(e.clone());
    Ok(match id.clone() {
        StepId::CPython(name) => {
            let i = interp(&name)?;
            Box::new(move |ctx| recipes::cpython(&env, ctx, &i))
        }
        StepId::Maturin => {
            let role = e
                .role(RoleKind::Maturin)
                .context("no `kind: maturin` role in experiment.yaml")?
                .clone();
            Box::new(move |ctx| recipes::maturin(&env, ctx, &role.stack))
        }
        StepId::Env(name) => {
            let i = interp(&name)?;
            Box::new(move |ctx| recipes::environment(&env, ctx, &e, &i))
        }
        StepId::Wheel(project) => {
            let builder = e.builder().clone();
            let t = target(&project)?;
            let audit = recipes::AuditSpec {
                list: env.checkout(&builder.stack).join("Misc/stable_abi.toml"),
                waivers: t.audit_waivers.clone(),
            };
            let info = targets
                .iter()
                .find(|i| i.name == project)
                .with_context(|| format!("no build target `{project}`"))?;
            let backend = backend_of(&e, info)?.clone();
            let pyo3 = cargo_patch_stack(&e, &backend);
            let build_roles: Vec<Role> = e.build_roles(&backend).cloned().collect();
            let build_env = t.build_env.clone();
            Box::new(move |ctx| {
                recipes::wheel(
                    &env,
                    ctx,
                    &project,
                    &builder,
                    &backend,
                    pyo3.as_deref(),
                    &build_roles,
                    &audit,
                    &build_env,
                )
            })
        }
        StepId::Install(project, name, installer) => {
            let (t, i) = (target(&project)?, interp(&name)?);
            Box::new(move |ctx| recipes::install(&env, ctx, &e, &project, &t, &i, installer))
        }
        StepId::Test(project, name) => {
            let (t, i) = (target(&project)?, interp(&name)?);
            let installer: Installer = e.tests.suite;
            Box::new(move |ctx| recipes::test(&env, ctx, &e, &project, &t, &i, installer))
        }
        StepId::Abi3Wheel(project) => {
            let r = e
                .refusals
                .iter()
                .find(|r| r.target == project)
                .context("no refusal for this target in experiment.yaml")?;
            let (i, requires) = (interp(&r.build_on)?, r.requires.clone());
            let audit = recipes::AuditSpec {
                list: env.checkout(&i.stack).join("Misc/stable_abi.toml"),
                waivers: Vec::new(),
            };
            Box::new(move |ctx| recipes::abi3_wheel(&env, ctx, &project, &i, &requires, &audit))
        }
        StepId::Refusal(project, name, installer) => {
            let (t, i) = (target(&project)?, interp(&name)?);
            Box::new(move |ctx| recipes::refusal(ctx, &e, &project, &t, &i, installer))
        }
    })
}

/// The actions of every step.
pub fn actions(
    env: &Arc<Env>,
    specs: &[StepSpec<StepId>],
    e: &Experiment,
    targets: &[TargetInfo],
) -> Result<BTreeMap<StepId, Action<StepId>>> {
    specs
        .iter()
        .map(|s| Ok((s.name.clone(), action(env, &s.name, e, targets)?)))
        .collect()
}

#[cfg(test)]
#[path = "experiment_tests.rs"]
mod tests;
