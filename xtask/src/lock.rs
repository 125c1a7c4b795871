//! One writer per checkout: an advisory file lock next to it, `checkouts/<project>.lock`,
//! holding the pid and command of its holder so a second process can say who it waits for.
//!
//! While the tool runs a git operation that rewrites a checkout (see `ops::intent`), the git
//! process inherits the lock: the OS releases it only when the tool and that git are both
//! gone. So a process that holds the lock knows no git the tool started is still at work in
//! the checkout, and that a lock file such a git left behind is stale.

use std::fs::TryLockError;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use fs_err::{File, OpenOptions};

/// The locks this process holds, by path, so `shared_with_children` can find the file.
static HELD: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// Held for as long as the value lives; the OS releases it if the process dies.
pub struct CheckoutLock {
    path: PathBuf,
}

impl CheckoutLock {
    /// Takes the lock, waiting (and saying so on stderr) while another process holds it.
    pub fn acquire(path: &Path, what: &str) -> Result<CheckoutLock> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating `{}`", parent.display()))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening lock `{}`", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another xtask process"
                } else {
                    holder
                };
                eprintln!("waiting for `{}`, held by {holder}", path.display());
                file.lock()
                    .with_context(|| format!("locking `{}`", path.display()))?;
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking `{}`", path.display()));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "pid {} ({what})", std::process::id())?;
        file.flush()?;
        if let Ok(mut held) = HELD.lock() {
            held.push((path.to_path_buf(), file));
        }
        Ok(CheckoutLock {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for CheckoutLock {
    fn drop(&mut self) {
        if let Ok(mut held) = HELD.lock()
            && let Some(i) = held.iter().position(|(p, _)| *p == self.path)
        {
            // Dropping the file closes it, which releases the lock.
            held.remove(i);
        }
    }
}

/// While the guard lives, processes started by this one inherit the lock at `path` (when
/// this process holds it), so it stays taken until they end too.
pub fn shared_with_children(path: &Path) -> Shared {
    let mut fd = None;
    if let Ok(held) = HELD.lock()
        && let Some((_, file)) = held.iter().find(|(p, _)| p == path)
    {
        fd = inherit(file, true).then_some(path.to_path_buf());
    }
    Shared { path: fd }
}

pub struct Shared {
    path: Option<PathBuf>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(path) = &self.path
            && let Ok(held) = HELD.lock()
            && let Some((_, file)) = held.iter().find(|(p, _)| p == path)
        {
            inherit(file, false);
        }
    }
}

/// Sets whether `file` survives `exec` into a child; false where the platform cannot say.
#[cfg(unix)]
fn inherit(file: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this process owns; F_GETFD/F_SETFD touch only its flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return false;
        }
        let flags = if on {
            flags & !libc::FD_CLOEXEC
        } else {
            flags | libc::FD_CLOEXEC
        };
        libc::fcntl(fd, libc::F_SETFD, flags) == 0
    }
}

#[cfg(not(unix))]
fn inherit(_file: &File, _on: bool) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_shared_lock_is_inherited_only_while_the_guard_lives() {
        use std::os::fd::AsRawFd;
        let dir = std::env::temp_dir().join(format!("xtask-lock-{}", std::process::id()));
        let path = dir.join("demo.lock");
        let lock = CheckoutLock::acquire(&path, "test").unwrap();
        let cloexec = || {
            let held = HELD.lock().unwrap();
            let (_, f) = held.iter().find(|(p, _)| *p == path).unwrap();
            // SAFETY: reads the flags of a descriptor this process owns.
            unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
        };
        assert!(cloexec());
        {
            let _shared = shared_with_children(&path);
            assert!(!cloexec());
        }
        assert!(cloexec());
        drop(lock);
        assert!(HELD.lock().unwrap().iter().all(|(p, _)| *p != path));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
