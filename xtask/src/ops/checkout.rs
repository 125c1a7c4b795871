//! A checkout against its stack: what it looks like (`observe`, as plain data), what to do
//! about it (`plan`, pure), and bringing it to base plus series (`sync_one`), which every
//! command that needs an up-to-date checkout goes through.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use xshell::Shell;

use super::intent::{self, Op};
use super::recover::{Keep, backup, describe_unsaved, stopped};
use crate::git::{self, AmOutcome, Checkout};
use crate::lock::CheckoutLock;
use crate::manifest::Source;
use crate::pypi;
use crate::stack::{self, CheckoutState, Layout, Project};

/// A sync that stopped at a patch that does not apply; `main` turns it into exit code 3.
#[derive(Debug)]
pub struct Stopped {
    pub report: String,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

impl std::error::Error for Stopped {}

/// What a checkout looks like before a sync, as plain data.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub am_in_progress: bool,
    /// Nothing is checked out yet (fresh or interrupted clone).
    pub empty: bool,
    pub head: Option<String>,
    pub state: Option<CheckoutState>,
    /// Where HEAD was when an interrupted sync started, if one was interrupted.
    pub before_sync: Option<String>,
    /// `refs/xtask/base`: the base of whatever the tool last applied here.
    pub base_ref: Option<String>,
    pub digest: String,
    pub uncommitted: Vec<String>,
}

/// What sync should do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    UpToDate,
    Apply,
    /// Work would be lost: the reasons, for the message (or the backup under `--force`).
    Unsaved {
        uncommitted: Vec<String>,
        moved_from: Option<String>,
    },
    Conflict,
}

pub fn plan(o: &Observed) -> Plan {
    if o.am_in_progress {
        return Plan::Conflict;
    }
    if o.empty {
        return Plan::Apply;
    }
    // After an interrupted sync, the user's last HEAD is the one recorded when it started.
    let user_head = o.before_sync.as_ref().or(o.head.as_ref());
    let moved_from = match (&o.state, user_head, &o.base_ref) {
        (Some(s), Some(h), _) if &s.tip != h => Some(s.tip.clone()),
        // No record (a first sync that stopped and was continued, or a lost record): every
        // commit on top of the base is work the tool cannot vouch for.
        (None, Some(h), Some(b)) if h != b => Some(b.clone()),
        _ => None,
    };
    if !o.uncommitted.is_empty() || moved_from.is_some() {
        return Plan::Unsaved {
            uncommitted: o.uncommitted.clone(),
            moved_from,
        };
    }
    match &o.state {
        Some(s)
            if s.digest == o.digest
                && o.before_sync.is_none()
                && o.head.as_ref() == Some(&s.tip) =>
        {
            Plan::UpToDate
        }
        _ => Plan::Apply,
    }
}

pub fn observe(co: &Checkout, repo: &git2::Repository, project: &Project) -> Result<Observed> {
    let am_in_progress = co.am_in_progress();
    // A clone made with --no-checkout has no index file yet; reading a whole index (half a
    // megabyte on CPython) only to ask this would slow every no-op sync.
    let empty = !co.git_dir().join("index").exists();
    let uncommitted = if empty || am_in_progress {
        Vec::new()
    } else {
        co.uncommitted_changes()?
    };
    Ok(Observed {
        am_in_progress,
        empty,
        head: git::head_commit(repo).map(|h| h.to_string()),
        state: CheckoutState::read(&co.dir),
        before_sync: git::ref_target(repo, git::BEFORE_SYNC_REF).map(|h| h.to_string()),
        base_ref: git::ref_target(repo, git::BASE_REF).map(|h| h.to_string()),
        digest: stack::digest(project)?,
        uncommitted,
    })
}

/// For commands that use a checkout (`what`, such as "the build"): locks it, reads its stack
/// under the lock, syncs it (a no-op when it matches) and says what changed. The checkout
/// stays locked while the returned guard lives.
pub fn locked_and_synced(
    sh: &Shell,
    layout: &Layout,
    name: &str,
    command: &str,
    what: &str,
) -> Result<(Project, CheckoutLock)> {
    let (lock, project) = Project::lock_and_load(layout, name, command)?;
    let msg = sync_one(sh, layout, &project, false)
        .with_context(|| format!("syncing `{name}` before {what}"))?;
    if msg != "up to date" {
        crate::outln!("{name}: {msg}");
    }
    Ok((project, lock))
}

pub fn sync_one(sh: &Shell, layout: &Layout, project: &Project, force: bool) -> Result<String> {
    stack::require_clean_lint(layout, project)?;
    if project.name == git::STORE_DIR {
        bail!(
            "a stack cannot be named `{}`: `checkouts/{0}/` holds the shared object stores",
            git::STORE_DIR
        );
    }
    let dir = layout.checkout(&project.name);
    let shown = layout.show(&dir);
    let co = if dir.exists() {
        Checkout::new(sh, &dir)
    } else {
        fs_err::create_dir_all(layout.checkouts())?;
        match &project.stack.source {
            Source::Git { url, .. } => {
                // Every stack on this URL borrows its objects from one store (see git/store.rs).
                let store = git::Store::for_url(&layout.checkouts(), url);
                eprintln!(
                    "{}: cloning {url} (objects shared in `{}`)",
                    project.name,
                    layout.show(&store.git_dir)
                );
                Checkout::clone_shared(sh, &store, &dir)?
            }
            Source::Pypi { .. } => Checkout::init(sh, &dir)?,
        }
    };
    let recovery = intent::recover(&co, &shown, &project.name)?;
    refill_a_deleted_store(&co, project)?;
    let recovered = recovery.redo();
    let repo = co.open()?;
    let mut observed = observe(&co, &repo, project)?;
    // After a crash the changes in the work tree are the tool's own half-done work (recovery
    // kept whatever matched no commit), so they are redone, not reported as unsaved.
    let had_changes = !observed.uncommitted.is_empty();
    if recovered {
        observed.uncommitted.clear();
    }
    let mut planned = plan(&observed);
    if recovered && had_changes && planned == Plan::UpToDate {
        planned = Plan::Apply;
    }
    match planned {
        Plan::UpToDate => {
            intent::done(&co)?;
            // A checkout written by an older version of the tool (or by git by hand) is
            // settled once here; after that this finds nothing to do.
            co.settle_index()?;
            return Ok("up to date".into());
        }
        Plan::Conflict => bail!(
            "`{shown}` is in the middle of applying patches; finish with `cargo xtask sync --continue {0}` (after `git add`), `--skip {0}` or `--abort {0}`",
            project.name
        ),
        Plan::Unsaved {
            uncommitted,
            moved_from,
        } => {
            let what = describe_unsaved(
                &repo,
                &uncommitted,
                moved_from.as_deref(),
                observed.head.as_deref(),
            )?;
            if !force {
                let interrupted = if observed.before_sync.is_some() {
                    format!(
                        "\na sync of `{0}` was interrupted here; `cargo xtask sync --abort {0}` goes back to where it started (keeping these under a backup ref)",
                        project.name
                    )
                } else {
                    String::new()
                };
                bail!(
                    "`{shown}` has work that is not in patches/{0}/:\n{what}\nkeep it with `cargo xtask save {0}` (commit or stash uncommitted changes first), or discard it with `cargo xtask sync --force {0}` (a backup ref is kept){interrupted}",
                    project.name
                );
            }
            let refs = backup(
                &co,
                &Keep {
                    head: observed
                        .before_sync
                        .as_ref()
                        .or(observed.head.as_ref())
                        .map(String::as_str),
                    uncommitted: &observed.uncommitted,
                    files: &[],
                },
                "xtask: backup before sync --force",
            )?;
            eprintln!(
                "{}: replacing unsaved work; kept as {}",
                project.name,
                refs.join(" and ")
            );
        }
        Plan::Apply => {}
    }

    let base = resolve_base(sh, layout, &co, &repo, project)?;
    // Where to go back to on `--abort`, and the marker of a sync under way. A first sync has
    // nothing checked out yet, so its starting point is the base itself.
    if observed.before_sync.is_none() {
        let start = if observed.empty {
            Some(&base)
        } else {
            observed.head.as_ref()
        };
        if let Some(start) = start {
            co.update_ref(git::BEFORE_SYNC_REF, start, "xtask: sync started")?;
        }
    }
    // Already on the base with nothing changed (a series that was emptied, or a retry): the
    // checkout needs no rewrite, which saves a full index refresh on CPython.
    let at_base = observed.head.as_deref() == Some(base.as_str())
        && !observed.empty
        && observed.uncommitted.is_empty()
        && !recovered
        && co.on_branch(&repo);
    if !at_base {
        if !recovered {
            keep_untracked(&co, &repo, &shown, project, &base, force)?;
        }
        intent::run(
            &co,
            Op::Checkout {
                target: base.clone(),
            },
            || co.reset_branch(&base),
        )?;
    }
    co.update_ref(git::BASE_REF, &base, "xtask: sync base")?;
    let patches = project.series_paths();
    if !patches.is_empty()
        && let AmOutcome::Stopped { git_output } = intent::run(&co, Op::Am, || co.am(&patches))?
    {
        return Err(stopped(layout, &co, project, &base, &git_output).into());
    }
    intent::done(&co)?;
    finish(&co, &repo, project, &base)?;
    Ok(format!(
        "synced {} patch{} onto {}",
        patches.len(),
        if patches.len() == 1 { "" } else { "es" },
        git::short(&base)
    ))
}

/// A checkout whose shared store was deleted lacks the upstream objects its HEAD needs: the
/// store is made again and the tracked branch and base fetched into it before anything reads
/// the checkout.
fn refill_a_deleted_store(co: &Checkout, project: &Project) -> Result<()> {
    let (Some(store), Source::Git { commit: id, .. }) = (co.store(), &project.stack.source) else {
        return Ok(());
    };
    if store.git_dir.is_dir() {
        return Ok(());
    }
    eprintln!(
        "{}: the shared store `{}` is gone; fetching `{}` again",
        project.name,
        store.git_dir.display(),
        project.stack.track
    );
    intent::run(co, Op::Fetch, || co.fetch_branch(&project.stack.track))?;
    if !co.has_commit(&co.open()?, id) {
        intent::run(co, Op::Fetch, || co.fetch_commit(id))?;
    }
    Ok(())
}

/// `git checkout --force` writes over untracked files where the target tracks a file. A
/// plain sync refuses and names them; `--force` keeps them under a backup ref first.
fn keep_untracked(
    co: &Checkout,
    repo: &git2::Repository,
    shown: &str,
    project: &Project,
    target: &str,
    force: bool,
) -> Result<()> {
    let files = untracked_in_the_way(repo, &co.dir, git2::Oid::from_str(target)?)?;
    if files.is_empty() {
        return Ok(());
    }
    if !force {
        let mut listed: Vec<String> = files
            .iter()
            .take(10)
            .map(|f| format!("  untracked: {f}"))
            .collect();
        if files.len() > 10 {
            listed.push(format!("  ... and {} more", files.len() - 10));
        }
        bail!(
            "`{shown}` has untracked files where {} tracks files, and the checkout would write over them:\n{}\nmove them away, or rerun with `cargo xtask sync --force {}` (they are kept under a backup ref)",
            git::short(target),
            listed.join("\n"),
            project.name
        );
    }
    let refs = backup(
        co,
        &Keep {
            files: &files,
            ..Keep::default()
        },
        "xtask: untracked files before sync --force",
    )?;
    eprintln!(
        "{}: replacing untracked files; kept as {}",
        project.name,
        refs.join(" and ")
    );
    Ok(())
}

/// Files of commit `target` that a checkout would write over although the index does not
/// track them: an untracked (or ignored) file at the path, or at one of its folders.
pub fn untracked_in_the_way(
    repo: &git2::Repository,
    dir: &Path,
    target: git2::Oid,
) -> Result<Vec<String>> {
    let tree = repo.find_commit(target)?.tree()?;
    let mut paths = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob)
            && let Ok(name) = entry.name()
        {
            paths.push(format!("{root}{name}"));
        }
        git2::TreeWalkResult::Ok
    })?;
    // A checkout with nothing checked out yet has no index file: nothing is tracked.
    let tracked: HashSet<String> = if dir.join(".git/index").exists() {
        repo.index()?
            .iter()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect()
    } else {
        HashSet::new()
    };
    Ok(in_the_way(&paths, &tracked, |p| {
        std::fs::symlink_metadata(dir.join(p)).ok().map(|m| {
            if m.is_dir() {
                OnDisk::Dir
            } else {
                OnDisk::File
            }
        })
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnDisk {
    File,
    Dir,
}

/// The pure part of `untracked_in_the_way`: `paths` of the target, the `tracked` paths, and
/// what is on disk at a path.
fn in_the_way(
    paths: &[String],
    tracked: &HashSet<String>,
    on_disk: impl Fn(&str) -> Option<OnDisk>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen_dirs = HashSet::new();
    for p in paths.iter().filter(|p| !tracked.contains(*p)) {
        // A file where the target has a folder is in the way too.
        for (i, _) in p.match_indices('/') {
            let folder = &p[..i];
            if seen_dirs.insert(folder.to_string())
                && !tracked.contains(folder)
                && on_disk(folder) == Some(OnDisk::File)
            {
                out.push(folder.to_string());
            }
        }
        match on_disk(p) {
            Some(OnDisk::File) => out.push(p.clone()),
            Some(OnDisk::Dir) => out.push(format!("{p}/")),
            None => {}
        }
    }
    out
}

/// Records the checkout as equal to the stack and forgets the interrupted-sync marker.
fn finish(co: &Checkout, repo: &git2::Repository, project: &Project, base: &str) -> Result<()> {
    let tip = git::head_commit(repo).context("no HEAD after applying the series")?;
    let digest = stack::digest(project)?;
    CheckoutState::new(base.to_string(), tip.to_string(), digest).write(&co.dir)?;
    co.delete_ref(git::BEFORE_SYNC_REF)?;
    // The no-op path of every later command is a `git status` that trusts the index.
    co.settle_index()
}

/// Makes sure the base commit is in the checkout, fetching or importing it when it is not.
fn resolve_base(
    sh: &Shell,
    layout: &Layout,
    co: &Checkout,
    repo: &git2::Repository,
    project: &Project,
) -> Result<String> {
    match &project.stack.source {
        Source::Git { url, commit: id } => {
            if co.has_commit(repo, id) {
                return Ok(id.clone());
            }
            eprintln!(
                "{}: fetching `{}` from {url}",
                project.name, project.stack.track
            );
            intent::run(co, Op::Fetch, || co.fetch_branch(&project.stack.track))?;
            if !co.has_commit(repo, id) {
                // Not on the tracked branch (any more): ask for the commit itself.
                intent::run(co, Op::Fetch, || co.fetch_commit(id)).with_context(|| {
                    format!(
                        "base {id} of stack `{}` is not on `{}` of {url}",
                        project.name, project.stack.track
                    )
                })?;
            }
            Ok(id.clone())
        }
        Source::Pypi {
            name,
            version,
            sha256,
        } => {
            if let Some(id) = git::ref_target(repo, &pypi::import_ref(sha256)) {
                return Ok(id.to_string());
            }
            eprintln!("{}: downloading the {name} {version} sdist", project.name);
            let sdist = pypi::Index::fetch(sh, name)?.sdist(version)?;
            pypi::download_and_import(co, &layout.xtask_target(), name, version, &sdist, sha256)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(tip: &str, digest: &str) -> Option<CheckoutState> {
        Some(CheckoutState::new("b".into(), tip.into(), digest.into()))
    }

    #[test]
    fn finds_untracked_files_in_the_way() {
        let tracked: HashSet<String> = ["README", "old/kept.c"].map(String::from).into();
        let disk = |p: &str| match p {
            "README" | "notes.txt" | "old/kept.c" | "build" => Some(OnDisk::File),
            "docs" | "old" => Some(OnDisk::Dir),
            _ => None,
        };
        let cases: &[(&[&str], &[&str])] = &[
            // Tracked files are git's to replace; missing ones are not in the way.
            (&["README", "old/kept.c", "src/new.c"], &[]),
            (&["notes.txt"], &["notes.txt"]),
            // A folder where the target has a file, a file where it has a folder.
            (&["docs"], &["docs/"]),
            (&["build/out.o", "build/lib.o"], &["build"]),
            (&["old/new.c", "notes.txt", "a/b/c"], &["notes.txt"]),
        ];
        for (paths, want) in cases {
            let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            assert_eq!(in_the_way(&paths, &tracked, disk), *want, "{paths:?}");
        }
    }

    #[test]
    fn plans() {
        let clean = Observed {
            head: Some("t".into()),
            state: state("t", "d"),
            digest: "d".into(),
            ..Default::default()
        };
        assert_eq!(plan(&clean), Plan::UpToDate);
        assert_eq!(
            plan(&Observed {
                digest: "new".into(),
                ..clean.clone()
            }),
            Plan::Apply
        );
        assert_eq!(
            plan(&Observed {
                state: None,
                ..clean.clone()
            }),
            Plan::Apply
        );
        assert_eq!(
            plan(&Observed {
                am_in_progress: true,
                ..clean.clone()
            }),
            Plan::Conflict
        );
        assert_eq!(
            plan(&Observed {
                head: Some("u".into()),
                ..clean.clone()
            }),
            Plan::Unsaved {
                uncommitted: vec![],
                moved_from: Some("t".into())
            }
        );
        assert_eq!(
            plan(&Observed {
                uncommitted: vec!["a".into()],
                ..clean.clone()
            }),
            Plan::Unsaved {
                uncommitted: vec!["a".into()],
                moved_from: None
            }
        );
        // An interrupted sync: HEAD is wherever it stopped, the user's HEAD was the tip.
        let interrupted = Observed {
            head: Some("base".into()),
            before_sync: Some("t".into()),
            ..clean.clone()
        };
        assert_eq!(plan(&interrupted), Plan::Apply);
        // Nothing checked out yet: nothing to lose.
        assert_eq!(
            plan(&Observed {
                empty: true,
                head: Some("x".into()),
                ..clean
            }),
            Plan::Apply
        );
    }
}
