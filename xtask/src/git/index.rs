//! Leaving a checkout's index settled after the tool wrote its work tree, so that the next
//! `git status` (the no-op path of every command) trusts the cached stat data instead of
//! hashing files again.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use xshell::cmd;

use super::Checkout;
use super::cli::{self, FIXED_CONFIG};

/// Past this the newest entry's mtime is not from the tool's own write (a clock jump, a
/// file touched into the future): waiting for it would not settle anything.
const MAX_WAIT: Duration = Duration::from_millis(1500);

// The ops layer calls this at the end of each operation that wrote a checkout: sync (and its
// no-op path, once), `--continue`/`--skip`, `--abort`, and the end of an update.
impl Checkout<'_> {
    /// Rewrites the index so that no entry is racily clean.
    ///
    /// git trusts an entry's stat data only when the file is older than the index file; an
    /// entry written in the same second as the index (git here compares whole seconds) is
    /// "racily clean" and every later `git status` hashes the file again. The tool's own
    /// status call uses `--no-optional-locks`, so it never writes the index that would end
    /// this. After a checkout or `git am` nearly every file it wrote is racy, so this waits
    /// until the clock has left the second of the newest file (at most about a second, and
    /// only after a command that wrote files) and then writes the index once more. Call it
    /// once at the end of an operation, holding the checkout's lock.
    pub fn settle_index(&self) -> Result<()> {
        let index = self.git_dir().join("index");
        for _ in 0..3 {
            let Some(newest) = newest_racy_second(&index)? else {
                return Ok(());
            };
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            // A margin past the second: file times come from the kernel's coarse clock.
            let wait = Duration::from_secs(newest + 1) + Duration::from_millis(20);
            if let Some(left) = wait.checked_sub(now) {
                if left > MAX_WAIT {
                    return Ok(());
                }
                std::thread::sleep(left);
            }
            let (sh, dir) = (self.sh, &self.dir);
            // Exit status 1 means some files differ from the index; that is the user's
            // business, not a failure to settle.
            cli::output(cmd!(
                sh,
                "git -C {dir} {FIXED_CONFIG...} update-index -q --refresh --force-write-index"
            ))?;
        }
        Ok(())
    }
}

/// The newest mtime (whole seconds) among the entries that are racily clean against the
/// index file, if any.
pub(crate) fn newest_racy_second(index: &Path) -> Result<Option<u64>> {
    let Ok(meta) = fs_err::metadata(index) else {
        return Ok(None);
    };
    let written = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let index = git2::Index::open(index)
        .with_context(|| format!("reading the index `{}`", index.display()))?;
    Ok(index
        .iter()
        .map(|e| u64::from(e.mtime.seconds().max(0).unsigned_abs()))
        .filter(|&s| s >= written)
        .max())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(path: &Path, t: SystemTime) {
        fs_err::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn settling_leaves_no_racily_clean_entry() {
        let sh = xshell::Shell::new().unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-settle-{}", std::process::id()));
        let _ = fs_err::remove_dir_all(&dir);
        fs_err::create_dir_all(&dir).unwrap();
        let files: Vec<_> = (0..50).map(|i| dir.join(format!("f{i}"))).collect();
        for (i, f) in files.iter().enumerate() {
            fs_err::write(f, format!("{i}\n")).unwrap();
        }
        cmd!(sh, "git init --quiet -- {dir}").run().unwrap();
        cmd!(sh, "git -C {dir} add .").run().unwrap();
        // Every file and the index carry the same second, as after a checkout that wrote
        // both within one second: every entry is racily clean.
        let past = UNIX_EPOCH + Duration::from_secs(978_307_200);
        for f in &files {
            set_mtime(f, past);
        }
        cmd!(sh, "git -C {dir} update-index -q --refresh")
            .run()
            .unwrap();
        let index = dir.join(".git/index");
        set_mtime(&index, past);
        assert_eq!(newest_racy_second(&index).unwrap(), Some(978_307_200));

        Checkout::new(&sh, &dir).settle_index().unwrap();
        assert_eq!(newest_racy_second(&index).unwrap(), None);
        // And git agrees: a status that may write the index finds nothing to rewrite.
        let before = fs_err::metadata(&index).unwrap().modified().unwrap();
        cmd!(sh, "git -C {dir} status --porcelain").run().unwrap();
        assert_eq!(
            fs_err::metadata(&index).unwrap().modified().unwrap(),
            before
        );
        let _ = fs_err::remove_dir_all(&dir);
    }
}
