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

/// The variables a verify command may use, and where their values come from.
pub const VARIABLES: [&str; 5] = [
    "STACK",
    "WORK",
    "CONSTRAINTS",
    "PYTHON_DEFAULT",
    "PYTHON_FREETHREADED",
];

/// Replaces `$NAME` words (a whole word, or its start before `/`) with their values; an
/// unknown or unavailable name is an error that says which.
pub fn expand(command: &str, vars: &BTreeMap<String, String>) -> Result<Vec<String>> {
    command
        .split_whitespace()
        .map(|word| {
            let Some(rest) = word.strip_prefix('$') else {
                return Ok(word.to_string());
            };
            let (name, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let name = name.trim_start_matches('{').trim_end_matches('}');
            if !VARIABLES.contains(&name) {
                bail!(
                    "unknown variable `${name}` in `{command}` (known: {})",
                    VARIABLES.map(|v| format!("${v}")).join(", ")
                );
            }
            match vars.get(name) {
                Some(value) => Ok(format!("{value}{tail}")),
                None => bail!(
                    "`${name}` in `{command}` is not available: {}",
                    unavailable(name)
                ),
            }
        })
        .collect()
}

fn unavailable(name: &str) -> &'static str {
    if name.starts_with("PYTHON_") {
        "build-all has not built this CPython checkout yet; run `cargo xtask build-all --only cpython`"
    } else {
        "not set for this run"
    }
}

/// The variables for one project: its paths, and the interpreters build-all has built.
pub fn variables(layout: &Layout, project: &Project) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    vars.insert("STACK".into(), path(project.dir.clone()));
    let work = layout.xtask_target().join("verify").join(&project.name);
    std::fs::create_dir_all(&work).with_context(|| format!("creating `{}`", work.display()))?;
    vars.insert("WORK".into(), path(work));
    vars.insert(
        "CONSTRAINTS".into(),
        path(layout.root.join("xtask").join("constraints.txt")),
    );
    // `$PYTHON_X` or `${PYTHON_X}`, as `expand` reads them.
    let needs_python = project
        .stack
        .verify
        .iter()
        .flat_map(|c| c.split_whitespace())
        .any(|w| w.starts_with("$PYTHON_") || w.starts_with("${PYTHON_"));
    if needs_python {
        for (name, python) in super::interpreters::interpreters(layout)? {
            vars.insert(format!("PYTHON_{}", name.to_uppercase()), path(python));
        }
    }
    Ok(vars)
}

/// Runs the commands in `dir` in order, stopping at the first that fails; the output of a
/// failed one is printed.
pub fn run_checks(
    sh: &Shell,
    dir: &Path,
    commands: &[String],
    vars: &BTreeMap<String, String>,
    extra_env: &[(&str, &Path)],
    echo: bool,
) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    for command in commands {
        let words = expand(command, vars)?;
        let Some((program, args)) = words.split_first() else {
            continue;
        };
        let sh2 = sh.clone();
        sh2.change_dir(dir);
        for (k, v) in vars {
            sh2.set_var(format!("XTASK_{k}"), v);
        }
        for (k, v) in extra_env {
            sh2.set_var(k, v);
        }
        if echo {
            crate::outln!("$ {command}");
        }
        let t = Instant::now();
        let result = cmd!(sh2, "{program} {args...}")
            .quiet()
            .ignore_status()
            .output()
            .with_context(|| format!("running `{command}` in `{}`", dir.display()))?;
        let passed = result.status.success();
        out.push(Check {
            command: command.clone(),
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
        if !passed {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("STACK", "/r/patches/p"), ("WORK", "/r/target/w")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_known_variables_in_whole_words_and_paths() {
        let words = expand("bash $STACK/verify.sh ${WORK} plain$STACK", &vars()).unwrap();
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
        let e = expand("echo $HOME", &vars()).unwrap_err().to_string();
        assert!(e.contains("unknown variable `$HOME`"), "{e}");
        assert!(e.contains("$PYTHON_FREETHREADED"), "{e}");
    }

    #[test]
    fn missing_interpreter_says_how_to_build_it() {
        let e = expand("$PYTHON_DEFAULT -c pass", &vars())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cargo xtask build-all --only cpython"), "{e}");
    }
}
