//! Patch files: what `check` and `save` need to know about a `git format-patch` mbox, as pure
//! functions over its text (subject, `Upstream-Status:` trailer, paths it touches).

use std::fmt;

use crate::manifest::PatchName;

mod hunks;
mod text;

use hunks::hunk_counts;
pub use hunks::{Hunk, hunks, overlaps};
use text::{decode_header, split_diff_header, strip_patch_prefix, strip_side, unquote};

/// What a patch file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchInfo {
    /// The subject with any `[PATCH ...]` prefix removed.
    pub subject: String,
    pub status: Option<UpstreamStatus>,
    /// Every path named by a `diff --git` header, rename, copy, `---` or `+++` line.
    pub paths: Vec<String>,
}

/// The `Upstream-Status:` trailer, after the Yocto convention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamStatus {
    Pending,
    Submitted(String),
    Accepted(String),
    Backport(String),
    Inappropriate(String),
}

impl fmt::Display for UpstreamStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamStatus::Pending => write!(f, "Pending"),
            UpstreamStatus::Submitted(u) => write!(f, "Submitted {u}"),
            UpstreamStatus::Accepted(u) => write!(f, "Accepted {u}"),
            UpstreamStatus::Backport(u) => write!(f, "Backport {u}"),
            UpstreamStatus::Inappropriate(r) => write!(f, "Inappropriate {r}"),
        }
    }
}

pub const STATUS_HELP: &str =
    "`Pending`, `Submitted <url>`, `Accepted <url>`, `Backport <url>` or `Inappropriate <reason>`";

impl UpstreamStatus {
    pub fn parse(value: &str) -> Result<UpstreamStatus, String> {
        let value = value.trim();
        let (word, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        let url = |rest: &str| {
            if rest.starts_with("https://") || rest.starts_with("http://") {
                Ok(rest.to_string())
            } else {
                Err(format!(
                    "`Upstream-Status: {}` needs a URL after `{}`",
                    short(value),
                    short(word)
                ))
            }
        };
        match word {
            "Pending" if rest.is_empty() => Ok(UpstreamStatus::Pending),
            "Submitted" => url(rest).map(UpstreamStatus::Submitted),
            "Accepted" => url(rest).map(UpstreamStatus::Accepted),
            "Backport" => url(rest).map(UpstreamStatus::Backport),
            "Inappropriate" if !rest.is_empty() => Ok(UpstreamStatus::Inappropriate(rest.into())),
            "Inappropriate" => Err("`Upstream-Status: Inappropriate` needs a reason".into()),
            _ => Err(format!(
                "`Upstream-Status: {}` is not one of {STATUS_HELP}",
                short(value)
            )),
        }
    }
}

/// Parses a patch file. The error names the 1-based line where the problem is.
pub fn parse(text: &str) -> Result<PatchInfo, String> {
    let mut lines = text.lines().enumerate().peekable();
    match lines.peek() {
        Some((_, l)) if l.starts_with("From ") => {}
        _ => return Err("line 1: not a `git format-patch` mbox (no `From <id>` line)".into()),
    }
    // Headers, with RFC 2822 folding.
    let mut subject = None;
    for (_, line) in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if let Some(s) = line.strip_prefix("Subject: ") {
            subject = Some(s.to_string());
        } else if line.starts_with([' ', '\t'])
            && let Some(s) = subject.as_mut()
        {
            s.push_str(line);
        }
    }
    let subject = subject.ok_or("no `Subject:` header")?;
    let subject = strip_patch_prefix(&decode_header(&subject)).to_string();

    // `git am` splits a file at every line its mailsplit takes for an mbox `From ` line, so
    // a second one is a second commit, with its own unchecked `Upstream-Status:`.
    if let Some(i) = text.lines().skip(1).position(is_mbox_from_line) {
        return Err(format!(
            "line {}: a second mbox message starts here; a patch file holds one commit, so split it into two files",
            i + 2
        ));
    }

    // The message runs up to where `git mailinfo` sees the patch start (`---`, `diff -`,
    // `--- <file>`, `Index: `); its last paragraph holds the trailers.
    let mut message = Vec::new();
    let mut status = None;
    let mut paths = Vec::new();
    let mut in_message = true;
    let mut in_git_diff = false;
    let mut saw_diff = false;
    // Lines still to come in the current hunk (old side, new side): inside a hunk, `--- x`
    // is a removed line `-- x`, not a file header, exactly as `git apply` reads it.
    let mut hunk: Option<(u32, u32)> = None;
    for (i, line) in lines {
        let n = i + 1;
        if in_message {
            if is_patch_break(line) {
                in_message = false;
            } else {
                message.push(line);
                continue;
            }
        }
        if let Some((old, new)) = hunk.as_mut() {
            let counted = match line.bytes().next() {
                // An empty line is an empty context line, as GNU diff writes it.
                None | Some(b' ') => {
                    *old = old.saturating_sub(1);
                    *new = new.saturating_sub(1);
                    true
                }
                Some(b'-') => {
                    *old = old.saturating_sub(1);
                    true
                }
                Some(b'+') => {
                    *new = new.saturating_sub(1);
                    true
                }
                Some(b'\\') => true,
                _ => false,
            };
            if !counted || (*old == 0 && *new == 0) {
                hunk = None;
            }
            if counted {
                continue;
            }
        }
        if let Some(rest) = line.strip_prefix("diff --git ") {
            saw_diff = true;
            in_git_diff = true;
            let (a, b) = split_diff_header(rest)
                .ok_or(format!("line {n}: cannot read `{}`", short(line)))?;
            let side = |p: &str, s: &str| {
                strip_side(p, s).ok_or(format!("line {n}: `{}` lacks `{s}`", short(p)))
            };
            paths.push(side(&a, "a/")?);
            paths.push(side(&b, "b/")?);
        } else if line.starts_with("diff ") || line.starts_with("Index: ") {
            // A plain (non-git) diff: its `---`/`+++` lines name the files.
            in_git_diff = false;
        } else if let Some(p) = ["rename from ", "rename to ", "copy from ", "copy to "]
            .iter()
            .find_map(|k| line.strip_prefix(k))
        {
            paths.push(unquote(p));
        } else if let Some(p) = line
            .strip_prefix("--- ")
            .or_else(|| line.strip_prefix("+++ "))
        {
            saw_diff = true;
            let p = unquote(p);
            if p == "/dev/null" {
                continue;
            }
            match strip_side(&p, "a/").or_else(|| strip_side(&p, "b/")) {
                Some(side) => paths.push(side),
                None if in_git_diff => {
                    return Err(format!("line {n}: path `{}` lacks `a/` or `b/`", short(&p)));
                }
                // `git apply` strips one leading folder of a plain diff's path (`-p1`); the
                // whole path is checked, which refuses everything the stripped one would.
                None => paths.push(p),
            }
        } else if line.starts_with("@@ -") {
            hunk = Some(hunk_counts(line).ok_or(format!(
                "line {n}: cannot read hunk header `{}`",
                short(line)
            ))?);
        }
    }
    if !saw_diff {
        return Err("no diff: the patch changes nothing".into());
    }
    // Trailers: the last paragraph of the message.
    let last_para = message
        .iter()
        .rev()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty());
    for line in last_para {
        if let Some(v) = line.strip_prefix("Upstream-Status:") {
            status = Some(UpstreamStatus::parse(v)?);
        }
    }
    paths.sort();
    paths.dedup();
    Ok(PatchInfo {
        subject,
        status,
        paths,
    })
}

/// Where `git mailinfo` ends the commit message and starts the patch (its `patchbreak`).
fn is_patch_break(line: &str) -> bool {
    if line.starts_with("diff -") || line.starts_with("Index: ") {
        return true;
    }
    match line.strip_prefix("---") {
        Some(rest) => {
            rest.trim().is_empty()
                || (rest.starts_with(' ') && !rest[1..].starts_with(char::is_whitespace))
        }
        None => false,
    }
}

/// Whether `git mailsplit` takes this line for the start of a new message (its
/// `is_from_line`): `From `, then a time `hh:mm` and a year after it, as in
/// `From <id> Mon Sep 17 00:00:00 2001`.
fn is_mbox_from_line(line: &str) -> bool {
    let b = line.as_bytes();
    if b.len() < 19 || !line.starts_with("From ") {
        return false;
    }
    let Some(colon) = b[4..b.len() - 1]
        .iter()
        .rposition(|&c| c == b':')
        .map(|p| p + 4)
    else {
        return false;
    };
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    if colon < 4
        || ![colon - 4, colon - 2, colon - 1, colon + 1, colon + 2]
            .into_iter()
            .all(digit)
    {
        return false;
    }
    let year: String = line
        .get(colon + 3..)
        .unwrap_or("")
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    year.len() > 18 || year.parse::<u64>().is_ok_and(|y| y > 90)
}

/// A line or path as an error shows it: the start of a long one only.
fn short(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().count() <= 80 {
        return s.into();
    }
    let start: String = s.chars().take(60).collect();
    format!("{start}...").into()
}

/// Refuses paths that would reach outside the work tree or into git's own files.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') || path.starts_with('\\') || path.as_bytes().get(1) == Some(&b':') {
        return Err(format!("`{path}` is an absolute path"));
    }
    for part in path.split(['/', '\\']) {
        if part == ".." {
            return Err(format!("`{path}` climbs out of the tree with `..`"));
        }
        // git itself refuses `.git` in any case and with trailing dots or spaces (NTFS).
        if part
            .trim_end_matches(['.', ' '])
            .eq_ignore_ascii_case(".git")
        {
            return Err(format!("`{path}` reaches into `.git`"));
        }
    }
    if path.is_empty() || path.split('/').any(str::is_empty) {
        return Err(format!("`{path}` has an empty path component"));
    }
    Ok(())
}

/// A file name for a patch, made from its subject the way `git format-patch` does, without
/// the number prefix. Always a valid [`PatchName`], whatever the subject.
pub fn file_name_for(subject: &str) -> PatchName {
    let mut out = String::new();
    for c in subject.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let slug: String = out.trim_matches(['-', '.']).chars().take(60).collect();
    PatchName::from_stem(slug.trim_end_matches(['-', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: A U Thor <a@example.org>\nDate: Sat, 1 Jan 2000 00:00:00 +0000\nSubject: [PATCH] Teach the build about abi3t:\n =?UTF-8?q?caf=C3=A9?=\n\nBody text.\n\nUpstream-Status: Submitted https://github.com/x/y/pull/1\nSigned-off-by: A <a@example.org>\n---\n src/a.c | 1 +\n 1 file changed, 1 insertion(+)\n\ndiff --git a/src/a.c b/src/a.c\nindex 0000000000000000000000000000000000000000..1111111111111111111111111111111111111111 100644\n--- a/src/a.c\n+++ b/src/a.c\n@@ -0,0 +1 @@\n+x\n";

    #[test]
    fn reads_subject_status_and_paths() {
        let info = parse(PATCH).unwrap();
        assert_eq!(info.subject, "Teach the build about abi3t: café");
        assert_eq!(
            info.status,
            Some(UpstreamStatus::Submitted(
                "https://github.com/x/y/pull/1".into()
            ))
        );
        assert_eq!(info.paths, vec!["src/a.c".to_string()]);
    }

    #[test]
    fn status_values() {
        assert_eq!(
            UpstreamStatus::parse(" Pending"),
            Ok(UpstreamStatus::Pending)
        );
        assert!(UpstreamStatus::parse("Submitted").is_err());
        assert!(UpstreamStatus::parse("Merged https://x").is_err());
        assert!(UpstreamStatus::parse("Inappropriate").is_err());
        assert!(UpstreamStatus::parse("Inappropriate experiment only").is_ok());
    }

    #[test]
    fn no_status_is_none_and_status_outside_trailers_is_ignored() {
        let p = PATCH.replace(
            "Upstream-Status: Submitted https://github.com/x/y/pull/1\n",
            "",
        );
        assert_eq!(parse(&p).unwrap().status, None);
        let p = PATCH.replace("Body text.", "Upstream-Status: Pending\n\nmore");
        let p = p.replace(
            "Upstream-Status: Submitted https://github.com/x/y/pull/1\n",
            "",
        );
        assert_eq!(parse(&p).unwrap().status, None);
    }

    #[test]
    fn collects_every_path_including_renames_and_quoted() {
        let p = PATCH.replace(
            "diff --git a/src/a.c b/src/a.c",
            "diff --git a/old b/new\nsimilarity index 90%\nrename from old\nrename to ../new\ndiff --git \"a/sp ace\" \"b/.git/hooks/x\"\n--- \"a/sp ace\"\n+++ \"b/.git/hooks/x\"\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/src/a.c b/src/a.c",
        );
        let info = parse(&p).unwrap();
        assert_eq!(
            info.paths,
            vec!["../new", ".git/hooks/x", "new", "old", "sp ace", "src/a.c"]
        );
        let bad: Vec<_> = info
            .paths
            .iter()
            .filter_map(|p| check_path(p).err())
            .collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
    }

    #[test]
    fn one_message_per_file() {
        let two = format!("{PATCH}{}", PATCH.replace("src/a.c", "src/b.c"));
        let err = parse(&two).unwrap_err();
        assert!(err.starts_with("line 21: a second mbox message"), "{err}");
        // A body line that merely starts with `From ` is no message start, for git either.
        let p = PATCH.replace("Body text.", "From the docs: see 12 below.");
        assert!(parse(&p).is_ok());
        assert!(is_mbox_from_line(
            "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"
        ));
        assert!(is_mbox_from_line("From a@b Sat Jan  3 01:05:34 1996"));
        assert!(!is_mbox_from_line("From 12:30 on, 1985"));
    }

    #[test]
    fn every_file_header_path_is_read_plain_diffs_too() {
        let msg = PATCH.split("---\n").next().unwrap().to_string() + "---\n";
        let good = "diff --git a/ok b/ok\n--- a/ok\n+++ b/ok\n@@ -1 +1 @@\n-a\n+b\n";
        let plain = |old: &str, new: &str| {
            format!("--- {old}\t2001-02-03 04:05:06\n+++ {new}\n@@ -1 +1 @@\n-a\n+b\n")
        };
        for (text, want) in [
            // A plain diff before the first `diff --git` section.
            (
                msg.clone() + &plain("a/../evil", "b/../evil") + good,
                vec!["../evil", "ok"],
            ),
            // Without `a/` and `b/` (git apply strips one folder): the whole path.
            (
                msg.clone() + &plain("orig/../../x", "new/../../x"),
                vec!["new/../../x", "orig/../../x"],
            ),
            // Straight after the message, with no `---` line.
            (
                PATCH.split("---\n").next().unwrap().to_string() + &plain("a/f", "b/.git/config"),
                vec![".git/config", "f"],
            ),
            // Inside a hunk, `--- x` is the removed line `-- x`; after it, a header again.
            (
                msg.clone()
                    + "diff --git a/s.sql b/s.sql\n--- a/s.sql\n+++ b/s.sql\n@@ -1,2 +1,2 @@\n--- a/comment\n+++ b/comment\n x\n"
                    + &plain("a/../after", "b/../after"),
                vec!["../after", "s.sql"],
            ),
        ] {
            let info = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(info.paths, want, "{text}");
        }
    }

    #[test]
    fn path_rules() {
        for ok in ["a", "a/b.c", "Lib/.gitignore", "x/.github/y"] {
            check_path(ok).unwrap();
        }
        for bad in [
            "/etc/passwd",
            "a/../../b",
            ".git/config",
            "x/.GIT/y",
            ".git./x",
            "C:/x",
            "a//b",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_non_patches() {
        assert!(parse("hello\n").unwrap_err().starts_with("line 1:"));
        let no_diff = PATCH.split("diff --git").next().unwrap();
        assert!(parse(no_diff).unwrap_err().contains("changes nothing"));
    }

    #[test]
    fn file_names_from_subjects() {
        let name = |s: &str| file_name_for(s).as_str().to_string();
        assert_eq!(
            name("Teach build_ext about abi3t (PEP 803)"),
            "Teach-build_ext-about-abi3t-PEP-803.patch"
        );
        assert_eq!(name("..."), "patch.patch");
        assert_eq!(
            name("2038 problem: time_t wraps"),
            "2038_problem-time_t-wraps.patch"
        );
    }

    /// Property: every subject, however odd, gives a name `PatchName::new` accepts. The
    /// subjects come from a fixed-seed generator (no proptest: a few lines of xorshift give
    /// a reproducible run without another dependency) that favours the risky pieces: digit
    /// runs, spaces, dots, dashes, brackets, non-ASCII and long subjects.
    #[test]
    fn every_subject_gives_a_valid_name() {
        const PIECES: &[&str] = &[
            "0",
            "1",
            "2038",
            "0001",
            "9999",
            " ",
            "-",
            "--",
            ".",
            "..",
            "_",
            "+",
            "[PATCH]",
            "[3.15]",
            "Re:",
            ":",
            "/",
            "\\",
            "caf\u{e9}",
            "\u{1f600}",
            "\t",
            "Fix",
            "x",
            "gh-12345",
            "v1.2",
            "\"",
            "'",
            "(",
            ")",
            "#",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let subject: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let name = file_name_for(&subject);
            assert!(
                PatchName::new(name.as_str()).is_ok(),
                "{subject:?} gave {name}"
            );
            // And the name still says something: the fallback is only for empty slugs.
            if subject.bytes().any(|b| b.is_ascii_alphanumeric()) {
                assert_ne!(name.as_str(), "patch.patch", "{subject:?}");
            }
        }
    }
}
