//! Unpacking an sdist (`.tar.gz`) in-process, without its top folder, refusing any member
//! that could land outside the tree: the archive comes from a package index we do not control.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, Read};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use tar::EntryType;

/// What an sdist may unpack to. Documented in docs/stack-format.md (`base`).
#[derive(Clone, Copy)]
struct Limits {
    /// The sum of the members' sizes.
    bytes: u64,
    /// Members of any kind.
    entries: u64,
    /// Decompressed bytes read, headers and long names included: past this the archive is
    /// refused even if no member's header said it was large (a gzip bomb).
    stream: u64,
}

const LIMITS: Limits = Limits {
    bytes: 1 << 30,
    entries: 100_000,
    stream: (1 << 30) + (64 << 20),
};

static SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// Unpacks `archive` into `dest` (which is replaced), dropping the one top folder every
/// sdist has. All or nothing: members go to a scratch folder beside `dest`, renamed into
/// place only when every member was accepted.
pub fn unpack_sdist(archive: &Path, dest: &Path) -> Result<()> {
    let parent = dest
        .parent()
        .with_context(|| format!("`{}` has no parent folder", dest.display()))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
    let tmp = parent.join(format!(".{name}.unpack-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
    let result = unpack_into(archive, &tmp, LIMITS).and_then(|()| {
        if dest.exists() {
            std::fs::remove_dir_all(dest)
                .with_context(|| format!("removing `{}`", dest.display()))?;
        }
        std::fs::rename(&tmp, dest)
            .with_context(|| format!("renaming `{}` to `{}`", tmp.display(), dest.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.with_context(|| format!("unpacking `{}`", archive.display()))
}

/// What an accepted member becomes, by its path below the top folder.
enum Kind {
    File,
    /// The target, and the member's name in the archive.
    Symlink(String, String),
}

fn unpack_into(archive: &Path, root: &Path, limits: Limits) -> Result<()> {
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening `{}`", archive.display()))?;
    let gz = flate2::read::GzDecoder::new(BufReader::new(file));
    let mut tar = tar::Archive::new(Limited {
        inner: gz,
        left: limits.stream,
        limit: limits.stream,
    });
    let mut top: Option<String> = None;
    let mut members: BTreeMap<String, Kind> = BTreeMap::new();
    // Symlinks by lower-cased path: on a case-insensitive file system `A/x` goes through `a`.
    let mut links: HashSet<String> = HashSet::new();
    let mut dirs: HashSet<String> = HashSet::new();
    let (mut count, mut total) = (0u64, 0u64);
    for entry in tar.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        count += 1;
        if count > limits.entries {
            bail!("the archive has more than {} members", limits.entries);
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let member = String::from_utf8_lossy(&raw).into_owned();
        (|| -> Result<()> {
            let name = std::str::from_utf8(&raw).ok().context("is not UTF-8")?;
            let Some(rel) = below_top(name, &mut top)? else {
                if kind.is_dir() {
                    return Ok(());
                }
                bail!("is not inside the archive's top folder");
            };
            let key = rel.join("/");
            if let Some(link) = through_symlink(&rel, &links) {
                bail!("goes through the symlink `{link}`");
            }
            if members.contains_key(&key) || (dirs.contains(&key) && !kind.is_dir()) {
                bail!("appears twice");
            }
            let path = rel.iter().fold(root.to_path_buf(), |p, c| p.join(c));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).context("creating its folder")?;
            }
            match kind {
                EntryType::Directory => {
                    std::fs::create_dir_all(&path).context("creating it")?;
                    dirs.insert(key);
                    return Ok(());
                }
                EntryType::Regular | EntryType::Continuous => {
                    total += entry.size();
                    check_total(total, limits)?;
                    let exec = entry.header().mode().unwrap_or(0o644) & 0o100 != 0;
                    let mut out = create_new(&path, exec).context("creating it")?;
                    std::io::copy(&mut entry, &mut out).context("writing it")?;
                    members.insert(key, Kind::File);
                }
                EntryType::Link => {
                    let target = link_name(&entry)?;
                    let target_rel = below_top(&target, &mut top)
                        .with_context(|| format!("hard link target `{target}`"))?
                        .with_context(|| format!("is a hard link to `{target}`, not a file"))?;
                    let target_key = target_rel.join("/");
                    if !matches!(members.get(&target_key), Some(Kind::File)) {
                        bail!(
                            "is a hard link to `{target}`, which is not a file earlier in the archive"
                        );
                    }
                    let from = target_rel.iter().fold(root.to_path_buf(), |p, c| p.join(c));
                    total += std::fs::metadata(&from).map(|m| m.len()).unwrap_or(0);
                    check_total(total, limits)?;
                    // A copy, not a link: git stores the content either way.
                    std::fs::copy(&from, &path).context("copying its target")?;
                    members.insert(key, Kind::File);
                }
                EntryType::Symlink => {
                    let target = link_name(&entry)?;
                    symlink_target(&rel, &target, &|p| is_symlink(&links, p))?;
                    make_symlink(&target, &path)?;
                    links.insert(key.to_lowercase());
                    members.insert(key, Kind::Symlink(target, member.clone()));
                }
                EntryType::Char | EntryType::Block => bail!("is a device file"),
                EntryType::Fifo => bail!("is a fifo"),
                other => bail!("has an unsupported type ({other:?})"),
            }
            Ok(())
        })()
        .with_context(|| format!("member `{member}`"))?;
    }
    // Checked again once every symlink is known: a link named earlier may resolve through a
    // symlink that comes later in the archive.
    for (path, kind) in &members {
        if let Kind::Symlink(target, member) = kind {
            let rel: Vec<String> = path.split('/').map(str::to_string).collect();
            symlink_target(&rel, target, &|p| is_symlink(&links, p))
                .with_context(|| format!("member `{member}`"))?;
        }
    }
    if top.is_none() {
        bail!("the archive is empty");
    }
    Ok(())
}

fn check_total(total: u64, limits: Limits) -> Result<()> {
    if total > limits.bytes {
        bail!("the archive unpacks to more than {}", size(limits.bytes));
    }
    Ok(())
}

/// `1024 MiB`, or `100 bytes` below a MiB.
pub(super) fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String> {
    let raw = entry
        .link_name_bytes()
        .context("is a link without a target")?;
    String::from_utf8(raw.into_owned())
        .ok()
        .context("has a link target that is not UTF-8")
}

/// The components of a member's name below the archive's one top folder (`None` for the
/// top folder itself), or why the name is refused.
fn below_top(name: &str, top: &mut Option<String>) -> Result<Option<Vec<String>>> {
    if name.starts_with('/') {
        bail!("is an absolute path");
    }
    if name.contains('\\') {
        bail!("has a backslash in its name");
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    // A leading `./` (archives made with `tar -C dir .`) is no folder.
    while parts.len() > 1 && parts[0] == "." {
        parts.remove(0);
    }
    let Some((first, rest)) = parts.split_first() else {
        bail!("has an empty name");
    };
    check_component(first)?;
    match top {
        Some(t) if t != first => bail!("is outside the archive's top folder `{t}`"),
        Some(_) => {}
        None => *top = Some(first.to_string()),
    }
    if rest.first() == Some(&"") {
        bail!("is an absolute path once the top folder is stripped");
    }
    let mut out = Vec::new();
    for c in rest {
        if *c == "." {
            continue;
        }
        check_component(c)?;
        out.push(c.to_string());
    }
    Ok((!out.is_empty()).then_some(out))
}

fn check_component(c: &str) -> Result<()> {
    if c.is_empty() {
        bail!("has an empty path component");
    }
    if c == ".." {
        bail!("has a `..` component");
    }
    if is_git(c) {
        bail!("has a `.git` component");
    }
    // Whatever the platform reads as a drive, a root or a separator (`C:` on Windows).
    if !matches!(
        Path::new(c).components().collect::<Vec<_>>().as_slice(),
        [Component::Normal(_)]
    ) {
        bail!("has the path component `{c}`");
    }
    Ok(())
}

/// `.git` as git itself compares it on case-insensitive file systems (`.GIT`, `.git.`).
fn is_git(c: &str) -> bool {
    c.trim_end_matches(['.', ' ']).eq_ignore_ascii_case(".git")
}

/// Where a symlink at `link` (components below the top) to `target` points, as components
/// below the top, or why it is refused: absolute, outside the tree, into `.git`, or through
/// another symlink (`is_link`), whose own target would make `..` land elsewhere.
fn symlink_target(
    link: &[String],
    target: &str,
    is_link: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>> {
    if target.is_empty() {
        bail!("is a symlink with an empty target");
    }
    if target.starts_with('/') || target.contains('\\') {
        bail!("is a symlink to `{target}`, outside the tree");
    }
    // The link's own folder holds no symlink (`through_symlink`); what the target walks
    // through after that is checked step by step.
    let mut at: Vec<String> = link[..link.len().saturating_sub(1)].to_vec();
    for c in target.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if !at.is_empty() && is_link(&at.join("/")) {
            bail!(
                "is a symlink to `{target}`, which goes through the symlink `{}`",
                at.join("/")
            );
        }
        if c == ".." {
            if at.pop().is_none() {
                bail!("is a symlink to `{target}`, outside the tree");
            }
        } else if is_git(c) {
            bail!("is a symlink into `.git` (`{target}`)");
        } else {
            check_component(c).with_context(|| format!("is a symlink to `{target}`, which"))?;
            at.push(c.to_string());
        }
    }
    Ok(at)
}

fn is_symlink(links: &HashSet<String>, path: &str) -> bool {
    links.contains(&path.to_lowercase())
}

/// The first symlink already unpacked that `rel` would be written through.
fn through_symlink(rel: &[String], links: &HashSet<String>) -> Option<String> {
    (1..rel.len())
        .map(|end| rel[..end].join("/"))
        .find(|p| is_symlink(links, p))
}

fn create_new(path: &Path, exec: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    // `create_new` never follows a symlink or reuses a file already there.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if exec { 0o755 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = exec;
    options.open(path)
}

#[cfg(unix)]
fn make_symlink(target: &str, path: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, path).context("creating the symlink")
}

#[cfg(not(unix))]
fn make_symlink(_target: &str, _path: &Path) -> Result<()> {
    bail!("is a symlink, which this platform does not unpack")
}

/// A reader that fails, rather than ends, once more than `left` bytes were read.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::other(format!(
                "the archive unpacks to more than {}",
                size(self.limit)
            ))
        })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
