//! File-system helpers that keep the promise "an interrupted run never leaves a half-written
//! file": every write goes to a temporary sibling that is renamed over the target. Also the
//! one write to stdout that a closed pipe does not turn into a panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `text` to stdout. A reader that went away (`cargo xtask status | head -1`) is not an
/// error: the rest of the output is dropped and the command ends quietly, as `cat` does.
/// (`println!` panics there, because Rust ignores SIGPIPE.)
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("writing to stdout"),
    }
}

/// `println!` for command output: a closed pipe ends the output quietly instead of panicking
/// (see `print_stdout`); any other write error is returned with `?`.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::fsx::print_stdout(&format!("{}\n", format_args!($($t)*)))?
    };
}

/// Writes `contents` to `path` atomically (temporary sibling, fsync, rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = fs_err::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs_err::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&tmp);
    }
    result.with_context(|| format!("writing `{}`", path.display()))
}

/// Writes only when the contents differ; returns whether it wrote.
pub fn write_if_changed(path: &Path, contents: &[u8]) -> Result<bool> {
    if fs_err::read(path).ok().as_deref() == Some(contents) {
        return Ok(false);
    }
    write_atomic(path, contents)?;
    Ok(true)
}

pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))
}

/// Removes every `*.lock` file under `dir` (stale git lock files a killed git left; the
/// callers hold the lock that proves no git is running there).
pub fn remove_locks_under(dir: &Path) {
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "lock") {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("xtask-fsx-{}", std::process::id()));
        fs_err::create_dir_all(&dir).unwrap();
        let f = dir.join("a.patch");
        write_atomic(&f, b"one").unwrap();
        assert!(!write_if_changed(&f, b"one").unwrap());
        assert!(write_if_changed(&f, b"two").unwrap());
        assert_eq!(fs_err::read(&f).unwrap(), b"two");
        let names: Vec<_> = fs_err::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.patch")]);
        fs_err::remove_dir_all(&dir).unwrap();
    }
}
