//! One writer per checkout: an advisory file lock next to it, `checkouts/<project>.lock`,
//! holding the pid and command of its holder so a second process can say who it waits for.

use std::fs::TryLockError;
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result};
use fs_err::{File, OpenOptions};

/// Held for as long as the value lives; the OS releases it if the process dies.
pub struct CheckoutLock {
    _file: File,
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
        Ok(CheckoutLock { _file: file })
    }
}
