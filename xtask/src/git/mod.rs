//! The one place that talks to git: the `git` CLI (through xshell, see `cli`) for network,
//! `am` and `format-patch`, where its behaviour is the reference; git2 for fast reads.
//!
//! Every git argument that varies is interpolated in a `cmd!` string, and every revision,
//! ref or URL that comes from a user or from upstream follows `--end-of-options` (or `--`),
//! so a value such as `--upload-pack=...` is never read as an option. `tidy` checks this.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

mod apply;
mod cli;
mod history;
mod identity;
mod index;
mod store;
mod worktree;
pub use apply::AmOutcome;
use cli::FIXED_CONFIG;
pub use history::UpstreamChange;
pub use identity::{Proposer, restamp};
pub use store::{STORE_DIR, Store};

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

    /// `git clone --no-checkout`, into a temporary name renamed on success: how checkouts
    /// were made before the shared store (they keep working), kept for tests of that form.
    #[cfg(test)]
    pub fn clone_from(sh: &'a Shell, url: &str, dir: &Path) -> Result<Checkout<'a>> {
        let tmp = tmp_sibling(dir, "clone");
        let _ = fs_err::remove_dir_all(&tmp);
        cli::run(cmd!(
            sh,
            "git {FIXED_CONFIG...} clone --quiet --no-checkout --origin origin -- {url} {tmp}"
        ))
        .with_context(|| format!("cloning `{url}`"))?;
        fs_err::rename(&tmp, dir)
            .with_context(|| format!("renaming `{}` to `{}`", tmp.display(), dir.display()))?;
        Ok(Checkout::new(sh, dir))
    }

    /// A checkout that borrows every upstream object from `store` (see `store.rs`): an empty
    /// repository whose `alternates` names the store, with `origin` set to the upstream and
    /// the store's remote-tracking refs, made under a temporary name renamed on success. Only
    /// the first checkout of an upstream downloads it (into the store); later fetches go
    /// into the store too.
    pub fn clone_shared(sh: &'a Shell, store: &Store, dir: &Path) -> Result<Checkout<'a>> {
        store.ensure(sh)?;
        let tmp = tmp_sibling(dir, "clone");
        let _ = fs_err::remove_dir_all(&tmp);
        cli::run(cmd!(
            sh,
            "git init --quiet --initial-branch={BRANCH} -- {tmp}"
        ))?;
        let info = tmp.join(".git").join("objects").join("info");
        fs_err::create_dir_all(&info)?;
        // The line is computed for the final name: the temporary one is its sibling.
        let line = store.alternates_line(dir);
        fs_err::write(info.join("alternates"), format!("{line}\n"))?;
        let repo =
            git2::Repository::open(&tmp).with_context(|| format!("opening `{}`", tmp.display()))?;
        repo.remote("origin", &store.url)
            .with_context(|| format!("setting `origin` in `{}`", tmp.display()))?;
        for (name, id) in store.remote_refs() {
            repo.reference(&name, id, true, "xtask: from the shared store")?;
        }
        drop(repo);
        crate::ops::intent::checkpoint("in-clone");
        fs_err::rename(&tmp, dir)
            .with_context(|| format!("renaming `{}` to `{}`", tmp.display(), dir.display()))?;
        Ok(Checkout::new(sh, dir))
    }

    /// The shared store this checkout borrows objects from, if any.
    pub fn store(&self) -> Option<Store> {
        Store::of_checkout(&self.dir)
    }

    /// An empty repository for a source that is not a git repository (an sdist).
    pub fn init(sh: &'a Shell, dir: &Path) -> Result<Checkout<'a>> {
        let tmp = tmp_sibling(dir, "init");
        let _ = fs_err::remove_dir_all(&tmp);
        cli::run(cmd!(
            sh,
            "git init --quiet --initial-branch={BRANCH} -- {tmp}"
        ))?;
        fs_err::rename(&tmp, dir)
            .with_context(|| format!("renaming `{}` to `{}`", tmp.display(), dir.display()))?;
        Ok(Checkout::new(sh, dir))
    }

    /// Fetches `branch` from `origin` into `refs/remotes/origin/<branch>`: into the shared
    /// store when the checkout borrows from one (the checkout then gets the ref and
    /// `FETCH_HEAD`), else into the checkout itself.
    pub fn fetch_branch(&self, branch: &str) -> Result<()> {
        let spec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        if let Some(store) = self.store() {
            let head = store.fetch(self.sh, &spec)?;
            let name = format!("refs/remotes/origin/{branch}");
            let id = store
                .remote_refs()
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, id)| id)
                .with_context(|| format!("no `{name}` in the shared store after fetching"))?;
            self.update_ref(
                &name,
                &id.to_string(),
                "xtask: fetched into the shared store",
            )?;
            return self.write_fetch_head(&head);
        }
        let (sh, dir) = (self.sh, &self.dir);
        cli::run(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} fetch --quiet --no-tags --end-of-options origin {spec}"
        ))
        .with_context(|| format!("fetching `{branch}` in `{}`", self.dir.display()))
    }

    /// Fetches one commit by id (servers allow this for reachable commits), or by a name
    /// the upstream knows; `FETCH_HEAD` says which commit it was. With a shared store, the
    /// commit is fetched into it and pinned there.
    pub fn fetch_commit(&self, id: &str) -> Result<()> {
        if let Some(store) = self.store() {
            let head = store
                .fetch(self.sh, id)
                .with_context(|| format!("fetching commit {id} for `{}`", self.dir.display()))?;
            let fetched = head.split_whitespace().next().unwrap_or_default();
            store.pin(fetched)?;
            return self.write_fetch_head(&head);
        }
        let (sh, dir) = (self.sh, &self.dir);
        cli::run(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} fetch --quiet --no-tags --end-of-options origin {id}"
        ))
        .with_context(|| format!("fetching commit {id} in `{}`", self.dir.display()))
    }

    /// The store's `FETCH_HEAD`, as the checkout's own: what a fetch here would have left.
    fn write_fetch_head(&self, text: &str) -> Result<()> {
        crate::fsx::write_atomic(&self.git_dir().join("FETCH_HEAD"), text.as_bytes())
    }

    pub fn has_commit(&self, repo: &git2::Repository, id: &str) -> bool {
        git2::Oid::from_str(id)
            .and_then(|oid| repo.find_commit(oid))
            .is_ok()
    }

    /// Moves the branch to `commit`, checks it out and discards local changes. Callers have
    /// made sure nothing unsaved is there.
    pub fn reset_branch(&self, commit: &str) -> Result<()> {
        let (sh, dir) = (self.sh, &self.dir);
        cli::run(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} checkout --quiet --force -B {BRANCH} --end-of-options {commit}"
        ))
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

    /// Tracked files with changes in the index or the work tree. This is the CLI rather than
    /// git2: on the CPython checkout `git status` takes 13 ms and git2's statuses 44 ms
    /// (see docs/decisions.md). `--no-optional-locks` keeps it from rewriting the index.
    pub fn uncommitted_changes(&self) -> Result<Vec<String>> {
        let (sh, dir) = (self.sh, &self.dir);
        let out = cli::read(cmd!(sh, "git -C {dir} {FIXED_CONFIG...} --no-optional-locks status --porcelain=v1 -z --untracked-files=no --ignore-submodules"))
            .with_context(|| format!("reading the status of `{}`", self.dir.display()))?;
        Ok(parse_status_z(&out))
    }

    /// Files with unmerged entries in the index.
    pub fn conflicted_files(&self) -> Result<Vec<String>> {
        let (sh, dir) = (self.sh, &self.dir);
        let out = cli::read(cmd!(
            sh,
            "git -C {dir} {FIXED_CONFIG...} diff --name-only --diff-filter=U -z"
        ))?;
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
        let (sh, dir) = (self.sh, &self.dir);
        let out = cli::read(
            cmd!(sh, "git -C {dir} {FIXED_CONFIG...} format-patch {FORMAT_PATCH_ARGS...} -o {out_dir} --end-of-options {range}")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null"),
        )
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
        let (sh, dir) = (self.sh, &self.dir);
        let id = cli::read(as_tool(
            cmd!(
                sh,
                "git -C {dir} {FIXED_CONFIG...} stash create 'xtask backup'"
            ),
            None,
        ))?;
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
        let sh = self.sh;
        cli::run(cmd!(sh, "git {FIXED_CONFIG...} add --all --force .").envs(fixed))?;
        let tree = cli::read(cmd!(sh, "git {FIXED_CONFIG...} write-tree").envs(fixed))?;
        let _ = fs_err::remove_file(&index);
        let date = "946684800 +0000";
        let (tree, dir) = (tree.trim(), &self.dir);
        let id = cli::read(as_tool(
            cmd!(
                sh,
                "git -C {dir} {FIXED_CONFIG...} commit-tree {tree} -m {message}"
            ),
            Some(date),
        ))?;
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

/// Paths added between `from` and `to` (trees compared, no rename detection) under `dir`
/// (a folder prefix ending in `/`), sorted.
pub fn added_files_under(
    repo: &git2::Repository,
    from: git2::Oid,
    to: git2::Oid,
    dir: &str,
) -> Result<Vec<String>> {
    let old = repo.find_commit(from)?.tree()?;
    let new = repo.find_commit(to)?.tree()?;
    let mut opts = git2::DiffOptions::new();
    opts.pathspec(dir).disable_pathspec_match(true);
    let diff = repo.diff_tree_to_tree(Some(&old), Some(&new), Some(&mut opts))?;
    let mut paths: Vec<String> = diff
        .deltas()
        .filter(|d| d.status() == git2::Delta::Added)
        .filter_map(|d| {
            d.new_file()
                .path()
                .map(|p| p.to_string_lossy().into_owned())
        })
        .filter(|p| p.starts_with(dir))
        .collect();
    paths.sort();
    Ok(paths)
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
}

#[cfg(all(test, unix))]
mod injection_tests {
    use super::*;

    /// A revision that looks like an option reaches git as a revision, past the CLI check.
    #[test]
    fn a_revision_is_never_an_option() {
        use std::os::unix::fs::PermissionsExt;
        let sh = Shell::new().unwrap();
        let tmp = std::env::temp_dir().join(format!("xtask-inject-{}", std::process::id()));
        let _ = fs_err::remove_dir_all(&tmp);
        fs_err::create_dir_all(&tmp).unwrap();
        let (up, marker, script) = (tmp.join("up"), tmp.join("marker"), tmp.join("evil.sh"));
        fs_err::write(
            &script,
            format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
        )
        .unwrap();
        fs_err::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        cmd!(sh, "git init --quiet -- {up}").run().unwrap();
        cmd!(
            sh,
            "git -C {up} -c user.name=a -c user.email=a@a commit --quiet --allow-empty -m x"
        )
        .run()
        .unwrap();
        let url = format!("file://{}", up.display());
        let co = Checkout::clone_from(&sh, &url, &tmp.join("co")).unwrap();
        let evil = format!("--upload-pack={}", script.display());
        assert!(co.fetch_commit(&evil).is_err());
        assert!(co.fetch_branch(&evil).is_err());
        assert!(co.reset_branch(&evil).is_err());
        assert!(co.export(&evil, "HEAD", &tmp.join("out")).is_err());
        let store = Store::for_url(&tmp.join("checkouts"), &url);
        let shared = Checkout::clone_shared(&sh, &store, &tmp.join("checkouts/co")).unwrap();
        assert!(shared.fetch_commit(&evil).is_err());
        assert!(shared.fetch_branch(&evil).is_err());
        assert!(!marker.exists(), "git ran the script");
        let _ = fs_err::remove_dir_all(&tmp);
    }
}
