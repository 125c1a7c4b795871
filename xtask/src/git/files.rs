//! Work-tree files as git sees them, for backups: a snapshot commit of chosen files made
//! in-process, and the blob ids `git hash-object` gives them.

use std::path::Path;

use anyhow::{Context, Result};

use xshell::cmd;

use super::cli::FIXED_CONFIG;
use super::{COMMITTER, Checkout};

/// A commit on top of `parent` whose tree is `parent`'s with the work-tree content of `paths`
/// (a path missing from the work tree is left out): a backup of files that touches neither
/// the index nor the work tree, and works where `git stash create` cannot (a conflicted
/// index, untracked files). Made in-process with the tool's identity.
pub fn snapshot_files(
    repo: &git2::Repository,
    dir: &Path,
    parent: Option<git2::Oid>,
    paths: &[String],
    message: &str,
) -> Result<git2::Oid> {
    let mut index = git2::Index::new()?;
    let parent = parent.map(|p| repo.find_commit(p)).transpose()?;
    if let Some(p) = &parent {
        index.read_tree(&p.tree()?)?;
    }
    for path in paths {
        let full = dir.join(path);
        let Ok(meta) = fs_err::symlink_metadata(&full) else {
            let _ = index.remove_path(Path::new(path));
            continue;
        };
        let (bytes, mode) = if meta.file_type().is_symlink() {
            let target = fs_err::read_link(&full)
                .with_context(|| format!("reading link `{}`", full.display()))?;
            (target.to_string_lossy().into_owned().into_bytes(), 0o120000)
        } else if meta.is_file() {
            let bytes =
                fs_err::read(&full).with_context(|| format!("reading `{}`", full.display()))?;
            (
                bytes,
                if is_executable(&meta) {
                    0o100755
                } else {
                    0o100644
                },
            )
        } else {
            continue;
        };
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: repo.blob(&bytes)?,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry)?;
    }
    let tree = repo.find_tree(index.write_tree_to(repo)?)?;
    let sig = git2::Signature::now(COMMITTER.0, COMMITTER.1)?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    Ok(repo.commit(None, &sig, &sig, message, &tree, &parents)?)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

impl Checkout<'_> {
    /// The blob ids git would store for these work-tree files, in order. Through `git
    /// hash-object` (one process for all) so that `.gitattributes` filters such as
    /// `eol=crlf` apply, as they did when git wrote the files.
    pub fn hash_work_tree_files(&self, paths: &[String]) -> Result<Vec<String>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let dir = &self.dir;
        let out = super::cli::read(
            cmd!(
                self.sh,
                "git -C {dir} {FIXED_CONFIG...} hash-object --stdin-paths"
            )
            .stdin(paths.join("\n")),
        )
        .with_context(|| format!("hashing work-tree files in `{}`", self.dir.display()))?;
        Ok(out.lines().map(str::to_string).collect())
    }
}
