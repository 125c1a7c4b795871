//! The records an update keeps in a checkout's `.git`: the update under way
//! (`xtask-update.json`, with the stack's backup beside it) and the last dry run, which
//! `sync --update` writes and `status` reads.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::absorb::Outcome;
use crate::git::UpstreamChange;
use crate::manifest::Pin;
use crate::stack::CheckoutState;

/// The record of an update under way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateState {
    pub version: u32,
    pub old_base: String,
    pub new_base: String,
    /// What `base:` in `stack.yaml` becomes.
    pub new_pin: Pin,
    pub old_tip: String,
    pub old_state: Option<CheckoutState>,
    pub commits_between: Option<usize>,
    pub patches: Vec<String>,
    pub done: Vec<(String, Outcome)>,
    /// HEAD after the last recorded step.
    pub head: String,
    /// Waiting for a person at patch `done.len()`.
    pub stopped: bool,
    pub upstream_ids: Vec<(String, UpstreamChange)>,
}

pub const STATE_VERSION: u32 = 1;

pub fn state_path(co: &Path) -> PathBuf {
    co.join(".git").join("xtask-update.json")
}

pub fn backup_dir(co: &Path) -> PathBuf {
    co.join(".git").join("xtask-update-backup")
}

pub fn dry_run_path(co: &Path) -> PathBuf {
    co.join(".git").join("xtask-dry-run.json")
}

impl UpdateState {
    pub fn read(co: &Path) -> Result<Option<UpdateState>> {
        let path = state_path(co);
        let Ok(text) = fs_err::read_to_string(&path) else {
            return Ok(None);
        };
        let st: UpdateState =
            serde_json::from_str(&text).with_context(|| format!("reading `{}`", path.display()))?;
        if st.version != STATE_VERSION {
            bail!(
                "`{}` has version {}, this tool knows {STATE_VERSION}",
                path.display(),
                st.version
            );
        }
        Ok(Some(st))
    }

    /// Where the update stands and the command that goes on from there, for people.
    pub fn describe(&self, name: &str) -> String {
        let n = self.done.len();
        let total = self.patches.len();
        match self.patches.get(n) {
            Some(p) if self.stopped => format!(
                "the update of `{name}` is stopped at patch `{p}` ({} of {total}), which conflicts with upstream: resolve it, `git add` the files and run `cargo xtask sync --continue {name}`; or drop the patch with `cargo xtask sync --skip {name}`, or give up with `cargo xtask sync --abort {name}`",
                n + 1
            ),
            Some(p) => format!(
                "an update of `{name}` was interrupted at patch `{p}` ({} of {total}): run `cargo xtask sync --update {name}` to finish it, or give up with `cargo xtask sync --abort {name}`",
                n + 1
            ),
            None => format!(
                "an update of `{name}` was interrupted after its last patch ({total} of {total}), before the stack was written: run `cargo xtask sync --update {name}` to finish it, or give up with `cargo xtask sync --abort {name}`"
            ),
        }
    }

    pub fn write(&self, co: &Path) -> Result<()> {
        crate::fsx::write_atomic(
            &state_path(co),
            (serde_json::to_string_pretty(self)? + "\n").as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_where_an_update_stands() {
        let st = |done: usize, stopped: bool| UpdateState {
            version: STATE_VERSION,
            old_base: "a".into(),
            new_base: "b".into(),
            new_pin: Pin::Commit("b".into()),
            old_tip: "t".into(),
            old_state: None,
            commits_between: None,
            patches: vec!["one.patch".into(), "two.patch".into()],
            done: (0..done)
                .map(|i| (format!("p{i}"), Outcome::SkippedByHand))
                .collect(),
            head: "h".into(),
            stopped,
            upstream_ids: Vec::new(),
        };
        let cases = [
            (
                1,
                true,
                "stopped at patch `two.patch` (2 of 2)",
                "sync --continue demo",
            ),
            (
                0,
                false,
                "interrupted at patch `one.patch` (1 of 2)",
                "sync --update demo",
            ),
            (
                2,
                false,
                "after its last patch (2 of 2)",
                "sync --update demo",
            ),
            // A stop recorded past the end (a record edited by hand) reads as interrupted.
            (2, true, "after its last patch", "sync --update demo"),
        ];
        for (done, stopped, what, command) in cases {
            let text = st(done, stopped).describe("demo");
            assert!(text.contains(what) && text.contains(command), "{text}");
        }
    }
}

/// The last dry run's result, which `status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DryRun {
    pub date: String,
    pub new_base: String,
    pub commits_between: Option<usize>,
    pub patches: Vec<(String, Outcome)>,
}

impl DryRun {
    pub fn read(co: &Path) -> Option<DryRun> {
        serde_json::from_str(&fs_err::read_to_string(dry_run_path(co)).ok()?).ok()
    }
}
