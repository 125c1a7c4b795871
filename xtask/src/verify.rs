//! `cargo xtask verify`: a stack's own checks (`verify:` in its stack.yaml) on its patched
//! checkout. export-prs runs the same commands on each pull-request branch.

use anyhow::{Result, bail};
use xshell::Shell;

use crate::ops::checks::{run_checks, variables};
use crate::stack::{Layout, Project};

/// Run each stack's `verify:` commands in its checkout (synced first) and say which passed.
///
/// Commands are split on whitespace and run without a shell, from the checkout. Words may
/// name these variables, which are also in the commands' environment as `XTASK_<NAME>`:
///
///   $STACK                the stack's folder, patches/<project>
///   $WORK                 scratch space kept between runs, target/xtask/verify/<project>
///   $CONSTRAINTS          xtask/constraints.txt, the pinned Python tools
///   $PYTHON_<NAME>        the interpreter experiment.yaml names <name> ($PYTHON_3_15T)
///   $PYTHON, $INTERPRETER a command naming them runs once per interpreter (a CPython
///                         stack's own interpreters, or all): its python and its name
///
/// The interpreters are the ones `cargo xtask build-all` built from the current checkouts
/// of their CPython stacks; build them with `cargo xtask build-all --only cpython`.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Stacks to verify (default: every stack that has `verify:` commands).
    pub projects: Vec<String>,
}

impl Args {
    pub fn run(&self, sh: &Shell, layout: &Layout) -> Result<()> {
        let names = layout.select(&self.projects)?;
        let mut failed = Vec::new();
        let mut ran = 0;
        for name in &names {
            let manifest = Project::load(layout, name)?;
            if manifest.stack.verify.is_empty() {
                if !self.projects.is_empty() {
                    crate::outln!(
                        "{name}: no verify commands in {}",
                        layout.show(&manifest.manifest_path)
                    );
                }
                continue;
            }
            // Read again under the lock, which stays held while the checks run.
            let (project, _lock) = crate::ops::locked_and_synced(
                sh,
                layout,
                name,
                "cargo xtask verify",
                "verifying it",
            )?;
            let vars = variables(layout, &project)?;
            let dir = layout.checkout(name);
            let checks = run_checks(sh, &dir, &project.stack.verify, &vars, &[], true)?;
            ran += 1;
            for c in &checks {
                crate::outln!(
                    "{name}: {} {}  ({:.1} s)",
                    if c.passed { "passed" } else { "FAILED" },
                    c.command,
                    c.seconds
                );
            }
            if checks.iter().any(|c| !c.passed) {
                failed.push(name.clone());
            }
        }
        if ran == 0 && self.projects.is_empty() {
            crate::outln!("no stack has verify commands");
        }
        if !failed.is_empty() {
            bail!("verification failed for {}", failed.join(", "));
        }
        Ok(())
    }
}
