//! `cargo xtask`: patch stacks against the Python ABI toolchain, and the experiment built
//! from them. This file is the table of contents: one subcommand per module.

mod absorb;
mod audit;
mod build_all;
mod changelog;
mod check;
mod export;
mod fsx;
mod git;
mod lock;
mod manifest;
mod merge_reports;
mod ops;
mod patch;
mod pypi;
mod save;
mod stable_abi;
mod stack;
mod status;
mod sync;
mod verify;

#[cfg(test)]
mod tidy;

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    /// A help text's indented lines (lists of variables, examples) keep their own lines:
    /// clap reflows a doc comment into paragraphs unless the command keeps it verbatim.
    #[test]
    fn indented_help_lines_stay_lines() {
        let mut cli = super::Cli::command();
        for name in ["verify", "audit", "merge-reports"] {
            let sub = cli.find_subcommand_mut(name).unwrap();
            let help = sub.render_long_help().to_string();
            let indented = help
                .lines()
                .filter(|l| l.starts_with("  $") || l.starts_with("  cargo xtask"))
                .count();
            assert!(
                indented >= 2,
                "{name} --help lost its indented lines:\n{help}"
            );
        }
    }
}

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use xshell::Shell;

use crate::stack::Layout;

/// Keep versioned patch stacks against CPython, PyO3, maturin, setuptools, cffi and the
/// packages that test them, and turn them into checkouts.
///
/// Stacks live in `patches/<project>/` (a `stack.yaml` and its patch files); checkouts are
/// made in `checkouts/<project>`. See docs/workflow.md for editing a stack.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    /// Repository root to work on (default: the workspace this tool was built from).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    BuildAll(build_all::Args),
    ExportPrs(export::Args),
    Sync(sync::Args),
    Save(save::Args),
    Status(status::Args),
    Check(check::Args),
    Verify(verify::Args),
    Audit(audit::Args),
    MergeReports(merge_reports::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(stopped) = e.downcast_ref::<ops::Stopped>() {
                eprintln!("stopped: {stopped}");
                return ExitCode::from(3);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = match cli.root {
        Some(root) => root,
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    let root = root
        .canonicalize()
        .with_context(|| format!("opening root `{}`", root.display()))?;
    let sh = Shell::new()?;
    sh.change_dir(&root);
    let layout = Layout { root };
    match cli.command {
        Command::BuildAll(args) => args.run(&sh, &layout),
        Command::ExportPrs(args) => args.run(&sh, &layout),
        Command::Sync(args) => args.run(&sh, &layout),
        Command::Save(args) => args.run(&sh, &layout),
        Command::Status(args) => args.run(&sh, &layout),
        Command::Check(args) => args.run(&sh, &layout),
        Command::Verify(args) => args.run(&sh, &layout),
        Command::Audit(args) => args.run(&sh, &layout),
        Command::MergeReports(args) => args.run(&sh, &layout),
    }
}
