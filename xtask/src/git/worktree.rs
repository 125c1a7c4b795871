//! Branches made away from the checkout's work tree: worktrees for pull-request branches,
//! commits the tool authors there, archives of HEAD for builds, and leased pushes.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Checkout, as_tool};

impl<'a> Checkout<'a> {
    /// A detached worktree of this checkout at `base` in `path`, reused when it exists
    /// (reset to `base`, untracked files removed).
    pub fn worktree_at(&self, path: &Path, base: &str) -> Result<Checkout<'a>> {
        if path.join(".git").exists() {
            let wt = Checkout::new(self.sh, path);
            wt.git()
                .args(["checkout", "--quiet", "--force", "--detach", base])
                .run()?;
            wt.git().args(["clean", "-fdq"]).run()?;
            return Ok(wt);
        }
        let _ = fs_err::remove_dir_all(path);
        self.git().args(["worktree", "prune"]).run()?;
        self.git()
            .args(["worktree", "add", "--quiet", "--force", "--detach"])
            .arg(path)
            .arg(base)
            .run()
            .with_context(|| format!("adding a worktree at `{}`", path.display()))?;
        Ok(Checkout::new(self.sh, path))
    }

    /// Commits `file` as the tool, dated like HEAD, so the same content on the same parent
    /// gives the same commit.
    pub fn commit_file_as_tool(&self, file: &str, message: &str) -> Result<()> {
        let date = self
            .git()
            .args(["log", "-1", "--format=%ad", "--date=raw"])
            .read()?;
        self.git().args(["add", "--", file]).run()?;
        as_tool(
            self.git()
                .args(["commit", "--quiet", "--no-verify", "-m", message]),
            Some(date.trim()),
        )
        .run()?;
        Ok(())
    }

    /// `git archive` of HEAD into a tar file.
    pub fn archive_head(&self, tar: &Path) -> Result<()> {
        self.git()
            .args(["archive", "--format=tar", "-o"])
            .arg(tar)
            .arg("HEAD")
            .run()
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
        let lease = format!("--force-with-lease={branch}:{expected}");
        let out = self
            .git()
            .args([
                "push",
                "--quiet",
                &lease,
                remote,
                &format!("{branch}:{branch}"),
            ])
            .ignore_status()
            .output()?;
        Ok(
            (!out.status.success())
                .then(|| String::from_utf8_lossy(&out.stderr).trim().to_string()),
        )
    }
}
