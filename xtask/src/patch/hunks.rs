//! Hunks of a patch: their line ranges, and which later hunks meet lines earlier ones wrote.

use super::text::{split_diff_header, strip_side};

/// The line counts `(old, new)` of a hunk header `@@ -a,b +c,d @@` (a missing count is 1).
pub(super) fn hunk_counts(line: &str) -> Option<(u32, u32)> {
    let h = hunk_ranges(line)?;
    Some((h.0.1, h.1.1))
}

/// The ranges `((start, len), (start, len))` of a hunk header.
fn hunk_ranges(line: &str) -> Option<((u32, u32), (u32, u32))> {
    let mut parts = line.strip_prefix("@@ -")?.split_whitespace();
    let range = |r: Option<&str>| -> Option<(u32, u32)> {
        let r = r?.trim_start_matches(['-', '+']);
        let (start, len) = r.split_once(',').unwrap_or((r, "1"));
        Some((start.parse().ok()?, len.parse().ok()?))
    };
    Some((range(parts.next())?, range(parts.next())?))
}

/// One hunk of a patch: the file and the line ranges `(start, length)` before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub path: String,
    pub old: (u32, u32),
    pub new: (u32, u32),
}

/// The hunks of a patch, from its `@@ -a,b +c,d @@` lines (new and deleted files included).
pub fn hunks(text: &str) -> Vec<Hunk> {
    let mut out = Vec::new();
    let mut path = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            path = split_diff_header(rest)
                .and_then(|(_, b)| strip_side(&b, "b/"))
                .unwrap_or_default();
        } else if let Some((old, new)) = hunk_ranges(line) {
            out.push(Hunk {
                path: path.clone(),
                old,
                new,
            });
        }
    }
    out
}

/// Whether `later` (applied after `earlier`) changes lines `earlier` wrote or stands next to:
/// a later hunk's old range meeting an earlier hunk's new range in the same file.
pub fn overlaps(earlier: &[Hunk], later: &[Hunk]) -> Vec<String> {
    let mut files = Vec::new();
    for l in later {
        for e in earlier.iter().filter(|e| e.path == l.path) {
            let (a0, a1) = (l.old.0, l.old.0 + l.old.1.max(1));
            let (b0, b1) = (e.new.0, e.new.0 + e.new.1.max(1));
            if a0 < b1 && b0 < a1 && !files.contains(&l.path) {
                files.push(l.path.clone());
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_and_overlaps() {
        let a = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -10,7 +10,8 @@ fn x()\n ctx\n";
        let far = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -100,6 +101,6 @@\n ctx\n";
        let near = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -15,6 +15,6 @@\n ctx\n";
        let other = "diff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -10,7 +10,8 @@\n ctx\n";
        assert_eq!(
            hunks(a),
            vec![Hunk {
                path: "f".into(),
                old: (10, 7),
                new: (10, 8)
            }]
        );
        assert!(overlaps(&hunks(a), &hunks(far)).is_empty());
        assert_eq!(overlaps(&hunks(a), &hunks(near)), vec!["f".to_string()]);
        assert!(overlaps(&hunks(a), &hunks(other)).is_empty());
    }
}
