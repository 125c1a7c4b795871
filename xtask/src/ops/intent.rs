//! Crash recovery. Before a git operation that rewrites a checkout's index or work tree
//! (`checkout`, `am` and its `--continue`, `--skip`, `--abort`, `stash create`), the tool
//! writes what it starts to `.git/xtask-intent.json` (atomically) and removes the record when
//! git is done. A record found later means that operation was killed or interrupted: the
//! lock files git left are stale, and the half-done index and work tree are the tool's own,
//! so a plain rerun clears them and redoes the operation instead of calling them unsaved work.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::checkout::untracked_in_the_way;
use super::recover::{Keep, backup};
use crate::git::{self, Checkout};
use crate::lock;

/// A git operation the tool runs in a checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum Op {
    /// `git checkout --force -B patched <target>`.
    Checkout {
        target: String,
    },
    Am,
    /// `git am --continue`: it commits what a person resolved, so it is retried, not redone.
    AmContinue,
    AmSkip,
    AmAbort,
    /// `git stash create` for a backup: it leaves the work tree alone.
    Stash,
    /// `git fetch`: it leaves the work tree alone.
    Fetch,
}

impl Op {
    /// Whether a crash in the operation leaves the index and work tree as the tool's own
    /// half-done work, redone from a commit. The others leave them alone (`stash`, `fetch`)
    /// or hold what a person resolved (`am --continue`, `am --skip`): running the same
    /// command again goes on from there.
    pub fn redone(&self) -> bool {
        matches!(self, Op::Checkout { .. } | Op::Am | Op::AmAbort)
    }

    /// The git command, for people.
    pub fn git_command(&self) -> &'static str {
        match self {
            Op::Checkout { .. } => "git checkout",
            Op::Am => "git am",
            Op::AmContinue => "git am --continue",
            Op::AmSkip => "git am --skip",
            Op::AmAbort => "git am --abort",
            Op::Stash => "git stash create",
            Op::Fetch => "git fetch",
        }
    }

    /// The one command that finishes what the operation was doing in stack `name`.
    pub fn resume_command(&self, name: &str) -> String {
        match self {
            Op::AmContinue => format!("cargo xtask sync --continue {name}"),
            Op::AmSkip => format!("cargo xtask sync --skip {name}"),
            Op::AmAbort => format!("cargo xtask sync --abort {name}"),
            _ => format!("cargo xtask sync {name}"),
        }
    }

    /// The crash-test point just after the record is written, before git starts.
    fn point(&self) -> &'static str {
        match self {
            Op::Checkout { .. } => "in-checkout",
            Op::Am => "in-am",
            Op::AmContinue => "in-am-continue",
            Op::AmSkip => "in-am-skip",
            Op::AmAbort => "in-am-abort",
            Op::Stash => "in-stash",
            Op::Fetch => "in-fetch",
        }
    }
}

// No `deny_unknown_fields`: serde does not support it with `flatten`; the version decides.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Intent {
    pub version: u32,
    /// The process that started the operation, for people reading the file.
    pub pid: u32,
    #[serde(flatten)]
    pub op: Op,
}

const VERSION: u32 = 1;

pub fn path(dir: &Path) -> PathBuf {
    dir.join(".git").join("xtask-intent.json")
}

/// The record left in `dir`, if any. One this tool cannot read still says an operation was
/// under way, so it counts as an interrupted `checkout` of nothing in particular.
pub fn read(dir: &Path) -> Option<Intent> {
    let text = std::fs::read_to_string(path(dir)).ok()?;
    Some(
        serde_json::from_str::<Intent>(&text)
            .ok()
            .filter(|i| i.version == VERSION)
            .unwrap_or(Intent {
                version: VERSION,
                pid: 0,
                op: Op::Am,
            }),
    )
}

/// Crash-test hook: `XTASK_KILL_AT=<point>` aborts the process there, as a kill would. This
/// is the only place that reads the variable; docs/decisions.md lists the points.
pub fn checkpoint(point: &str) {
    if std::env::var("XTASK_KILL_AT").is_ok_and(|p| p == point) {
        eprintln!("xtask: killed at {point} (XTASK_KILL_AT)");
        std::process::abort();
    }
}

/// Runs `f`, the git operation `op` in `co`, under a record of it. git inherits the
/// checkout's lock while it runs (see `lock.rs`). The record stays when `f` fails: the
/// operation may have stopped halfway, and the next run then treats it as interrupted.
pub fn run<T>(co: &Checkout, op: Op, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let record = Intent {
        version: VERSION,
        pid: std::process::id(),
        op,
    };
    let file = path(&co.dir);
    crate::fsx::write_atomic(&file, (serde_json::to_string(&record)? + "\n").as_bytes())?;
    checkpoint(record.op.point());
    let result = {
        let _shared = lock::shared_with_children(&lock_path(&co.dir));
        f()
    };
    if result.is_ok() {
        done(co)?;
    }
    result
}

/// Forgets the record once whatever it described is redone or no longer matters.
pub fn done(co: &Checkout) -> Result<()> {
    match std::fs::remove_file(path(&co.dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing `{}`", path(&co.dir).display()))
        }
        _ => Ok(()),
    }
}

/// `checkouts/<p>.lock` for `checkouts/<p>`, as `Layout::lock_file` names it.
fn lock_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}.lock"))
}

/// Lock files git takes in a checkout for the operations above.
const GIT_LOCKS: &[&str] = &[
    "index.lock",
    "HEAD.lock",
    "ORIG_HEAD.lock",
    "packed-refs.lock",
    "config.lock",
    "refs/heads/patched.lock",
];

/// What `recover` found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// The interrupted operation, if there was one.
    pub op: Option<Op>,
}

impl Recovery {
    /// Whether the index and work tree are the tool's half-done work, to be redone from a
    /// commit (rather than a stopped `git am` to be resumed).
    pub fn redo(&self) -> bool {
        self.op.as_ref().is_some_and(Op::redone)
    }
}

/// Makes a checkout usable after this tool was killed in it. The caller holds the checkout's
/// lock, so no process this tool started is alive (git inherits the lock): lock files under
/// names only the tool writes are removed; with an intent record, so are git's own lock
/// files, and work-tree content that matches neither HEAD, the index, nor the commit being
/// checked out is kept under a backup ref first (a killed git can truncate a file; a person
/// may have edited one since). The record stays until the caller redoes the operation.
/// Without a record, a git lock file is someone else's and is named in an error.
pub fn recover(co: &Checkout, shown: &str, name: &str) -> Result<Recovery> {
    let git_dir = co.git_dir();
    if !git_dir.is_dir() {
        return Ok(Recovery::default());
    }
    remove_tool_leftovers(&git_dir);
    let Some(intent) = read(&co.dir) else {
        if git_dir.join("index.lock").exists() {
            bail!(
                "`{shown}/.git/index.lock` exists and this tool did not leave it: a git command is running in `{shown}`, or one was killed; if none is running, delete that file and rerun `cargo xtask sync {name}`"
            );
        }
        return Ok(Recovery::default());
    };
    for l in GIT_LOCKS {
        let _ = std::fs::remove_file(git_dir.join(l));
    }
    crate::fsx::remove_locks_under(&git_dir.join("refs/remotes"));
    if !intent.op.redone() {
        done(co)?;
        return Ok(Recovery {
            op: Some(intent.op),
        });
    }
    eprintln!(
        "{name}: finishing an interrupted {} in `{shown}`",
        match &intent.op {
            Op::Checkout { .. } => "checkout",
            _ => "git am",
        }
    );
    let repo = co.open()?;
    let target = match &intent.op {
        Op::Checkout { target } => git2::Oid::from_str(target).ok(),
        _ => None,
    };
    let foreign = foreign_files(co, &repo, target)?;
    if !foreign.is_empty() {
        let kept = backup(
            co,
            &Keep {
                files: &foreign,
                ..Keep::default()
            },
            "xtask: work-tree files found after an interrupted run",
        )?;
        eprintln!(
            "{name}: kept files that matched no commit as {}",
            kept.join(" and ")
        );
    }
    // The checkout is redone from a commit, so a half-applied `git am` has nothing to keep.
    let rebase_apply = git_dir.join("rebase-apply");
    if rebase_apply.exists() {
        std::fs::remove_dir_all(&rebase_apply)
            .with_context(|| format!("removing `{}`", rebase_apply.display()))?;
    }
    Ok(Recovery {
        op: Some(intent.op),
    })
}

/// Scratch indexes and ref locks under names only this tool uses.
fn remove_tool_leftovers(git_dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(git_dir) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("xtask-") && (n.ends_with(".index") || n.ends_with(".index.lock")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    crate::fsx::remove_locks_under(&git_dir.join("refs/xtask"));
}

/// Changed or untracked-in-the-way files whose content is in neither HEAD nor `target`
/// (for a `git am`, which has no target, the index instead): what redoing the operation
/// would lose. A missing or empty file loses nothing (git creates a file before writing it,
/// so a kill leaves empty files behind).
fn foreign_files(
    co: &Checkout,
    repo: &git2::Repository,
    target: Option<git2::Oid>,
) -> Result<Vec<String>> {
    let mut candidates = co.uncommitted_changes()?;
    if let Some(t) = target {
        candidates.extend(untracked_in_the_way(repo, &co.dir, t)?);
    }
    candidates.sort();
    candidates.dedup();
    let mut files = Vec::new();
    let mut blobs = Vec::new();
    for p in candidates {
        let full = co.dir.join(&p);
        let Ok(meta) = std::fs::symlink_metadata(&full) else {
            continue;
        };
        if meta.is_file() && meta.len() == 0 {
            continue;
        }
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&full)
                .with_context(|| format!("reading link `{}`", full.display()))?;
            let id =
                git2::Oid::hash_object(git2::ObjectType::Blob, link.to_string_lossy().as_bytes())?;
            blobs.push((p, Some(id)));
        } else if meta.is_file() && !p.contains('\n') {
            files.push(p);
        } else if meta.is_file() {
            // A name git cannot read from `--stdin-paths`: kept, to be safe.
            blobs.push((p, None));
        }
    }
    let ids = co.hash_work_tree_files(&files)?;
    if ids.len() != files.len() {
        bail!(
            "git hash-object gave {} ids for {} files",
            ids.len(),
            files.len()
        );
    }
    for (p, id) in files.into_iter().zip(ids) {
        blobs.push((p, git2::Oid::from_str(&id).ok()));
    }
    let tree = |id: Option<git2::Oid>| id.and_then(|c| repo.find_commit(c).ok()?.tree().ok());
    let trees = [tree(git::head_commit(repo)), tree(target)];
    let index = if target.is_none() {
        repo.index().ok()
    } else {
        None
    };
    let mut out = Vec::new();
    for (p, blob) in blobs {
        let known = blob.is_some_and(|blob| {
            trees.iter().flatten().any(|t| {
                t.get_path(Path::new(&p))
                    .is_ok_and(|entry| entry.id() == blob)
            }) || index
                .as_ref()
                .and_then(|i| i.get_path(Path::new(&p), 0))
                .is_some_and(|entry| entry.id == blob)
        });
        if !known {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back() {
        for op in [
            Op::Checkout {
                target: "abc".into(),
            },
            Op::Am,
            Op::AmContinue,
        ] {
            let i = Intent {
                version: VERSION,
                pid: 7,
                op: op.clone(),
            };
            let back: Intent = serde_json::from_str(&serde_json::to_string(&i).unwrap()).unwrap();
            assert_eq!(back.op, op);
        }
        assert_eq!(
            lock_path(Path::new("/r/checkouts/demo")),
            Path::new("/r/checkouts/demo.lock")
        );
    }
}
