//! The one place that talks to git (this module and `history`): the `git` CLI (through xshell) for network, `am` and
//! `format-patch`, where its behaviour is the reference; git2 for fast reads.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

mod history;
mod worktree;
pub use history::UpstreamChange;

/// The committer every commit made by the tool carries, so that applying the same series to
/// the same base gives the same commit ids on every machine (and so that a machine with no
/// `user.email` configured can still apply patches).
pub const COMMITTER: (&str, &str) = ("xtask", "xtask@localhost");

/// Ref names the tool owns inside a checkout.
pub const BASE_REF: &str = "refs/xtask/base";
pub const BEFORE_SYNC_REF: &str = "refs/xtask/before-sync";
pub const BRANCH: &str = "patched";

/// Options that make `git format-patch` output independent of the user's configuration.
/// Global and system configuration are also switched off for the export (see `export`).
const FORMAT_PATCH_ARGS: &[&str] = &[
    "--zero-commit",
    "--no-signature",
    "--full-index",
    "--no-numbered",
    "--no-cover-letter",
    "--no-thread",
    "--encode-email-headers",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-relative",
    "--no-renames",
    "--binary",
    "--no-notes",
    "--no-signoff",
    "--no-base",
    "--diff-algorithm=myers",
    "--unified=3",
    "--inter-hunk-context=0",
    "--indent-heuristic",
    "-O/dev/null",
    "--no-add-header",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--stat=72",
    "--stat-graph-width=20",
    "--subject-prefix=PATCH",
    "--no-to",
    "--no-cc",
    "--no-attach",
];

/// Config overrides for every command that reads or writes patches.
const FIXED_CONFIG: &[&str] = &[
    "-c",
    "core.autocrlf=false",
    "-c",
    "core.safecrlf=false",
    "-c",
    "core.quotePath=true",
    "-c",
    "am.threeWay=false",
    "-c",
    "am.keepcr=false",
    "-c",
    "diff.noprefix=false",
    "-c",
    "diff.mnemonicPrefix=false",
    "-c",
    "format.useAutoBase=false",
    "-c",
    "i18n.commitEncoding=UTF-8",
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "protocol.fd.allow=never",
    "-c",
    "commit.gpgSign=false",
    "-c",
    "apply.whitespace=nowarn",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.attributesFile=/dev/null",
];

/// A checkout: its directory and the shell used to run git there.
pub struct Checkout<'a> {
    pub sh: &'a Shell,
    pub dir: PathBuf,
}

impl<'a> Checkout<'a> {
    pub fn new(sh: &'a Shell, dir: &Path) -> Checkout<'a> {
        Checkout {
            sh,
            dir: dir.to_path_buf(),
        }
    }

    pub fn open(&self) -> Result<git2::Repository> {
        git2::Repository::open(&self.dir)
            .with_context(|| format!("opening git repository `{}`", self.dir.display()))
    }

    pub(crate) fn git(&self) -> xshell::Cmd<'a> {
        let dir = &self.dir;
        cmd!(self.sh, "git -C {dir} {FIXED_CONFIG...}").quiet()
    }

    /// `git clone --no-checkout`, into a temporary name renamed on success.
    pub fn clone_from(sh: &'a Shell, url: &str, dir: &Path) -> Result<Checkout<'a>> {
        let tmp = tmp_sibling(dir, "clone");
        let _ = fs_err::remove_dir_all(&tmp);
        cmd!(
            sh,
            "git {FIXED_CONFIG...} clone --quiet --no-checkout --origin origin -- {url} {tmp}"
        )
        .quiet()
        .run()
        .with_context(|| format!("cloning `{url}`"))?;
        std::fs::rename(&tmp, dir)
            .with_context(|| format!("renaming `{}` to `{}`", tmp.display(), dir.display()))?;
        Ok(Checkout::new(sh, dir))
    }

    /// An empty repository for a source that is not a git repository (an sdist).
    pub fn init(sh: &'a Shell, dir: &Path) -> Result<Checkout<'a>> {
        let tmp = tmp_sibling(dir, "init");
        let _ = fs_err::remove_dir_all(&tmp);
        cmd!(sh, "git init --quiet --initial-branch={BRANCH} {tmp}")
            .quiet()
            .run()?;
        std::fs::rename(&tmp, dir)
            .with_context(|| format!("renaming `{}` to `{}`", tmp.display(), dir.display()))?;
        Ok(Checkout::new(sh, dir))
    }

    /// Fetches `branch` from `origin` into `refs/remotes/origin/<branch>`.
    pub fn fetch_branch(&self, branch: &str) -> Result<()> {
        let spec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        self.git()
            .args(["fetch", "--quiet", "--no-tags", "origin", &spec])
            .run()
            .with_context(|| format!("fetching `{branch}` in `{}`", self.dir.display()))
    }

    /// Fetches one commit by id (servers allow this for reachable commits).
    pub fn fetch_commit(&self, id: &str) -> Result<()> {
        self.git()
            .args(["fetch", "--quiet", "--no-tags", "origin", id])
            .run()
            .with_context(|| format!("fetching commit {id} in `{}`", self.dir.display()))
    }

    pub fn has_commit(&self, repo: &git2::Repository, id: &str) -> bool {
        git2::Oid::from_str(id)
            .and_then(|oid| repo.find_commit(oid))
            .is_ok()
    }

    /// Moves the branch to `commit`, checks it out and discards local changes. Callers have
    /// made sure nothing unsaved is there.
    pub fn reset_branch(&self, commit: &str) -> Result<()> {
        self.git()
            .args(["checkout", "--quiet", "--force", "-B", BRANCH, commit])
            .run()
            .with_context(|| format!("checking out {commit} in `{}`", self.dir.display()))?;
        // `checkout --force` keeps untracked files, except where a tracked file of the target
        // goes; the dirty check before this only covers tracked files.
        Ok(())
    }

    /// Points `name` at `id` (git2: a ref write needs no process).
    pub fn update_ref(&self, name: &str, id: &str, why: &str) -> Result<()> {
        let repo = self.open()?;
        let oid = git2::Oid::from_str(id)?;
        repo.reference(name, oid, true, why)
            .with_context(|| format!("setting `{name}` in `{}`", self.dir.display()))?;
        Ok(())
    }

    pub fn delete_ref(&self, name: &str) -> Result<()> {
        let repo = self.open()?;
        if let Ok(mut r) = repo.find_reference(name) {
            r.delete()
                .with_context(|| format!("deleting `{name}` in `{}`", self.dir.display()))?;
        }
        Ok(())
    }

    /// Whether HEAD is the tool's branch (not detached, not another branch).
    pub fn on_branch(&self, repo: &git2::Repository) -> bool {
        repo.head()
            .is_ok_and(|h| h.name_bytes() == format!("refs/heads/{BRANCH}").as_bytes())
    }

    /// Applies patch files with `git am --3way`, one commit each. On failure the checkout is
    /// left mid-`am` and the error carries git's explanation.
    pub fn am(&self, patches: &[PathBuf]) -> Result<AmOutcome> {
        self.am_cmd(
            &[
                "am",
                "--quiet",
                "--3way",
                "--committer-date-is-author-date",
                "--whitespace=nowarn",
            ],
            patches,
        )
    }

    pub fn am_continue(&self) -> Result<AmOutcome> {
        self.am_cmd(&["am", "--quiet", "--continue"], &[])
    }

    pub fn am_skip(&self) -> Result<AmOutcome> {
        self.am_cmd(&["am", "--quiet", "--skip"], &[])
    }

    pub fn am_abort(&self) -> Result<()> {
        self.git().args(["am", "--abort"]).quiet().run()?;
        Ok(())
    }

    fn am_cmd(&self, args: &[&str], patches: &[PathBuf]) -> Result<AmOutcome> {
        let out = self
            .git()
            .args(args)
            .args(patches)
            .env("GIT_COMMITTER_NAME", COMMITTER.0)
            .env("GIT_COMMITTER_EMAIL", COMMITTER.1)
            .ignore_status()
            .quiet()
            .output()
            .with_context(|| format!("running git am in `{}`", self.dir.display()))?;
        if out.status.success() {
            return Ok(AmOutcome::Applied);
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        if !self.am_in_progress() {
            bail!(
                "git am failed in `{}`:\n{}",
                self.dir.display(),
                text.trim_end()
            );
        }
        Ok(AmOutcome::Stopped { git_output: text })
    }

    /// Whether `git am` stopped here and waits for `--continue`, `--skip` or `--abort`.
    pub fn am_in_progress(&self) -> bool {
        self.git_dir()
            .join("rebase-apply")
            .join("applying")
            .exists()
    }

    /// The 1-based number of the patch `git am` stopped at.
    pub fn am_current(&self) -> Option<usize> {
        let next = fs_err::read_to_string(self.git_dir().join("rebase-apply/next")).ok()?;
        next.trim().parse().ok()
    }

    /// Re-checks the patch `git am` stopped at against HEAD alone (a scratch index, not the
    /// conflicted one) and returns each hunk that does not apply: `path:line` and the lines
    /// git looked for there.
    pub fn failed_hunks(&self) -> Result<Vec<(String, Vec<String>)>> {
        let index = self.git_dir().join("xtask-check.index");
        let patch = self.git_dir().join("rebase-apply").join("patch");
        let dir = &self.dir;
        cmd!(self.sh, "git -C {dir} read-tree HEAD")
            .env("GIT_INDEX_FILE", &index)
            .quiet()
            .run()?;
        let out = cmd!(
            self.sh,
            "git -C {dir} apply --cached --check --verbose {patch}"
        )
        .env("GIT_INDEX_FILE", &index)
        .ignore_status()
        .quiet()
        .output()?;
        let _ = fs_err::remove_file(&index);
        Ok(parse_apply_check(&String::from_utf8_lossy(&out.stderr)))
    }

    /// Tracked files with changes in the index or the work tree. This is the CLI rather than
    /// git2: on the CPython checkout `git status` takes 13 ms and git2's statuses 44 ms
    /// (see docs/decisions.md). `--no-optional-locks` keeps it from rewriting the index.
    pub fn uncommitted_changes(&self) -> Result<Vec<String>> {
        let out = self
            .git()
            .args([
                "--no-optional-locks",
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=no",
                "--ignore-submodules",
            ])
            .read()
            .with_context(|| format!("reading the status of `{}`", self.dir.display()))?;
        Ok(parse_status_z(&out))
    }

    /// Files with unmerged entries in the index.
    pub fn conflicted_files(&self) -> Result<Vec<String>> {
        let out = self
            .git()
            .args(["diff", "--name-only", "--diff-filter=U", "-z"])
            .read()?;
        Ok(out
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }

    pub fn git_dir(&self) -> PathBuf {
        self.dir.join(".git")
    }

    /// Exports `base..head` as deterministic patch files into `out_dir`, returned in order.
    pub fn export(&self, base: &str, head: &str, out_dir: &Path) -> Result<Vec<PathBuf>> {
        let range = format!("{base}..{head}");
        let out = self
            .git()
            .arg("format-patch")
            .args(FORMAT_PATCH_ARGS)
            .arg("-o")
            .arg(out_dir)
            .arg(&range)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .read()
            .with_context(|| format!("exporting {range} from `{}`", self.dir.display()))?;
        Ok(out
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect())
    }

    /// `git stash create`: a commit holding uncommitted changes, touching nothing.
    pub fn stash_create(&self) -> Result<Option<String>> {
        // The backup commit needs an identity even where the user has none configured.
        let id = as_tool(self.git().args(["stash", "create", "xtask backup"]), None).read()?;
        Ok(if id.trim().is_empty() {
            None
        } else {
            Some(id.trim().to_string())
        })
    }

    /// Builds a commit from a directory of files without touching the work tree or index,
    /// with a fixed author, committer and date so the same files give the same commit id.
    pub fn commit_tree_from_dir(&self, files: &Path, message: &str) -> Result<String> {
        let index = self.git_dir().join("xtask-import.index");
        let _ = fs_err::remove_file(&index);
        let git_dir = self.git_dir();
        let fixed = [
            ("GIT_INDEX_FILE", index.as_os_str()),
            ("GIT_WORK_TREE", files.as_os_str()),
            ("GIT_DIR", git_dir.as_os_str()),
        ];
        // `-f` adds files an sdist's own `.gitignore` would hide: the import must be complete.
        cmd!(self.sh, "git {FIXED_CONFIG...} add --all --force .")
            .envs(fixed)
            .quiet()
            .run()?;
        let tree = cmd!(self.sh, "git {FIXED_CONFIG...} write-tree")
            .envs(fixed)
            .read()?;
        let _ = fs_err::remove_file(&index);
        let date = "946684800 +0000";
        let id = as_tool(
            self.git().args(["commit-tree", tree.trim(), "-m", message]),
            Some(date),
        )
        .read()?;
        Ok(id.trim().to_string())
    }
}

/// Runs `cmd` as the tool: fixed author and committer, and when `date` is given, that date
/// for both, so the commits it makes do not depend on who runs it or when.
fn as_tool<'a>(cmd: xshell::Cmd<'a>, date: Option<&str>) -> xshell::Cmd<'a> {
    let cmd = cmd
        .env("GIT_AUTHOR_NAME", COMMITTER.0)
        .env("GIT_AUTHOR_EMAIL", COMMITTER.1)
        .env("GIT_COMMITTER_NAME", COMMITTER.0)
        .env("GIT_COMMITTER_EMAIL", COMMITTER.1);
    match date {
        Some(d) => cmd.env("GIT_AUTHOR_DATE", d).env("GIT_COMMITTER_DATE", d),
        None => cmd,
    }
}

/// How a `git am` run ended.
pub enum AmOutcome {
    Applied,
    Stopped { git_output: String },
}

/// Commits reachable from `to` but not from `from`, oldest first, as `(id, subject)`.
pub fn commits_between(
    repo: &git2::Repository,
    from: git2::Oid,
    to: git2::Oid,
) -> Result<Vec<(git2::Oid, String)>> {
    let mut walk = repo.revwalk()?;
    walk.push(to)?;
    walk.hide(from)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    walk.map(|id| {
        let id = id?;
        let c = repo.find_commit(id)?;
        Ok((id, c.summary().ok().flatten().unwrap_or("").to_string()))
    })
    .collect()
}

/// Reads `git status --porcelain=v1 -z` into the paths it names (renames: the new path).
pub fn parse_status_z(out: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut entries = out.split('\0').filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        let (xy, path) = entry.split_at(entry.len().min(3));
        paths.push(path.to_string());
        if xy.starts_with(['R', 'C']) {
            entries.next();
        }
    }
    paths
}

/// Reads `git apply --check --verbose` output into failing hunks and the lines they expected.
pub fn parse_apply_check(stderr: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut expected: Vec<String> = Vec::new();
    let mut searching = false;
    for line in stderr.lines() {
        if line == "error: while searching for:" {
            searching = true;
            expected.clear();
        } else if let Some(at) = line.strip_prefix("error: patch failed: ") {
            searching = false;
            while expected.last().is_some_and(|l| l.is_empty()) {
                expected.pop();
            }
            out.push((at.to_string(), std::mem::take(&mut expected)));
        } else if searching {
            expected.push(line.to_string());
        }
    }
    out
}

pub fn head_commit(repo: &git2::Repository) -> Option<git2::Oid> {
    repo.head().ok()?.peel_to_commit().ok().map(|c| c.id())
}

pub fn ref_target(repo: &git2::Repository, name: &str) -> Option<git2::Oid> {
    repo.find_reference(name)
        .ok()?
        .peel_to_commit()
        .ok()
        .map(|c| c.id())
}

pub fn short(id: impl ToString) -> String {
    id.to_string().chars().take(12).collect()
}

/// A fixed temporary name next to `dir`: callers hold the checkout's lock, so a leftover from
/// an interrupted run is theirs to remove and no one else's to use.
fn tmp_sibling(dir: &Path, what: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.{what}-tmp"))
}

// Backups of work-tree files and their blob ids (crash recovery, `--force`, `--abort`).
mod files;
pub use files::snapshot_files;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status() {
        let out = " M README\0R  new\0old\0UU src/a.c\0";
        assert_eq!(parse_status_z(out), ["README", "new", "src/a.c"]);
    }

    #[test]
    fn reads_failed_hunks() {
        let stderr = "Checking patch f...\nerror: while searching for:\n2\n3\n\nerror: patch failed: f:2\nerror: f: patch does not apply\n";
        assert_eq!(
            parse_apply_check(stderr),
            vec![("f:2".to_string(), vec!["2".to_string(), "3".to_string()])]
        );
    }
}
