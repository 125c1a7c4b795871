//! The experiment, `experiment.yaml` at the root: which interpreters exist (a CPython stack
//! and a flavour each), which stacks play which toolchain role, which interpreter builds the
//! wheels, how they are tested, and which installs must be refused. Pure: text in, checked
//! data out; `docs/stack-format.md` documents every field.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// How a CPython is built: GIL-enabled or free-threaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// GIL-enabled.
    Default,
    /// `--disable-gil`.
    Freethreaded,
}

impl Flavour {
    pub const ALL: [Flavour; 2] = [Flavour::Default, Flavour::Freethreaded];

    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Default => "default",
            Flavour::Freethreaded => "freethreaded",
        }
    }

    pub fn free_threaded(self) -> bool {
        self == Flavour::Freethreaded
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flavour {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Flavour> {
        Flavour::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .with_context(|| format!("no CPython flavour `{s}` (default, freethreaded)"))
    }
}

/// How a wheel is installed into an interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Installer {
    Pip,
    Uv,
}

impl Installer {
    pub fn as_str(self) -> &'static str {
        match self {
            Installer::Pip => "pip",
            Installer::Uv => "uv",
        }
    }
}

impl fmt::Display for Installer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One interpreter of the experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interpreter {
    /// Names its steps (`cpython/<name>`, `env/<name>`) and its verify variable
    /// (`$PYTHON_<NAME>`).
    pub name: String,
    /// The CPython stack it is built from.
    pub stack: String,
    /// `major.minor`, checked against the built interpreter; gives the wheel's `cpXY` tag.
    pub version: String,
    pub flavour: Flavour,
    /// More `configure` arguments (`--with-pydebug`); part of the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configure: Vec<String>,
}

impl Interpreter {
    /// `$PYTHON_<NAME>`'s name: upper case, `.` and `-` as `_` (`3.15t` is `PYTHON_3_15T`).
    pub fn variable(&self) -> String {
        variable_of(&self.name)
    }

    /// The wheel tag of an abi3 wheel built here: `cp315` for 3.15.
    pub fn python_tag(&self) -> String {
        format!("cp{}", self.version.replace('.', ""))
    }
}

fn variable_of(name: &str) -> String {
    let up: String = name
        .chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("PYTHON_{up}")
}

/// What a toolchain stack provides, and so how the recipes use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleKind {
    /// A Python package built from its checkout into a wheel on each interpreter's
    /// environment and installed there (setuptools, cffi, a build backend), in list order.
    Python,
    /// maturin: built once with cargo, packed as its own `bin` wheel, installed into every
    /// environment as the build backend.
    Maturin,
    /// Rust crates swapped into every maturin target through `[patch.crates-io]` (PyO3).
    CargoPatch,
    /// A Python package only the builds of the backends that name it need (Cython, a code
    /// generator): built from its checkout into a wheel in each such wheel step and installed
    /// in that step's own venv over the builder's environment. No environment and no test
    /// venv gets it, so adding one changes no environment's key.
    BuildPython,
}

/// One toolchain role and the stack that plays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub role: String,
    pub stack: String,
    pub kind: RoleKind,
    /// A Python role the installed wheels need at run time too (cffi): the test
    /// environments get the stack's wheel, not the index's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub runtime: bool,
    /// A `python` role's own dependencies from the index (project names, each pinned in
    /// xtask/constraints.txt): its wheel is installed without dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
}

/// A PEP 517 build backend a target's `kind:` names. Every backend's wheel is built the same
/// way: the stacks of its `roles` (in the builder's environment, and PyO3's crates for a
/// `cargo-patch` role), its `requires` from the package index pinned by the constraints
/// file, no build isolation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    pub name: String,
    /// Toolchain roles the backend's builds use; each must be in `toolchain`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Build tools from the package index (the backend itself when no stack plays it, CMake,
    /// ninja, meson): project names, each pinned in xtask/constraints.txt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// What a failed build's log means: the first whose `when` the log contains adds its
    /// `say` to the error (a backend without abi3t support, named with its stack).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnoses: Vec<Diagnosis>,
}

/// A line a backend writes when it cannot do what the experiment asks, and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnosis {
    pub when: String,
    pub say: String,
}

/// Where the wheels are built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wheels {
    /// The interpreter each target's one wheel is built on: the oldest free-threaded one,
    /// so the wheel's `cpXY` tag is the oldest it claims.
    pub build_on: String,
}

/// How the wheels are tested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tests {
    /// Each installs the wheel into a fresh venv of every interpreter and imports it.
    pub installers: Vec<Installer>,
    /// The installer of the venv the target's own test suite runs in, once per interpreter.
    pub suite: Installer,
    /// The interpreters wheels are tested on (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<String>>,
}

/// A wheel that installers must refuse where it does not belong: an abi3-only wheel (no
/// abi3t) of a target, built on a GIL-enabled interpreter with the released toolchain from the
/// constraints file, is installed with every installer into every interpreter; the free-threaded
/// ones must refuse it, the GIL-enabled ones accept it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub target: String,
    pub build_on: String,
    /// The released build tools it is built with (`setuptools==84.2.1`), pinned here rather
    /// than in the constraints file, where the stacks' own builds of them would clash.
    pub requires: Vec<String>,
}

/// `experiment.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub version: u64,
    pub interpreters: Vec<Interpreter>,
    pub toolchain: Vec<Role>,
    /// The build backends targets may name.
    #[serde(default)]
    pub backends: Vec<Backend>,
    pub wheels: Wheels,
    pub tests: Tests,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<Refusal>,
}

/// Step-name segments an interpreter may not take: they would make two steps share a name.
const RESERVED: [&str; 6] = ["wheel", "test", "install", "abi3-wheel", "refusal", "env"];

/// `configure` arguments the recipe sets itself.
const RECIPE_FLAGS: [&str; 4] = ["--prefix", "--disable-gil", "--enable-gil", "--exec-prefix"];

impl Experiment {
    pub fn interpreter(&self, name: &str) -> Option<&Interpreter> {
        self.interpreters.iter().find(|i| i.name == name)
    }

    /// The interpreter the wheels are built on.
    pub fn builder(&self) -> &Interpreter {
        // `parse` checked that it exists.
        self.interpreter(&self.wheels.build_on)
            .unwrap_or(&self.interpreters[0])
    }

    /// The interpreters wheels are tested on, in the order listed.
    pub fn tested(&self) -> Vec<&Interpreter> {
        match &self.tests.on {
            None => self.interpreters.iter().collect(),
            Some(on) => self
                .interpreters
                .iter()
                .filter(|i| on.contains(&i.name))
                .collect(),
        }
    }

    /// The roles of one kind, in list order.
    pub fn roles(&self, kind: RoleKind) -> impl Iterator<Item = &Role> {
        self.toolchain.iter().filter(move |r| r.kind == kind)
    }

    /// The one role of a kind there may be at most one of.
    pub fn role(&self, kind: RoleKind) -> Option<&Role> {
        self.roles(kind).next()
    }

    pub fn backend(&self, name: &str) -> Option<&Backend> {
        self.backends.iter().find(|b| b.name == name)
    }

    /// The roles a backend uses, in its order (`parse` checked that they exist).
    pub fn backend_roles<'a>(&'a self, b: &'a Backend) -> impl Iterator<Item = &'a Role> + 'a {
        b.roles
            .iter()
            .filter_map(|name| self.toolchain.iter().find(|r| &r.role == name))
    }

    /// A backend's `build-python` roles (Cython), which its wheel steps build themselves.
    pub fn build_roles<'a>(&'a self, b: &'a Backend) -> impl Iterator<Item = &'a Role> + 'a {
        self.backend_roles(b)
            .filter(|r| r.kind == RoleKind::BuildPython)
    }

    /// Every stack the experiment names, for the existence check.
    pub fn stacks(&self) -> BTreeSet<&str> {
        self.interpreters
            .iter()
            .map(|i| i.stack.as_str())
            .chain(self.toolchain.iter().map(|r| r.stack.as_str()))
            .chain(self.refusals.iter().map(|r| r.target.as_str()))
            .collect()
    }
}

/// Parses and checks `experiment.yaml`; errors name the file and what is wrong.
pub fn parse(file: &str, text: &str) -> Result<Experiment> {
    if let Some((line, column)) = super::guard::too_deep(text, super::MAX_DEPTH) {
        bail!(
            "{file}:{line}:{column}: nested deeper than {} levels",
            super::MAX_DEPTH
        );
    }
    let e: Experiment = serde_yaml::from_str(text).map_err(|err| {
        let msg = super::guard::sanitize(&super::strip_location(&err.to_string()));
        match err.location() {
            Some(loc) => anyhow::anyhow!("{file}:{}:{}: {msg}", loc.line(), loc.column()),
            None => anyhow::anyhow!("{file}: {msg}"),
        }
    })?;
    check(&e).map_err(|why| anyhow::anyhow!("{file}: {why}"))?;
    Ok(e)
}

fn check(e: &Experiment) -> Result<(), String> {
    let t = super::guard::token;
    if e.version != 1 {
        return Err(format!(
            "`version: {}`: this tool reads version 1",
            e.version
        ));
    }
    if e.interpreters.is_empty() {
        return Err("`interpreters` is empty: the experiment needs at least one".into());
    }
    let mut names = BTreeSet::new();
    let mut vars = BTreeSet::new();
    for i in &e.interpreters {
        let ok = !i.name.is_empty()
            && i.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            && !i.name.starts_with(['.', '-']);
        if !ok {
            return Err(format!(
                "interpreter name `{}` must be letters, digits, `.`, `-`, `_` (it names steps and a variable)",
                t(&i.name)
            ));
        }
        if RESERVED.contains(&i.name.as_str()) {
            return Err(format!(
                "interpreter name `{}` is a step kind; choose another",
                i.name
            ));
        }
        if !names.insert(i.name.as_str()) {
            return Err(format!("two interpreters are named `{}`", i.name));
        }
        if !vars.insert(i.variable()) {
            return Err(format!(
                "interpreters `{}` and another both give the variable `${}`",
                i.name,
                i.variable()
            ));
        }
        let v: Vec<&str> = i.version.split('.').collect();
        if v.len() != 2
            || v.iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "interpreter `{}`: `version: {}` is not `major.minor` (3.15)",
                i.name,
                t(&i.version)
            ));
        }
        for arg in &i.configure {
            let flag = arg.split('=').next().unwrap_or("");
            if RECIPE_FLAGS.contains(&flag) {
                return Err(format!(
                    "interpreter `{}`: `{flag}` is set by the recipe (the prefix is the cache entry; the GIL follows `flavour`)",
                    i.name
                ));
            }
            if !arg.starts_with("--") {
                return Err(format!(
                    "interpreter `{}`: configure argument `{}` does not begin with `--`",
                    i.name,
                    t(arg)
                ));
            }
        }
    }
    let known = |what: &str, name: &str| -> Result<&Interpreter, String> {
        e.interpreter(name).ok_or_else(|| {
            format!(
                "{what} names interpreter `{}`, which `interpreters` does not have ({})",
                t(name),
                e.interpreters
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    };
    if !known("`wheels.build_on`", &e.wheels.build_on)?
        .flavour
        .free_threaded()
    {
        return Err(format!(
            "`wheels.build_on: {}` is GIL-enabled; an abi3.abi3t wheel is built on a free-threaded interpreter",
            e.wheels.build_on
        ));
    }
    if let Some(on) = &e.tests.on {
        for name in on {
            known("`tests.on`", name)?;
        }
    }
    if e.tests.installers.is_empty() {
        return Err("`tests.installers` is empty".into());
    }
    if !e.tests.installers.contains(&e.tests.suite) {
        return Err(format!(
            "`tests.suite: {}` is not one of `tests.installers`",
            e.tests.suite
        ));
    }
    let mut roles = BTreeSet::new();
    for r in &e.toolchain {
        if !valid_project_name(&r.role) {
            return Err(format!(
                "toolchain role name `{}` must be letters, digits, `.`, `-`, `_` (it names folders under target/)",
                t(&r.role)
            ));
        }
        // Case-blind: a role names folders, and macOS and Windows fold case.
        if !roles.insert(r.role.to_ascii_lowercase()) {
            return Err(format!(
                "two toolchain entries play the role `{}`",
                t(&r.role)
            ));
        }
        if !r.requires.is_empty() && !matches!(r.kind, RoleKind::Python | RoleKind::BuildPython) {
            return Err(format!(
                "toolchain role `{}`: `requires` is for `kind: python` and `kind: build-python` roles",
                r.role
            ));
        }
        if let Some(bad) = r.requires.iter().find(|q| !valid_project_name(q)) {
            return Err(format!(
                "toolchain role `{}`: `requires` entry `{}` is not a project name (pin its version in xtask/constraints.txt)",
                r.role,
                t(bad)
            ));
        }
        if r.runtime && r.kind != RoleKind::Python {
            return Err(format!(
                "toolchain role `{}`: `runtime` is for `kind: python` roles",
                r.role
            ));
        }
    }
    for kind in [RoleKind::Maturin, RoleKind::CargoPatch] {
        if e.roles(kind).count() > 1 {
            return Err(format!(
                "two toolchain roles have `kind: {}`; there can be one",
                serde_yaml::to_string(&kind).unwrap_or_default().trim()
            ));
        }
    }
    if e.backends.is_empty() {
        return Err("`backends` is missing or empty: the build backends a target's `kind:` names are data now; add `backends:` with, for the targets this repository has, `{name: setuptools, roles: [setuptools, cffi]}` and `{name: maturin, roles: [maturin, pyo3]}` (docs/stack-format.md, \"experiment.yaml\")".into());
    }
    let mut backends = BTreeSet::new();
    for b in &e.backends {
        if !valid_project_name(&b.name) {
            return Err(format!(
                "backend name `{}` must be letters, digits, `.`, `-`, `_`",
                t(&b.name)
            ));
        }
        if !backends.insert(b.name.as_str()) {
            return Err(format!("two backends are named `{}`", b.name));
        }
        for role in &b.roles {
            if !roles.contains(role.as_str()) {
                return Err(format!(
                    "backend `{}` uses the role `{}`, which `toolchain` does not have ({})",
                    b.name,
                    t(role),
                    e.toolchain
                        .iter()
                        .map(|r| r.role.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if let Some(d) = b.diagnoses.iter().find(|d| d.when.trim().is_empty()) {
            return Err(format!(
                "backend `{}`: a diagnosis with an empty `when` would match every log (its `say`: {})",
                b.name,
                t(&d.say)
            ));
        }
        if let Some(bad) = b.requires.iter().find(|q| !valid_project_name(q)) {
            return Err(format!(
                "backend `{}`: `requires` entry `{}` is not a project name (pin its version in xtask/constraints.txt)",
                b.name,
                t(bad)
            ));
        }
    }
    for r in &e.refusals {
        if known("a refusal", &r.build_on)?.flavour.free_threaded() {
            return Err(format!(
                "refusal of `{}`: `build_on: {}` is free-threaded; the abi3-only wheel is built on a GIL-enabled interpreter",
                t(&r.target),
                r.build_on
            ));
        }
        if let Some(bad) = r
            .requires
            .iter()
            .find(|q| !q.contains("==") || q.starts_with('-'))
        {
            return Err(format!(
                "refusal of `{}`: `requires` entry `{}` is not pinned as `name==version`",
                t(&r.target),
                t(bad)
            ));
        }
    }
    Ok(())
}

/// A package index project name (PEP 508's: letters, digits, `.`, `-`, `_`, starting and
/// ending with a letter or digit).
fn valid_project_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 100
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// The verify variables the experiment used to have, and what replaced them.
pub fn renamed_variable(e: &Experiment, name: &str) -> Option<String> {
    let flavour = match name {
        "PYTHON_DEFAULT" => Flavour::Default,
        "PYTHON_FREETHREADED" => Flavour::Freethreaded,
        _ => return None,
    };
    let now: Vec<String> = e
        .interpreters
        .iter()
        .filter(|i| i.flavour == flavour)
        .map(|i| format!("${}", i.variable()))
        .collect();
    Some(format!(
        "`${name}` was replaced by one variable per interpreter of experiment.yaml ({}), or `$PYTHON` to run the command once per interpreter",
        now.join(", ")
    ))
}

#[cfg(test)]
#[path = "experiment_tests.rs"]
mod tests;
