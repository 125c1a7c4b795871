//! `patches/<project>/CHANGELOG.md`: the entry `sync --update` appends, rendered from plain
//! data so its wording is table-tested.

use crate::absorb::Outcome;

/// Everything an entry says.
pub struct Entry<'a> {
    pub date: String,
    pub old_base: &'a str,
    pub new_base: &'a str,
    /// Upstream commits between the bases; `None` for an sdist, which has no history.
    pub commits_between: Option<usize>,
    pub version: (u64, u64),
    pub outcomes: &'a [(String, Outcome)],
    pub range_diff: &'a [String],
}

pub const HEADER: &str =
    "# Stack changelog\n\nOne entry per `cargo xtask sync --update`, oldest first.\n";

pub fn render(e: &Entry) -> String {
    let mut s = format!("\n## {}: {} -> {}\n\n", e.date, e.old_base, e.new_base);
    match e.commits_between {
        Some(n) => s.push_str(&format!("{n} upstream commit(s) between the bases. ")),
        None => s.push_str("New upstream release. "),
    }
    s.push_str(&format!(
        "Stack version {} -> {}.\n\n",
        e.version.0, e.version.1
    ));
    let mut unchanged = Vec::new();
    for (name, outcome) in e.outcomes {
        let line = match outcome {
            Outcome::Applied => {
                unchanged.push(format!("`{name}`"));
                continue;
            }
            Outcome::Absorbed { .. } => format!("- dropped `{name}`: {}", outcome.describe()),
            Outcome::SkippedByHand => format!("- dropped `{name}` by hand (`--skip`)"),
            Outcome::Shrunk { .. } => format!("- `{name}` {}", outcome.describe()),
            Outcome::Changed => format!("- changed `{name}`: the 3-way merge adapted it"),
            Outcome::ResolvedByHand => format!("- conflict in `{name}` resolved by hand"),
            Outcome::ResolvedByRerere => {
                format!("- conflict in `{name}` resolved with a recorded resolution (rerere)")
            }
            Outcome::Conflict { .. } => format!("- `{name}` {}", outcome.describe()),
        };
        s.push_str(&line);
        s.push('\n');
    }
    if !unchanged.is_empty() {
        s.push_str(&format!("- replayed unchanged: {}\n", unchanged.join(", ")));
    }
    if !e.range_diff.is_empty() {
        s.push_str("\n`git range-diff` of the series:\n\n```\n");
        for l in e.range_diff {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str("```\n");
    }
    s
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm), for entry dates.
pub fn date_from_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    date_from_unix(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::absorb::Evidence;
    use crate::git::UpstreamChange;

    #[test]
    fn dates() {
        assert_eq!(date_from_unix(0), "1970-01-01");
        assert_eq!(date_from_unix(946_684_800), "2000-01-01");
        assert_eq!(date_from_unix(1_795_500_000), "2026-11-24");
    }

    #[test]
    fn renders_every_kind_of_outcome() {
        let c = UpstreamChange {
            id: "abcdef0123456789".into(),
            subject: "gh-1: fix".into(),
        };
        let outcomes = vec![
            ("a.patch".to_string(), Outcome::Applied),
            (
                "b.patch".to_string(),
                Outcome::Absorbed {
                    evidence: Evidence::PatchId { commit: c },
                },
            ),
            (
                "c.patch".to_string(),
                Outcome::Shrunk {
                    lines_before: 4,
                    lines_after: 2,
                },
            ),
            ("d.patch".to_string(), Outcome::ResolvedByHand),
            ("e.patch".to_string(), Outcome::SkippedByHand),
        ];
        let range = vec!["1:  1111111 = 1:  2222222 A".to_string()];
        let text = render(&Entry {
            date: "2026-11-24".into(),
            old_base: "aaaa",
            new_base: "bbbb",
            commits_between: Some(7),
            version: (3, 4),
            outcomes: &outcomes,
            range_diff: &range,
        });
        assert_eq!(
            text,
            "\n## 2026-11-24: aaaa -> bbbb\n\n7 upstream commit(s) between the bases. Stack version 3 -> 4.\n\n\
             - dropped `b.patch`: absorbed: same patch id as upstream abcdef012345 \"gh-1: fix\"\n\
             - `c.patch` shrunk: 2 of 4 changed lines remain, the rest is upstream\n\
             - conflict in `d.patch` resolved by hand\n\
             - dropped `e.patch` by hand (`--skip`)\n\
             - replayed unchanged: `a.patch`\n\n\
             `git range-diff` of the series:\n\n```\n1:  1111111 = 1:  2222222 A\n```\n"
        );
    }
}
