//! Branches made away from the checkout's work tree: worktrees for pull-request branches,
//! commits the tool authors there, archives of HEAD for builds, and leased pushes.

use std::path::Path;

use anyhow::{Context, Result};

use xshell::cmd;

use super::cli::{self, FIXED_CONFIG};
use super::{Checkout, as_tool};

impl<'a> Checkout<'a> {
    /// A detached worktree of this checkout at `base` in `path`, reused when it exists
    /// (reset to `base`, untracked files removed).
    pub fn worktree_at(&self, path: &Path, base: &str) -> Result<Checkout<'a>> {
        let (sh, dir) = (self.sh, &self.dir);
        if path.join(".git").exists() {
            cli::run(cmd!(
                sh,
                "git -C {path} {FIXED_CONFIG...} checkout --quiet --force --detach --end-of-options {base}"
            ))?;
            cli::run(cmd!(sh, "git -C {path} {FIXED_CONFIG...} clean -fdq"))?;
            return Ok(Checkout::new(sh, path));
        }
        let _ = fs_err::remove_dir_all(path);
        cli::run(cmd!(sh, "git -C {dir} {FIXED_CONFIG...} worktree prune"))?;
        cli::run(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} worktree add --quiet --force --detach --end-of-options {path} {base}"
        ))
        .with_context(|| format!("adding a worktree at `{}`", path.display()))?;
        Ok(Checkout::new(self.sh, path))
    }

    /// Commits `file` as the tool, dated like HEAD, so the same content on the same parent
    /// gives the same commit.
    pub fn commit_file_as_tool(&self, file: &str, message: &str) -> Result<()> {
        let (sh, dir) = (self.sh, &self.dir);
        let date = cli::read(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} log -1 --format=%ad --date=raw"
        ))?;
        cli::run(cmd!(sh, "git -C {dir} {FIXED_CONFIG...} add -- {file}"))?;
        cli::run(as_tool(
            cmd!(
                sh,
                "git -C {dir} {FIXED_CONFIG...} commit --quiet --no-verify -m {message}"
            ),
            Some(date.trim()),
        ))?;
        Ok(())
    }

    /// `git archive` of HEAD into a tar file.
    pub fn archive_head(&self, tar: &Path) -> Result<()> {
        let (sh, dir) = (self.sh, &self.dir);
        cli::run(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} archive --format=tar -o {tar} HEAD"
        ))
        .with_context(|| format!("archiving HEAD of `{}`", self.dir.display()))
    }

    /// Pushes `branch` to `remote` unless the remote's branch moved away from `expected`
    /// (empty: it must not exist). Returns git's refusal when it refused.
    pub fn push_with_lease(
        &self,
        remote: &str,
        branch: &str,
        expected: &str,
    ) -> Result<Option<String>> {
        let (sh, dir) = (self.sh, &self.dir);
        let spec = format!("{branch}:{branch}");
        let out = cli::output(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} push --quiet --force-with-lease={branch}:{expected} --end-of-options {remote} {spec}"
        ))?;
        Ok(
            (!out.status.success())
                .then(|| String::from_utf8_lossy(&out.stderr).trim().to_string()),
        )
    }
}
