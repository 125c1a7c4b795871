//! The shared object store: one bare repository per upstream URL under `checkouts/.store/`,
//! which every checkout of that upstream borrows objects from (`objects/info/alternates`), so
//! two stacks on CPython download and keep CPython's history once. Fetches go into the store
//! under its own lock, held only around the fetch, and the checkout gets the refs it asked for.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use super::cli::{self, FIXED_CONFIG};
use crate::lock::{self, CheckoutLock};

/// The folder under `checkouts/` that holds the stores. A stack of this name is refused.
pub const STORE_DIR: &str = ".store";

/// Where a store keeps each commit fetched by id, so that no `gc` in the store ever drops an
/// object a checkout's base needs (the store also never prunes, see `ensure`).
const FETCHED_REF: &str = "refs/xtask/fetched";

/// A shared bare repository for one upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// `checkouts/.store/<slug>-<hash>.git`.
    pub git_dir: PathBuf,
    pub url: String,
}

impl Store {
    /// The store for `url` under `checkouts`. The name is keyed by the URL exactly as the
    /// stacks spell it: two spellings of one upstream get two stores, which costs space but
    /// is never wrong.
    pub fn for_url(checkouts: &Path, url: &str) -> Store {
        Store {
            git_dir: checkouts.join(STORE_DIR).join(store_name(url)),
            url: url.to_string(),
        }
    }

    /// The store `checkout` borrows from: the `alternates` entry that names a folder of
    /// `checkouts/.store/`. `None` for a plain clone (made before stores existed) or an sdist
    /// import, which keep their own objects and fetch into themselves.
    pub fn of_checkout(checkout: &Path) -> Option<Store> {
        let objects = checkout.join(".git").join("objects");
        let text = std::fs::read_to_string(objects.join("info").join("alternates")).ok()?;
        text.lines()
            .map(|l| normalize(&objects.join(l.trim())))
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .find(|store| {
                store.parent().and_then(Path::file_name) == Some(STORE_DIR.as_ref())
                    && store.extension().is_some_and(|e| e == "git")
            })
            .map(|git_dir| {
                // The checkout's `origin`, set from the stack when it was made: it is there
                // even when the store was deleted and is made again.
                let url = git2::Repository::open(checkout)
                    .ok()
                    .and_then(|r| r.config().ok()?.get_string("remote.origin.url").ok())
                    .unwrap_or_default();
                Store { git_dir, url }
            })
    }

    fn lock_path(&self) -> PathBuf {
        self.git_dir.with_extension("lock")
    }

    /// The `alternates` line for a checkout at `checkout`: relative when the checkout sits in
    /// the same `checkouts/` folder, so the whole folder can move.
    pub fn alternates_line(&self, checkout: &Path) -> String {
        let same_root = checkout.parent() == self.git_dir.parent().and_then(Path::parent);
        match self.git_dir.file_name() {
            Some(name) if same_root => {
                format!("../../../{STORE_DIR}/{}/objects", name.to_string_lossy())
            }
            _ => self.git_dir.join("objects").display().to_string(),
        }
    }

    /// Creates the store if it is missing, under the store's lock: `git clone --bare` (every
    /// branch and tag, downloaded once for all the upstream's stacks) into a temporary name,
    /// renamed on success. A clone rather than `init` plus `fetch`: from a local mirror, git
    /// links the mirror's pack instead of reading and sending every object again.
    pub fn ensure(&self, sh: &Shell) -> Result<()> {
        if self.git_dir.is_dir() {
            return Ok(());
        }
        let _lock = CheckoutLock::acquire(&self.lock_path(), "creating the shared store")?;
        self.create(sh)
    }

    fn create(&self, sh: &Shell) -> Result<()> {
        if self.git_dir.is_dir() {
            return Ok(());
        }
        let tmp = super::tmp_sibling(&self.git_dir, "clone");
        let _ = fs_err::remove_dir_all(&tmp);
        let url = &self.url;
        {
            let _shared = lock::shared_with_children(&self.lock_path());
            cli::run(cmd!(
                sh,
                "git {FIXED_CONFIG...} clone --quiet --bare -- {url} {tmp}"
            ))
            .with_context(|| format!("cloning `{url}` into the shared store"))?;
        }
        let repo = git2::Repository::open_bare(&tmp)
            .with_context(|| format!("opening the shared store `{}`", tmp.display()))?;
        let mut config = repo.config()?;
        // Checkouts hold refs the store cannot see: an object the store no longer reaches
        // (a force-pushed branch) may still be a checkout's base, so nothing is ever pruned.
        config.set_str("gc.pruneExpire", "never")?;
        config.set_bool("core.logAllRefUpdates", false)?;
        // A bare clone keeps the upstream's branches as `refs/heads/*`; fetches keep them as
        // `refs/remotes/origin/*`, as a checkout does, so there is one name for each.
        let heads: Vec<(String, git2::Oid)> = repo
            .references_glob("refs/heads/*")?
            .flatten()
            .filter_map(|r| Some((r.name().ok()?.to_string(), r.target()?)))
            .collect();
        for (name, id) in heads {
            let branch = name.trim_start_matches("refs/heads/");
            repo.reference(
                &format!("refs/remotes/origin/{branch}"),
                id,
                true,
                "xtask: clone",
            )?;
            repo.find_reference(&name)?.delete()?;
        }
        drop(config);
        drop(repo);
        crate::ops::intent::checkpoint("in-store-clone");
        fs_err::rename(&tmp, &self.git_dir).with_context(|| {
            format!(
                "renaming `{}` to `{}`",
                tmp.display(),
                self.git_dir.display()
            )
        })
    }

    /// Fetches `spec` from the upstream into the store, under the store's lock (git inherits
    /// it), and returns the store's `FETCH_HEAD`, read under the same lock so a concurrent
    /// fetch of another stack cannot replace it in between.
    pub fn fetch(&self, sh: &Shell, spec: &str) -> Result<String> {
        let lock_path = self.lock_path();
        let _lock = CheckoutLock::acquire(&lock_path, "fetching into the shared store")?;
        self.create(sh)?;
        // Holding the lock means no git this tool started is still at work in the store (git
        // inherits the lock), so a ref lock file here is left by a killed fetch.
        remove_ref_locks(&self.git_dir);
        crate::ops::intent::checkpoint("in-store-fetch");
        let git_dir = &self.git_dir;
        {
            let _shared = lock::shared_with_children(&lock_path);
            // `GIT_DIR`, not `-C`: git must never go looking upward for another repository.
            cli::run(
                cmd!(
                    sh,
                    "git {FIXED_CONFIG...} fetch --quiet --no-tags --end-of-options origin {spec}"
                )
                .env("GIT_DIR", git_dir),
            )
            .with_context(|| {
                format!("fetching `{spec}` from {} into the shared store", self.url)
            })?;
        }
        let head = git_dir.join("FETCH_HEAD");
        fs_err::read_to_string(&head).with_context(|| format!("reading `{}`", head.display()))
    }

    /// Keeps commit `id` reachable in the store.
    pub fn pin(&self, id: &str) -> Result<()> {
        let repo = git2::Repository::open_bare(&self.git_dir)
            .with_context(|| format!("opening `{}`", self.git_dir.display()))?;
        let oid = git2::Oid::from_str(id)?;
        repo.reference(&format!("{FETCHED_REF}/{id}"), oid, true, "xtask: fetched")
            .with_context(|| format!("pinning {id} in `{}`", self.git_dir.display()))?;
        Ok(())
    }

    /// The store's `refs/remotes/origin/*`, as (name, id).
    pub fn remote_refs(&self) -> Vec<(String, git2::Oid)> {
        let Ok(repo) = git2::Repository::open_bare(&self.git_dir) else {
            return Vec::new();
        };
        let Ok(refs) = repo.references_glob("refs/remotes/origin/*") else {
            return Vec::new();
        };
        refs.flatten()
            .filter_map(|r| Some((r.name().ok()?.to_string(), r.target()?)))
            .collect()
    }
}

/// `<slug>-<12 hex digits of the URL's sha256>.git`: readable, and unique per URL.
fn store_name(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("")
        .trim_end_matches(".git");
    let mut slug: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if slug.trim_matches('-').is_empty() {
        slug = "upstream".into();
    }
    let hash = super::super::stack::hex(&Sha256::digest(url.as_bytes()));
    format!("{slug}-{}.git", &hash[..12])
}

/// `a/b/../c` as `a/c`, without touching the disk: alternates lines are relative to the
/// checkout's `objects` folder.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Removes ref lock files a killed `git fetch` left in `git_dir`.
fn remove_ref_locks(git_dir: &Path) {
    let _ = std::fs::remove_file(git_dir.join("packed-refs.lock"));
    let _ = std::fs::remove_file(git_dir.join("shallow.lock"));
    crate::fsx::remove_locks_under(&git_dir.join("refs"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stores_by_url() {
        let cases = [
            ("https://github.com/python/cpython", "cpython-"),
            ("https://github.com/python/cpython.git", "cpython-"),
            ("https://github.com/PyO3/pyo3/", "pyo3-"),
            ("git@host:team/x y.git", "x-y-"),
            ("file:///tmp/t/upstream", "upstream-"),
            ("https://host/", "host-"),
            ("..", "upstream-"),
        ];
        for (url, prefix) in cases {
            let name = store_name(url);
            assert!(name.starts_with(prefix), "{url}: {name}");
            assert!(
                name.ends_with(".git") && !name.contains('/'),
                "{url}: {name}"
            );
        }
        assert_ne!(
            store_name("https://github.com/python/cpython"),
            store_name("https://github.com/python/cpython.git")
        );
    }

    #[test]
    fn finds_the_store_a_checkout_borrows_from() {
        let tmp = std::env::temp_dir().join(format!("xtask-store-{}", std::process::id()));
        let checkouts = tmp.join("checkouts");
        let store = Store::for_url(&checkouts, "https://example.org/demo");
        let co = checkouts.join("demo");
        let info = co.join(".git/objects/info");
        fs_err::create_dir_all(&info).unwrap();
        assert_eq!(Store::of_checkout(&co), None);
        let line = store.alternates_line(&co);
        assert!(line.starts_with("../../../.store/demo-"), "{line}");
        fs_err::write(info.join("alternates"), format!("{line}\n")).unwrap();
        let found = Store::of_checkout(&co).unwrap();
        assert_eq!(found.git_dir, store.git_dir);
        // An alternate that is not a store (a `clone --shared`) is no store.
        fs_err::write(info.join("alternates"), "/elsewhere/objects\n").unwrap();
        assert_eq!(Store::of_checkout(&co), None);
        let _ = fs_err::remove_dir_all(&tmp);
    }
}
