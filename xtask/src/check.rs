//! `cargo xtask check`: the stack-format lint CI runs (valid `stack.yaml`, series and files
//! agree, every patch parses, says its `Upstream-Status`, and stays inside the tree).

use anyhow::{Result, bail};
use xshell::Shell;

use crate::stack::{self, Layout, Project};

/// Lint every stack under `patches/`: the YAML, the series against the files, each patch.
///
/// Problems are printed as `path[:line]: message`, one per line; the exit code is 1 if any.
#[derive(Debug, clap::Args)]
pub struct Args {}

impl Args {
    pub fn run(&self, _sh: &Shell, layout: &Layout) -> Result<()> {
        let projects = layout.projects()?;
        if projects.is_empty() {
            bail!("no stacks: expected `patches/<project>/stack.yaml`");
        }
        let mut problems = Vec::new();
        let mut patches = 0;
        for name in &projects {
            match Project::load(layout, name) {
                Ok(project) => {
                    patches += project.stack.series.len();
                    problems.extend(
                        stack::lint(layout, &project)?
                            .iter()
                            .map(ToString::to_string),
                    );
                }
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        for p in &problems {
            eprintln!("{p}");
        }
        if !problems.is_empty() {
            bail!(
                "{} problem(s) in {} stack(s)",
                problems.len(),
                projects.len()
            );
        }
        crate::outln!("ok: {} stack(s), {patches} patch(es)", projects.len());
        Ok(())
    }
}
