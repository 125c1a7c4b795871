//! The records an update keeps in a checkout's `.git`: the update under way
//! (`xtask-update.json`, with the stack's backup beside it) and the last dry run, which
//! `sync --update` writes and `status` reads.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::absorb::Outcome;
use crate::git::UpstreamChange;
use crate::manifest::Base;
use crate::stack::CheckoutState;

/// The record of an update under way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateState {
    pub version: u32,
    pub old_base: String,
    pub new_base: String,
    /// What `base:` in `stack.yaml` becomes.
    pub new_pin: Base,
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

    pub fn write(&self, co: &Path) -> Result<()> {
        crate::fsx::write_atomic(
            &state_path(co),
            (serde_json::to_string_pretty(self)? + "\n").as_bytes(),
        )
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
