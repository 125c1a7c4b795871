//! Stacks on disk: where things live (`patches/`, `checkouts/`, `target/xtask/`), loading a
//! stack with its patch files, the lint `check` and `sync` share, and the checkout's record of
//! what was last synced or saved.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::{self, PatchName, Stack};
use crate::{fsx, patch};

/// Where the tool reads and writes, relative to the repository root.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn patches(&self) -> PathBuf {
        self.root.join("patches")
    }
    pub fn stack_dir(&self, project: &str) -> PathBuf {
        self.patches().join(project)
    }
    pub fn checkouts(&self) -> PathBuf {
        self.root.join("checkouts")
    }
    pub fn checkout(&self, project: &str) -> PathBuf {
        self.checkouts().join(project)
    }
    pub fn lock_file(&self, project: &str) -> PathBuf {
        self.checkouts().join(format!("{project}.lock"))
    }
    pub fn experiment_file(&self) -> PathBuf {
        self.root.join("experiment.yaml")
    }
    pub fn xtask_target(&self) -> PathBuf {
        self.root.join("target").join("xtask")
    }
    /// A path as shown to people: relative to the root when it is inside it.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Every project with a `stack.yaml`, sorted by name.
    pub fn projects(&self) -> Result<Vec<String>> {
        let dir = self.patches();
        let mut names = Vec::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading `{}`", dir.display()))?
        {
            let entry = entry?;
            // `symlink_metadata`, not `is_file`: a `stack.yaml` that is a link (even a
            // dangling one) is a stack, so that loading it is refused loudly, not skipped.
            if entry.path().join("stack.yaml").symlink_metadata().is_ok() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The named projects, or all of them when none are named; unknown names are errors.
    pub fn select(&self, wanted: &[String]) -> Result<Vec<String>> {
        let all = self.projects()?;
        if wanted.is_empty() {
            return Ok(all);
        }
        for w in wanted {
            if !all.contains(w) {
                bail!("no stack `{w}`: expected one of {}", all.join(", "));
            }
        }
        Ok(wanted.to_vec())
    }
}

/// The largest `stack.yaml` the tool reads; real ones are a few KB.
pub const MAX_STACK_BYTES: u64 = 1 << 20;

/// The largest patch file the tool reads. Large enough for a patch that regenerates a
/// `configure` script or a big generated file; files are read whole, so this bounds memory.
pub const MAX_PATCH_BYTES: u64 = 32 << 20;

/// Refuses a stack file (`stack.yaml` or a patch) that is not a regular file, or is larger
/// than `limit`, without reading it. A link is refused even when it points inside the
/// repository: `stack.yaml` linked to `~/.git-credentials` would put the secret in `check`'s
/// error output, which CI logs.
pub fn check_stack_file(path: &Path, shown: &str, limit: u64) -> Result<std::fs::Metadata> {
    let meta = fs_err::symlink_metadata(path)?;
    match refusal(&meta, limit) {
        Some(why) => bail!("{shown}: refused: {why}"),
        None => Ok(meta),
    }
}

/// Why a stack file with this metadata is refused, if it is.
fn refusal(meta: &std::fs::Metadata, limit: u64) -> Option<String> {
    if meta.file_type().is_symlink() {
        Some(
            "a symbolic link; stack files must be regular files (a link could point at a secret)"
                .into(),
        )
    } else if !meta.is_file() {
        Some("not a regular file".into())
    } else if meta.len() > limit {
        Some(format!(
            "{} bytes, over the limit of {limit} bytes for this file (see docs/stack-format.md)",
            meta.len()
        ))
    } else {
        None
    }
}

/// Reads a stack file after [`check_stack_file`], and never more than `limit` bytes, even if
/// the file grows or is swapped for a link between the check and the read.
pub fn read_stack_file(path: &Path, shown: &str, limit: u64) -> Result<Vec<u8>> {
    let checked = check_stack_file(path, shown, limit)?;
    let file = fs_err::File::open(path)?;
    let opened = file.metadata()?;
    if !opened.is_file() || !same_file(&checked, &opened) {
        bail!("{shown}: refused: the file changed while it was being opened");
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        bail!("{shown}: refused: it grew past the limit of {limit} bytes while being read");
    }
    Ok(bytes)
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

/// `experiment.yaml`, checked, with every stack it names present in `patches/`.
pub fn load_experiment(layout: &Layout) -> Result<crate::manifest::Experiment> {
    let path = layout.experiment_file();
    let shown = layout.show(&path);
    if path.symlink_metadata().is_err() {
        bail!(
            "there is no {shown}: it says which interpreters and toolchain stacks the experiment has (see docs/stack-format.md)"
        );
    }
    let bytes = read_stack_file(&path, &shown, MAX_STACK_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{shown}: not UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    let experiment = crate::manifest::experiment::parse(&shown, &text)?;
    let projects = layout.projects()?;
    for name in experiment.stacks() {
        if !projects.iter().any(|p| p == name) {
            bail!(
                "{shown} names the stack `{}`, which {} does not have",
                crate::manifest::token(name),
                layout.show(&layout.patches())
            );
        }
    }
    Ok(experiment)
}

/// A stack as loaded from `patches/<project>/`.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    pub manifest_path: PathBuf,
    /// `stack.yaml` as written, for surgical edits that keep comments.
    pub text: String,
    pub stack: Stack,
}

impl Project {
    pub fn load(layout: &Layout, name: &str) -> Result<Project> {
        let dir = layout.stack_dir(name);
        let manifest_path = dir.join("stack.yaml");
        let shown = layout.show(&manifest_path);
        let bytes = read_stack_file(&manifest_path, &shown, MAX_STACK_BYTES)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{shown}: not UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            )
        })?;
        let stack = manifest::parse(&shown, &text)?;
        // Every command reads the patch files after this: refuse links and oversized files
        // here, before anything reads them. A missing file is left to the lint, which names
        // the series entry.
        for name in &stack.series {
            let path = dir.join(name.as_str());
            if path.symlink_metadata().is_ok() {
                check_stack_file(&path, &layout.show(&path), MAX_PATCH_BYTES)?;
            }
        }
        Ok(Project {
            name: name.to_string(),
            dir,
            manifest_path,
            text,
            stack,
        })
    }

    /// Locks the checkout for `command`, then reads the stack under the lock, so a
    /// concurrent save is seen whole. The checkout stays locked while the guard lives.
    pub fn lock_and_load(
        layout: &Layout,
        name: &str,
        command: &str,
    ) -> Result<(crate::lock::CheckoutLock, Project)> {
        let lock = crate::lock::CheckoutLock::acquire(&layout.lock_file(name), command)?;
        Ok((lock, Project::load(layout, name)?))
    }

    pub fn patch_path(&self, name: &PatchName) -> PathBuf {
        self.dir.join(name.as_str())
    }

    pub fn series_paths(&self) -> Vec<PathBuf> {
        self.stack
            .series
            .iter()
            .map(|p| self.patch_path(p))
            .collect()
    }
}

/// One problem `check` reports: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Checks that the series and the files agree and that every patch is well-formed, says
/// where it comes from upstream, and stays inside the tree.
pub fn lint(layout: &Layout, project: &Project) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let manifest = layout.show(&project.manifest_path);
    let mut on_disk = Vec::new();
    for entry in fs_err::read_dir(&project.dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".patch") {
            on_disk.push(name);
        }
    }
    on_disk.sort();
    for name in &on_disk {
        if !project.stack.series.iter().any(|p| p.as_str() == name) {
            problems.push(Problem {
                location: layout.show(&project.dir.join(name)),
                message: format!("patch file has no entry in the series of {manifest}; add it there or delete the file"),
            });
        }
    }
    for name in &project.stack.series {
        let path = project.patch_path(name);
        let shown = layout.show(&path);
        // Lossy: a patch to a Latin-1 file is still a patch; only the names we read must be UTF-8.
        // Present but refused (a link, too big): say so, and read nothing.
        if let Ok(meta) = path.symlink_metadata()
            && let Some(why) = refusal(&meta, MAX_PATCH_BYTES)
        {
            problems.push(Problem {
                location: shown,
                message: format!("refused: {why}"),
            });
            continue;
        }
        let Ok(text) = read_stack_file(&path, &shown, MAX_PATCH_BYTES)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
        else {
            let line = project
                .text
                .lines()
                .position(|l| l.trim_start().trim_start_matches("- ").trim() == name.as_str())
                .map_or(1, |i| i + 1);
            problems.push(Problem {
                location: format!("{manifest}:{line}"),
                message: format!("series entry `{name}` has no file `{shown}`"),
            });
            continue;
        };
        match patch::parse(&text) {
            Err(e) => problems.push(Problem {
                location: shown,
                message: e,
            }),
            Ok(info) => {
                if info.status.is_none() {
                    problems.push(Problem {
                        location: shown.clone(),
                        message: format!(
                            "no `Upstream-Status:` trailer; add one of {} to the commit message",
                            patch::STATUS_HELP
                        ),
                    });
                }
                for p in &info.paths {
                    if let Err(e) = patch::check_path(p) {
                        problems.push(Problem {
                            location: shown.clone(),
                            message: format!("refused: {e}"),
                        });
                    }
                }
            }
        }
    }
    Ok(problems)
}

/// Fails with every problem listed when the stack does not pass the lint.
pub fn require_clean_lint(layout: &Layout, project: &Project) -> Result<()> {
    let problems = lint(layout, project)?;
    if problems.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    bail!(
        "stack `{}` is not valid; nothing was changed:\n{}",
        project.name,
        list.join("\n")
    )
}

/// The digest of a stack as it is on disk: its pinned base (as written, so no resolving is
/// needed on the no-op path) and its patch files.
pub fn digest(project: &Project) -> Result<String> {
    let base = match &project.stack.source {
        manifest::Source::Git { commit, .. } => commit.clone(),
        manifest::Source::Pypi {
            version, sha256, ..
        } => format!("sdist {version} {sha256}"),
    };
    series_digest(&base, project)
}

/// Identifies "this base with exactly these patch files".
pub fn series_digest(base: &str, project: &Project) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"xtask-series-v1\0");
    h.update(base.as_bytes());
    for name in &project.stack.series {
        let path = project.patch_path(name);
        let bytes = read_stack_file(&path, &path.display().to_string(), MAX_PATCH_BYTES)?;
        h.update(b"\0");
        h.update(name.as_str().as_bytes());
        h.update(b"\0");
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the checkout looked like when the tool last made it equal to the stack: kept in
/// `.git/xtask-state.json` so a no-op sync is a few reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutState {
    pub version: u32,
    /// The base commit the series was applied to.
    pub base: String,
    /// HEAD right after the series was applied or saved.
    pub tip: String,
    /// `series_digest` of the stack at that moment.
    pub digest: String,
}

const STATE_VERSION: u32 = 1;

impl CheckoutState {
    pub fn new(base: String, tip: String, digest: String) -> CheckoutState {
        CheckoutState {
            version: STATE_VERSION,
            base,
            tip,
            digest,
        }
    }

    fn path(checkout: &Path) -> PathBuf {
        checkout.join(".git").join("xtask-state.json")
    }

    /// Reads the record; a missing, unreadable or foreign-version record counts as none.
    pub fn read(checkout: &Path) -> Option<CheckoutState> {
        let text = fs_err::read_to_string(Self::path(checkout)).ok()?;
        let state: CheckoutState = serde_json::from_str(&text).ok()?;
        (state.version == STATE_VERSION).then_some(state)
    }

    pub fn write(&self, checkout: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)? + "\n";
        fsx::write_atomic(&Self::path(checkout), json.as_bytes())
    }

    /// Forgets the record (as after a first sync that never finished).
    pub fn remove(checkout: &Path) {
        let _ = fs_err::remove_file(Self::path(checkout));
    }
}
