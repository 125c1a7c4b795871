//! Surgical edits of `stack.yaml` text: the lines the tool owns (`version:`, `series:`,
//! `base:`) are rewritten, every other line stays as the author wrote it.

use anyhow::Result;

use super::{PatchName, Source};

/// Rewrites `version:` and `series:` in `stack.yaml` text, leaving every other line (comments,
/// `build:`, `prs:`) as the author wrote it.
pub fn with_series(text: &str, version: u64, series: &[PatchName]) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let top_key =
        |l: &str| !l.starts_with([' ', '\t', '#', '-']) && !l.trim().is_empty() && l.contains(':');
    let find = |key: &str| lines.iter().position(|l| l.starts_with(&format!("{key}:")));
    let mut out = Vec::with_capacity(lines.len() + series.len());
    let version_at = find("version").ok_or_else(|| anyhow::anyhow!("no `version:` line"))?;
    let series_at = find("series");
    let mut i = 0;
    while i < lines.len() {
        if i == version_at {
            out.push(format!("version: {version}"));
            i += 1;
        } else if Some(i) == series_at {
            // The old block runs to the next top-level key. Comment and blank lines right
            // before that key belong to it; comments among the entries go with the entries.
            let mut end = i + 1;
            while end < lines.len() && !top_key(lines[end]) {
                end += 1;
            }
            let mut keep_from = end;
            while keep_from > i + 1
                && (lines[keep_from - 1].starts_with('#') || lines[keep_from - 1].trim().is_empty())
            {
                keep_from -= 1;
            }
            push_series(&mut out, series);
            out.extend(
                lines[keep_from..end]
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.to_string()),
            );
            i = end;
        } else {
            out.push(lines[i].to_string());
            i += 1;
        }
    }
    if series_at.is_none() {
        push_series(&mut out, series);
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// Rewrites the `base:` entry to the pin of `source` (a line for a commit, a block for an
/// sdist), keeping the rest. `source` is the stack's own, re-pinned ([`Source::with_pin`]), so
/// the new base is of the kind its `upstream:` takes.
pub fn with_base(text: &str, source: &Source) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("base:"))
        .ok_or_else(|| anyhow::anyhow!("no `base:` line"))?;
    let mut end = at + 1;
    while end < lines.len() && (lines[end].starts_with([' ', '\t']) || lines[end].trim().is_empty())
    {
        end += 1;
    }
    let new: Vec<String> = match source {
        Source::Git { commit, .. } if super::values::reads_as_number(commit) => {
            vec![format!("base: \"{commit}\"")]
        }
        Source::Git { commit, .. } => vec![format!("base: {commit}")],
        Source::Pypi {
            version, sha256, ..
        } => {
            vec![
                "base:".into(),
                format!("  version: \"{version}\""),
                format!("  sha256: {sha256}"),
            ]
        }
    };
    let mut out: Vec<String> = lines[..at].iter().map(|l| l.to_string()).collect();
    out.extend(new);
    out.extend(lines[end..].iter().map(|l| l.to_string()));
    Ok(out.join("\n") + "\n")
}

fn push_series(out: &mut Vec<String>, series: &[PatchName]) {
    if series.is_empty() {
        out.push("series: []".to_string());
    } else {
        out.push("series:".to_string());
        out.extend(series.iter().map(|p| format!("  - {p}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse;

    const GIT: &str = "upstream: https://github.com/PyO3/pyo3\ntrack: main\nbase: 34f08c32dec2a3170fbe2e177910352489678816\nversion: 1\nseries: []\n";

    #[test]
    fn with_base_replaces_line_or_block() {
        let git = |commit: &str| Source::Git {
            url: "https://github.com/PyO3/pyo3".into(),
            commit: commit.into(),
        };
        let out = with_base(GIT, &git(&"a".repeat(40))).unwrap();
        assert_eq!(parse("s", &out).unwrap().source, git(&"a".repeat(40)));
        assert!(out.starts_with("upstream: https://github.com/PyO3/pyo3\ntrack: main\nbase: aaaa"));
        // An id YAML would read as a number is written quoted, so it reads back as written.
        for id in [
            "1".repeat(40),
            format!("{}e{}", "1".repeat(20), "2".repeat(19)),
        ] {
            let out = with_base(GIT, &git(&id)).unwrap();
            assert!(out.contains(&format!("base: \"{id}\"\n")), "{out}");
            assert_eq!(parse("s", &out).unwrap().source, git(&id));
        }
        let pypi = "upstream:\n  pypi: x\ntrack: '>=1'\nbase:\n  version: '1.0'\n  sha256: 7b46165bb56eb4704e2eaaf86f3c940d19154535d9b0ca7d6d590b04060e00d5\nversion: 1\nseries: []\n";
        let sdist = Source::Pypi {
            name: "x".into(),
            version: "1.1".into(),
            sha256: "b".repeat(64),
        };
        let out = with_base(pypi, &sdist).unwrap();
        assert_eq!(parse("s", &out).unwrap().source, sdist);
        assert!(out.ends_with("version: 1\nseries: []\n"), "{out}");
    }

    #[test]
    fn with_series_keeps_everything_else() {
        let text = "# pinned for the seed experiment\nupstream: https://x.org/y\ntrack: main\nbase: 34f08c32dec2a3170fbe2e177910352489678816\nversion: 1\nseries:\n  - a.patch\n  # comment inside\n  - b.patch\n\n# checks\nverify:\n  - cargo check\n";
        let names = [
            PatchName::new("b.patch").unwrap(),
            PatchName::new("c.patch").unwrap(),
        ];
        let out = with_series(text, 2, &names).unwrap();
        assert_eq!(
            out,
            "# pinned for the seed experiment\nupstream: https://x.org/y\ntrack: main\nbase: 34f08c32dec2a3170fbe2e177910352489678816\nversion: 2\nseries:\n  - b.patch\n  - c.patch\n# checks\nverify:\n  - cargo check\n"
        );
        assert_eq!(parse("s", &out).unwrap().series, names);
        let commented = "version: 1\nseries:\n# first two are upstreamable\n  - a.patch\n  - b.patch\n# the rest are not\n  - c.patch\nbuild: x\n";
        let out2 = with_series(commented, 2, &names).unwrap();
        assert_eq!(
            out2,
            "version: 2\nseries:\n  - b.patch\n  - c.patch\nbuild: x\n"
        );
        let empty = with_series(&out, 3, &[]).unwrap();
        assert!(
            empty.contains("version: 3\nseries: []\n# checks\n"),
            "{empty}"
        );
    }
}
