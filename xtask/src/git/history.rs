//! Reading upstream history for `sync --update`: patch ids, which upstream commits touched
//! which files, whether a change is already present, and `git range-diff`.

use std::path::Path;

use anyhow::{Context, Result};
use xshell::cmd;

use super::Checkout;
use super::cli::{self, FIXED_CONFIG};

/// An upstream commit, as evidence in reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamChange {
    pub id: String,
    pub subject: String,
}

impl Checkout<'_> {
    /// `git patch-id --stable` of a patch file, if it has a diff.
    pub fn patch_id_of_file(&self, patch: &Path) -> Result<Option<String>> {
        let text = fs_err::read(patch).with_context(|| format!("reading `{}`", patch.display()))?;
        let (sh, dir) = (self.sh, &self.dir);
        let out =
            cli::read(cmd!(sh, "git -C {dir} {FIXED_CONFIG...} patch-id --stable").stdin(text))?;
        Ok(out.split_whitespace().next().map(str::to_string))
    }

    /// Patch ids of the non-merge commits in `from..to`, each diff limited to `paths` (so a
    /// patch merged upstream inside a larger commit still matches), with the commit.
    pub fn upstream_patch_ids(
        &self,
        from: &str,
        to: &str,
        paths: &[String],
    ) -> Result<Vec<(String, UpstreamChange)>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let range = format!("{from}..{to}");
        let (sh, dir) = (self.sh, &self.dir);
        let log = cli::read(cmd!(sh, "git -C {dir} {FIXED_CONFIG...} log --no-merges --no-renames -p --full-index --format=commit%x20%H%n%s --end-of-options {range} -- {paths...}"))
            .with_context(|| format!("reading upstream history {range}"))?;
        let mut subjects = std::collections::HashMap::new();
        let mut lines = log.lines();
        while let Some(line) = lines.next() {
            if let Some(id) = line.strip_prefix("commit ") {
                subjects.insert(id.to_string(), lines.next().unwrap_or("").to_string());
            }
        }
        let ids = cli::read(
            cmd!(sh, "git -C {dir} {FIXED_CONFIG...} patch-id --stable").stdin(log.as_bytes()),
        )?;
        Ok(ids
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(pid, id)| {
                let subject = subjects.get(id).cloned().unwrap_or_default();
                (
                    pid.to_string(),
                    UpstreamChange {
                        id: id.to_string(),
                        subject,
                    },
                )
            })
            .collect())
    }

    /// Upstream commits in `from..to` that touch any of `paths`, newest first.
    pub fn commits_touching(
        &self,
        from: &str,
        to: &str,
        paths: &[String],
    ) -> Result<Vec<UpstreamChange>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let (sh, dir) = (self.sh, &self.dir);
        let range = format!("{from}..{to}");
        let out = cli::read(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} log --no-merges --format=%H%x20%s --end-of-options {range} -- {paths...}"
        ))?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, s)| UpstreamChange {
                id: id.to_string(),
                subject: s.to_string(),
            })
            .collect())
    }

    /// The diff of one commit against its parent, in the form patch files use.
    pub fn commit_diff(&self, id: &str) -> Result<String> {
        let (sh, dir) = (self.sh, &self.dir);
        cli::read(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} diff-tree -p --no-renames --full-index --no-color --no-ext-diff --root --end-of-options {id}"
        ))
    }

    /// `git range-diff` header lines (one per patch: `=` same, `!` changed, `<` gone, `>` new).
    pub fn range_diff_summary(&self, old: (&str, &str), new: (&str, &str)) -> Result<Vec<String>> {
        let (a, b) = (
            format!("{}..{}", old.0, old.1),
            format!("{}..{}", new.0, new.1),
        );
        let (sh, dir) = (self.sh, &self.dir);
        let out = cli::read(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} range-diff --no-color --no-patch --end-of-options {a} {b}"
        ))?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Turns on git's rerere with automatic staging, recordings kept in this checkout.
    pub fn enable_rerere(&self) -> Result<()> {
        let (sh, dir) = (self.sh, &self.dir);
        cli::run(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} config rerere.enabled true"
        ))?;
        cli::run(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} config rerere.autoUpdate true"
        ))?;
        Ok(())
    }

    /// A scratch clone sharing this checkout's objects, for dry runs.
    pub fn shared_clone(&self, into: &Path) -> Result<Checkout<'_>> {
        let sh = self.sh;
        let from = &self.dir;
        let _ = fs_err::remove_dir_all(into);
        cli::run(cmd!(
            sh,
            "git {FIXED_CONFIG...} clone --quiet --shared --no-checkout -- {from} {into}"
        ))?;
        let rr = self.git_dir().join("rr-cache");
        if rr.is_dir() {
            let to = into.join(".git").join("rr-cache");
            cmd!(sh, "cp -R {rr} {to}").quiet().run()?;
        }
        Ok(Checkout::new(sh, into))
    }
}

impl Checkout<'_> {
    /// Whether the index differs from HEAD.
    pub fn staged_changes(&self) -> Result<bool> {
        let (sh, dir) = (self.sh, &self.dir);
        let out = cli::output(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} diff --cached --quiet"
        ))?;
        Ok(!out.status.success())
    }
}
