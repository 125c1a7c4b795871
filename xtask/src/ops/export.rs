//! Writing a checkout's commits back as a stack: `git format-patch` of a range into files
//! named after their subjects, and the stack folder written in an order that an interruption
//! cannot corrupt. `save` and `sync --update` both go through here.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::git::{self, Checkout};
use crate::manifest::{self, PatchName};
use crate::stack::{Layout, Project};
use crate::{fsx, patch};

/// One exported patch: the file name it gets and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub name: PatchName,
    pub subject: String,
    pub bytes: Vec<u8>,
}

/// Exports `base..head` through a scratch folder under `target/xtask/`.
pub fn export_range(
    co: &Checkout,
    layout: &Layout,
    base: git2::Oid,
    head: git2::Oid,
    project: &Project,
) -> Result<Vec<Exported>> {
    let scratch = layout
        .xtask_target()
        .join(format!("export-{}", project.name));
    let _ = fs_err::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("creating `{}`", scratch.display()))?;
    let exported = export(co, base, head, &scratch, project);
    let _ = fs_err::remove_dir_all(&scratch);
    exported
}

/// Exports `base..head` and names the files, checking each the way `check` will.
fn export(
    co: &Checkout,
    base: git2::Oid,
    head: git2::Oid,
    scratch: &Path,
    project: &Project,
) -> Result<Vec<Exported>> {
    let files = co.export(&base.to_string(), &head.to_string(), scratch)?;
    // Reuse the existing file name of a patch whose subject is unchanged, so edits to a
    // patch's content never rename its file.
    let mut old_names: Vec<(String, PatchName)> = Vec::new();
    for name in &project.stack.series {
        if let Ok(text) = fs_err::read_to_string(project.patch_path(name))
            && let Ok(info) = patch::parse(&text)
        {
            old_names.push((info.subject, name.clone()));
        }
    }
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let bytes =
            std::fs::read(&file).with_context(|| format!("reading `{}`", file.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let info = match patch::parse(&text) {
            Ok(info) => info,
            Err(e) => bail!("exported `{}` does not parse: {e}", file.display()),
        };
        if info.status.is_none() {
            problems.push(format!(
                "  `{}` has no `Upstream-Status:` trailer",
                info.subject
            ));
        }
        for p in &info.paths {
            if let Err(e) = patch::check_path(p) {
                problems.push(format!("  `{}`: {e}", info.subject));
            }
        }
        let reused = old_names
            .iter()
            .position(|(s, n)| *s == info.subject && !used.contains(n.as_str()));
        let name = match reused {
            Some(i) => old_names.remove(i).1,
            None => unique_name(&patch::file_name_for(&info.subject), &used),
        };
        used.insert(name.as_str().to_string());
        out.push(Exported {
            name,
            subject: info.subject,
            bytes,
        });
    }
    if !problems.is_empty() {
        bail!(
            "nothing was saved; fix these commits first (`git rebase -i {}` and reword):\n{}\nthe trailer is one of {}",
            git::BASE_REF,
            problems.join("\n"),
            patch::STATUS_HELP
        );
    }
    Ok(out)
}

fn unique_name(wanted: &PatchName, used: &BTreeSet<String>) -> PatchName {
    let stem = wanted.as_str().trim_end_matches(".patch");
    let mut candidate = wanted.clone();
    let mut n = 2;
    while used.contains(candidate.as_str()) {
        candidate = PatchName::from_stem(&format!("{stem}-{n}"));
        n += 1;
    }
    candidate
}

/// Writes the patch files, then `stack.yaml` (the commit point), then removes dropped files,
/// so an interrupted save leaves at worst extra files, which `check` names for deletion.
pub fn write_series(project: &Project, exported: &[Exported], version: u64) -> Result<()> {
    let names: Vec<PatchName> = exported.iter().map(|e| e.name.clone()).collect();
    let text = manifest::with_series(&project.text, version, &names)
        .with_context(|| format!("updating `{}`", project.manifest_path.display()))?;
    write_files(&project.dir, &project.stack.series, exported, &text)
}

/// Writes a stack folder: patch files first, then `stack.yaml` (the commit point), then
/// removes the files of patches that left the series.
pub fn write_files(
    dir: &Path,
    old_series: &[PatchName],
    exported: &[Exported],
    manifest_text: &str,
) -> Result<()> {
    for e in exported {
        fsx::write_if_changed(&dir.join(e.name.as_str()), &e.bytes)?;
    }
    fsx::write_atomic(&dir.join("stack.yaml"), manifest_text.as_bytes())?;
    let names: Vec<&PatchName> = exported.iter().map(|e| &e.name).collect();
    for old in old_series {
        if !names.contains(&old) {
            let path = dir.join(old.as_str());
            std::fs::remove_file(&path)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .with_context(|| format!("removing `{}`", path.display()))?;
        }
    }
    Ok(())
}

/// "1 added, 1 changed, 1 dropped, reordered" for the summary line.
pub fn describe_changes(old: &[(PatchName, Option<Vec<u8>>)], new: &[Exported]) -> String {
    let old_names: Vec<&PatchName> = old.iter().map(|(n, _)| n).collect();
    let new_names: Vec<&PatchName> = new.iter().map(|e| &e.name).collect();
    let added = new_names.iter().filter(|n| !old_names.contains(n)).count();
    let dropped = old_names.iter().filter(|n| !new_names.contains(n)).count();
    let changed = new
        .iter()
        .filter(|e| {
            old.iter()
                .any(|(n, b)| *n == e.name && b.as_deref() != Some(&e.bytes[..]))
        })
        .count();
    let kept_old: Vec<_> = old_names.iter().filter(|n| new_names.contains(n)).collect();
    let kept_new: Vec<_> = new_names.iter().filter(|n| old_names.contains(n)).collect();
    let mut parts = Vec::new();
    for (count, word) in [(added, "added"), (changed, "changed"), (dropped, "dropped")] {
        if count > 0 {
            parts.push(format!("{count} {word}"));
        }
    }
    if kept_old != kept_new {
        parts.push("reordered".into());
    }
    format!(
        "saved {} patch(es): {}",
        new.len(),
        if parts.is_empty() {
            "rewritten".into()
        } else {
            parts.join(", ")
        }
    )
}
#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, bytes: &str) -> Exported {
        Exported {
            name: PatchName::new(name).unwrap(),
            subject: String::new(),
            bytes: bytes.into(),
        }
    }

    #[test]
    fn describes_changes() {
        let old = vec![
            (PatchName::new("a.patch").unwrap(), Some(b"1".to_vec())),
            (PatchName::new("b.patch").unwrap(), Some(b"2".to_vec())),
            (PatchName::new("c.patch").unwrap(), Some(b"3".to_vec())),
        ];
        let new = vec![e("b.patch", "2"), e("a.patch", "1*"), e("d.patch", "4")];
        assert_eq!(
            describe_changes(&old, &new),
            "saved 3 patch(es): 1 added, 1 changed, 1 dropped, reordered"
        );
    }

    #[test]
    fn names_are_unique() {
        let used: BTreeSet<String> = ["x.patch".to_string(), "x-2.patch".to_string()].into();
        let name = |s: &str| PatchName::new(s).unwrap();
        assert_eq!(unique_name(&name("x.patch"), &used).as_str(), "x-3.patch");
        assert_eq!(unique_name(&name("y.patch"), &used).as_str(), "y.patch");
        // `2038.patch` taken: the next is `2038_2.patch`, not the numbered `2038-2.patch`.
        let used: BTreeSet<String> = ["2038.patch".to_string()].into();
        assert_eq!(
            unique_name(&name("2038.patch"), &used).as_str(),
            "2038_2.patch"
        );
    }
}
