//! `cargo xtask merge-reports`: one report from the `report.json` files of several build-all
//! runs (CI runs one job per target), written like build-all's own.

use std::path::PathBuf;

use anyhow::Result;
use xshell::Shell;

use crate::stack::Layout;

/// Merge the `report.json` files of several `build-all` runs into one report.
///
/// CI's e2e workflow runs one job per target (`build-all --only <target>`); each job's
/// report holds its target's cells and not-run rows for the others. The merged report takes
/// for each cell the row that says most: a result its own job ran, then an earlier result
/// (cached), then not-run. Writes `report.json` and `report.md` (survey, the cells that did
/// not pass by class, the matrix) to `target/xtask/merged/`, and prints the survey; with
/// `GITHUB_STEP_SUMMARY` set, appends the survey to the job summary too. Reports of another
/// schema version, or made with other tools (the `tools` section) or from other stacks, are
/// refused.
///
/// Exits 1 when a merged cell did not pass.
///
/// Examples:
///   cargo xtask merge-reports reports/*/report.json
///   cargo xtask merge-reports a/report.json b/report.json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// `report.json` files written by `cargo xtask build-all`.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
}

impl Args {
    pub fn run(&self, _sh: &Shell, layout: &Layout) -> Result<()> {
        // Under target/, like everything the tool writes.
        let out = layout.xtask_target().join("merged");
        let merged = crate::build_all::merge_reports(&self.reports, &out)?;
        crate::outln!("{}", merged.survey);
        crate::outln!("merged report: {}", layout.show(&out.join("report.md")));
        if merged.failing > 0 {
            anyhow::bail!("{} cell(s) did not pass", merged.failing);
        }
        Ok(())
    }
}
