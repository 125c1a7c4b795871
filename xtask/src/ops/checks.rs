//! A stack's own checks (`verify:` in its stack.yaml): the variables they may name and
//! running them in a folder. `verify` runs them on a checkout, export-prs on each branch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use crate::stack::{Layout, Project};

/// One command's outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub command: String,
    pub passed: bool,
    pub seconds: f64,
}

/// The variables every verify command may use; besides them, `$PYTHON_<NAME>` for each
/// interpreter of experiment.yaml, and `$PYTHON` and `$INTERPRETER`, which make the command
/// run once per interpreter (see [`Vars::for_each`]).
pub const VARIABLES: [&str; 3] = ["STACK", "WORK", "CONSTRAINTS"];

/// The variables of one project's checks: fixed values, and the interpreters they may run on.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub values: BTreeMap<String, String>,
    /// `$PYTHON_<NAME>` names experiment.yaml gives, built or not.
    pub interpreter_vars: Vec<String>,
    /// The interpreters a `$PYTHON` command runs on: name and python (or why it is not
    /// available), in order.
    pub each: Vec<(String, Result<String, String>)>,
    /// Why a `$PYTHON_<NAME>` has no value: its interpreter is not built.
    pub unbuilt: BTreeMap<String, String>,
    /// Why the interpreters are not available, when they are not (nothing built yet, no
    /// experiment.yaml): said when a command needs them.
    pub missing: Option<String>,
    /// Names that were replaced, and by what.
    pub renamed: BTreeMap<String, String>,
}

/// Whether a command runs once per interpreter: it names `$PYTHON` or `$INTERPRETER`.
pub fn per_interpreter(command: &str) -> bool {
    command.split_whitespace().any(|w| {
        let name = var_name(w).unwrap_or("");
        name == "PYTHON" || name == "INTERPRETER"
    })
}

/// `NAME` of a `$NAME`, `${NAME}` or `$NAME/tail` word.
fn var_name(word: &str) -> Option<&str> {
    let rest = word.strip_prefix('$')?;
    let name = &rest[..rest.find('/').unwrap_or(rest.len())];
    Some(name.trim_start_matches('{').trim_end_matches('}'))
}

/// One run of a command: the interpreter it runs on (for a `$PYTHON` command) and the
/// variables' values.
pub type Run = (Option<String>, BTreeMap<String, String>);

impl Vars {
    /// The values for one run of a command: for a `$PYTHON` command once per interpreter
    /// (`Some(name)` with `PYTHON` and `INTERPRETER` set), else once (`None`).
    pub fn for_each(&self, command: &str) -> Result<Vec<Run>> {
        if !per_interpreter(command) {
            return Ok(vec![(None, self.values.clone())]);
        }
        if self.each.is_empty() {
            bail!(
                "`{command}` runs on each interpreter, and none is available: {}",
                self.missing
                    .as_deref()
                    .unwrap_or("experiment.yaml names none")
            );
        }
        if let Some((_, Err(why))) = self.each.iter().find(|(_, p)| p.is_err()) {
            bail!("`{command}` runs on each interpreter: {why}");
        }
        Ok(self
            .each
            .iter()
            .filter_map(|(name, python)| {
                let python = python.as_ref().ok()?;
                let mut v = self.values.clone();
                v.insert("PYTHON".into(), python.clone());
                v.insert("INTERPRETER".into(), name.clone());
                Some((Some(name.clone()), v))
            })
            .collect())
    }

    fn known(&self, name: &str) -> bool {
        VARIABLES.contains(&name)
            || self.interpreter_vars.iter().any(|v| v == name)
            || name == "PYTHON"
            || name == "INTERPRETER"
    }
}

/// Replaces `$NAME` words (a whole word, or its start before `/`) with their values; an
/// unknown or unavailable name is an error that says which.
pub fn expand(
    command: &str,
    vars: &Vars,
    values: &BTreeMap<String, String>,
) -> Result<Vec<String>> {
    command
        .split_whitespace()
        .map(|word| {
            let Some(name) = var_name(word) else {
                return Ok(word.to_string());
            };
            let rest = &word[1..];
            let tail = &rest[rest.find('/').unwrap_or(rest.len())..];
            if let Some(why) = vars.renamed.get(name) {
                bail!("in `{command}`: {why}");
            }
            if let (false, true, Some(why)) =
                (vars.known(name), name.starts_with("PYTHON_"), &vars.missing)
            {
                bail!("`${name}` in `{command}` is not available: {why}");
            }
            if !vars.known(name) {
                let mut known: Vec<String> = VARIABLES.iter().map(|v| format!("${v}")).collect();
                known.extend(["$PYTHON".to_string(), "$INTERPRETER".to_string()]);
                known.extend(vars.interpreter_vars.iter().map(|v| format!("${v}")));
                bail!(
                    "unknown variable `${name}` in `{command}` (known: {})",
                    known.join(", ")
                );
            }
            match values.get(name) {
                Some(value) => Ok(format!("{value}{tail}")),
                None => bail!(
                    "`${name}` in `{command}` is not available: {}",
                    vars.unbuilt
                        .get(name)
                        .or(vars.missing.as_ref())
                        .map_or("not set for this run", String::as_str)
                ),
            }
        })
        .collect()
}

/// The variables for one project: its paths, and the interpreters build-all has built. A
/// `$PYTHON` command of a CPython stack runs on the interpreters built from that stack; of
/// any other stack, on every interpreter.
pub fn variables(layout: &Layout, project: &Project) -> Result<Vars> {
    let mut vars = Vars::default();
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    vars.values
        .insert("STACK".into(), path(project.dir.clone()));
    let work = layout.xtask_target().join("verify").join(&project.name);
    std::fs::create_dir_all(&work).with_context(|| format!("creating `{}`", work.display()))?;
    vars.values.insert("WORK".into(), path(work));
    vars.values.insert(
        "CONSTRAINTS".into(),
        path(layout.root.join("xtask").join("constraints.txt")),
    );
    let words: Vec<&str> = project
        .stack
        .verify
        .iter()
        .chain(project.stack.conventions.iter().flat_map(|c| &c.checks))
        .flat_map(|c| c.split_whitespace())
        .collect();
    let needs_python = words
        .iter()
        .filter_map(|w| var_name(w))
        .any(|n| n.starts_with("PYTHON") || n == "INTERPRETER");
    if !needs_python {
        return Ok(vars);
    }
    let experiment = match crate::stack::load_experiment(layout) {
        Ok(e) => e,
        Err(e) => {
            vars.missing = Some(format!("{e:#}"));
            for old in ["PYTHON_DEFAULT", "PYTHON_FREETHREADED"] {
                vars.renamed.insert(
                    old.into(),
                    format!("`${old}` was replaced by one variable per interpreter of experiment.yaml (`$PYTHON_<NAME>`), or `$PYTHON` to run the command once per interpreter; and {e:#}"),
                );
            }
            return Ok(vars);
        }
    };
    for old in ["PYTHON_DEFAULT", "PYTHON_FREETHREADED"] {
        if let Some(why) = crate::manifest::experiment::renamed_variable(&experiment, old) {
            vars.renamed.insert(old.into(), why);
        }
    }
    vars.interpreter_vars = experiment
        .interpreters
        .iter()
        .map(|i| i.variable())
        .collect();
    let built = match super::interpreters::interpreters(layout) {
        Ok(b) => b,
        Err(e) => {
            vars.missing = Some(format!("{e:#}"));
            return Ok(vars);
        }
    };
    let own: Vec<_> = built
        .iter()
        .filter(|(i, _)| i.stack == project.name)
        .collect();
    for (interp, python) in &built {
        match python {
            Ok(p) => {
                vars.values.insert(interp.variable(), path(p.clone()));
            }
            Err(why) => {
                vars.unbuilt.insert(interp.variable(), why.clone());
            }
        }
    }
    let each = if own.is_empty() {
        built.iter().collect()
    } else {
        own
    };
    vars.each = each
        .into_iter()
        .map(|(i, p)| {
            let p = p.as_ref().map(|p| path(p.clone())).map_err(Clone::clone);
            (i.name.clone(), p)
        })
        .collect();
    Ok(vars)
}

/// Runs the commands in `dir` in order, stopping at the first that fails; the output of a
/// failed one is printed.
pub fn run_checks(
    sh: &Shell,
    dir: &Path,
    commands: &[String],
    vars: &Vars,
    extra_env: &[(&str, &Path)],
    echo: bool,
) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    for command in commands {
        for (on, values) in vars.for_each(command)? {
            let shown = match &on {
                Some(name) => format!("{command}  [{name}]"),
                None => command.clone(),
            };
            let passed = run_one(
                sh, dir, command, &shown, vars, &values, extra_env, echo, &mut out,
            )?;
            if !passed {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// One run of one command; records it in `out` and says whether it passed.
#[allow(clippy::too_many_arguments)]
fn run_one(
    sh: &Shell,
    dir: &Path,
    command: &str,
    shown: &str,
    vars: &Vars,
    values: &BTreeMap<String, String>,
    extra_env: &[(&str, &Path)],
    echo: bool,
    out: &mut Vec<Check>,
) -> Result<bool> {
    {
        let words = expand(command, vars, values)?;
        let Some((program, args)) = words.split_first() else {
            return Ok(true);
        };
        let sh2 = sh.clone();
        sh2.change_dir(dir);
        for (k, v) in values {
            sh2.set_var(format!("XTASK_{k}"), v);
        }
        for (k, v) in extra_env {
            sh2.set_var(k, v);
        }
        if echo {
            crate::outln!("$ {shown}");
        }
        let t = Instant::now();
        let result = cmd!(sh2, "{program} {args...}")
            .quiet()
            .ignore_status()
            .output()
            .with_context(|| format!("running `{command}` in `{}`", dir.display()))?;
        let passed = result.status.success();
        out.push(Check {
            command: shown.to_string(),
            passed,
            seconds: t.elapsed().as_secs_f64(),
        });
        if echo || !passed {
            let text = String::from_utf8_lossy(&result.stdout);
            let err = String::from_utf8_lossy(&result.stderr);
            let tail = |s: &str| {
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(if passed { 3 } else { 40 })..].join("\n")
            };
            for t in [tail(&text), tail(&err)] {
                if !t.trim().is_empty() {
                    crate::outln!("{t}");
                }
            }
        }
        Ok(passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::default();
        for (k, val) in [("STACK", "/r/patches/p"), ("WORK", "/r/target/w")] {
            v.values.insert(k.into(), val.into());
        }
        v.interpreter_vars = vec!["PYTHON_3_15".into(), "PYTHON_3_15T".into()];
        v.renamed.insert(
            "PYTHON_DEFAULT".into(),
            "`$PYTHON_DEFAULT` was replaced by ... ($PYTHON_3_15)".into(),
        );
        v
    }

    fn expand1(command: &str, v: &Vars) -> Result<Vec<String>> {
        expand(command, v, &v.values)
    }

    #[test]
    fn expands_known_variables_in_whole_words_and_paths() {
        let words = expand1("bash $STACK/verify.sh ${WORK} plain$STACK", &vars()).unwrap();
        assert_eq!(
            words,
            [
                "bash",
                "/r/patches/p/verify.sh",
                "/r/target/w",
                "plain$STACK"
            ]
        );
    }

    #[test]
    fn unknown_variable_is_named() {
        let e = expand1("echo $HOME", &vars()).unwrap_err().to_string();
        assert!(e.contains("unknown variable `$HOME`"), "{e}");
        assert!(e.contains("$PYTHON_3_15T"), "{e}");
    }

    #[test]
    fn missing_interpreter_says_why_and_old_names_name_the_new_ones() {
        let mut v = vars();
        v.missing = Some("run `cargo xtask build-all --only cpython/3.15` first".into());
        let e = expand1("$PYTHON_3_15 -c pass", &v).unwrap_err().to_string();
        assert!(
            e.contains("cargo xtask build-all --only cpython/3.15"),
            "{e}"
        );
        let e = expand1("$PYTHON_DEFAULT -c pass", &v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("$PYTHON_3_15"), "{e}");
        let e = v.for_each("$PYTHON -c pass").unwrap_err().to_string();
        assert!(
            e.contains("runs on each interpreter, and none is available"),
            "{e}"
        );
    }

    #[test]
    fn a_python_command_runs_once_per_interpreter() {
        let mut v = vars();
        v.each = vec![
            ("3.15".into(), Ok("/c/a/bin/python3".into())),
            ("3.15t".into(), Ok("/c/b/bin/python3".into())),
        ];
        let runs = v
            .for_each("bash $STACK/v.sh $PYTHON ${INTERPRETER}")
            .unwrap();
        let words: Vec<Vec<String>> = runs
            .iter()
            .map(|(_, values)| {
                expand("bash $STACK/v.sh $PYTHON ${INTERPRETER}", &v, values).unwrap()
            })
            .collect();
        assert_eq!(words[0][2..], ["/c/a/bin/python3", "3.15"]);
        assert_eq!(words[1][2..], ["/c/b/bin/python3", "3.15t"]);
        assert_eq!(runs[1].0.as_deref(), Some("3.15t"));
        assert_eq!(v.for_each("echo $STACK").unwrap().len(), 1);
        assert!(!per_interpreter("echo $PYTHON_3_15"));
        // One of them not built: the command does not run on the others alone.
        v.each[1].1 = Err(
            "`cpython/3.15t` is not built; run `cargo xtask build-all --only cpython/3.15t` first"
                .into(),
        );
        let e = v.for_each("$PYTHON -c pass").unwrap_err().to_string();
        assert!(e.contains("--only cpython/3.15t"), "{e}");
        v.unbuilt
            .insert("PYTHON_3_15T".into(), "`cpython/3.15t` is not built".into());
        let e = expand1("$PYTHON_3_15T -c pass", &v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`cpython/3.15t` is not built"), "{e}");
    }
}
