//! What became of a patch when its stack moved to a new upstream base: the outcomes
//! `sync --update` reports, and the pure comparison of a patch before and after the move.

use serde::{Deserialize, Serialize};

use crate::git::UpstreamChange;

/// One patch's fate in an update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// Replayed with the same change (context and line numbers may have moved).
    Applied,
    /// Part of the change is upstream now; the rest was kept.
    Shrunk {
        lines_before: usize,
        lines_after: usize,
    },
    /// Replayed, but the change itself differs (a 3-way merge adapted it).
    Changed,
    /// Upstream has the change; the patch was dropped.
    Absorbed { evidence: Evidence },
    /// A conflict a person resolved (`--continue`).
    ResolvedByHand,
    /// A conflict resolved by replaying a recorded resolution (git rerere).
    ResolvedByRerere,
    /// A conflict a person chose to drop (`--skip`).
    SkippedByHand,
    /// The dry run could not replay it.
    Conflict {
        files: Vec<String>,
        upstream: Vec<UpstreamChange>,
    },
}

/// Why a patch counts as absorbed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Evidence {
    /// An upstream commit in the new range has the same patch id (for the patch's files).
    PatchId { commit: UpstreamChange },
    /// The patch applies in reverse on the new base: its change is already there.
    AppliesInReverse { touched_by: Vec<UpstreamChange> },
    /// A 3-way merge onto the new base left nothing to commit.
    EmptyMerge { touched_by: Vec<UpstreamChange> },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Applied => "applies",
            Outcome::Shrunk { .. } => "shrunk",
            Outcome::Changed => "changed",
            Outcome::Absorbed { .. } => "absorbed",
            Outcome::ResolvedByHand => "resolved by hand",
            Outcome::ResolvedByRerere => "resolved (recorded resolution)",
            Outcome::SkippedByHand => "dropped by hand",
            Outcome::Conflict { .. } => "conflicts",
        }
    }

    /// Whether the patch is still in the series afterwards.
    pub fn kept(&self) -> bool {
        !matches!(
            self,
            Outcome::Absorbed { .. } | Outcome::SkippedByHand | Outcome::Conflict { .. }
        )
    }

    /// One line for people: the label and the evidence.
    pub fn describe(&self) -> String {
        let short = |c: &UpstreamChange| format!("{} \"{}\"", crate::git::short(&c.id), c.subject);
        let touched = |list: &[UpstreamChange]| {
            if list.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = list.iter().take(3).map(short).collect();
                format!(
                    "; upstream commits touching its files: {}",
                    names.join(", ")
                )
            }
        };
        match self {
            Outcome::Absorbed {
                evidence: Evidence::PatchId { commit },
            } => {
                format!("absorbed: same patch id as upstream {}", short(commit))
            }
            Outcome::Absorbed {
                evidence: Evidence::AppliesInReverse { touched_by },
            } => {
                format!(
                    "absorbed: the new base already has its change (applies in reverse){}",
                    touched(touched_by)
                )
            }
            Outcome::Absorbed {
                evidence: Evidence::EmptyMerge { touched_by },
            } => {
                format!(
                    "absorbed: the 3-way merge onto the new base is empty{}",
                    touched(touched_by)
                )
            }
            Outcome::Shrunk {
                lines_before,
                lines_after,
            } => {
                format!(
                    "shrunk: {lines_after} of {lines_before} changed lines remain, the rest is upstream"
                )
            }
            Outcome::Conflict { files, upstream } => {
                format!("conflicts in {}{}", files.join(", "), touched(upstream))
            }
            other => other.label().to_string(),
        }
    }
}

/// The changed lines of a diff (`+`/`-` lines with their file), sorted: what a patch *does*,
/// without context or line numbers.
pub fn changed_lines(diff: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut file = String::new();
    let mut in_hunk = false;
    for line in diff.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            file = rest.rsplit_once(" b/").map_or(rest, |(_, b)| b).to_string();
            in_hunk = false;
        } else if line.starts_with("@@") {
            in_hunk = true;
        } else if in_hunk && line == "-- " {
            // The signature separator of an mbox ends the diff.
            in_hunk = false;
        } else if in_hunk && (line.starts_with('+') || line.starts_with('-')) {
            out.push((file.clone(), line.to_string()));
        }
    }
    out.sort();
    out
}

/// Compares what a patch changed before the update with what its replayed commit changes.
pub fn compare(before: &[(String, String)], after: &[(String, String)]) -> Outcome {
    if before == after {
        return Outcome::Applied;
    }
    if after.len() < before.len() && is_sub_multiset(after, before) {
        return Outcome::Shrunk {
            lines_before: before.len(),
            lines_after: after.len(),
        };
    }
    Outcome::Changed
}

fn is_sub_multiset(small: &[(String, String)], big: &[(String, String)]) -> bool {
    // Both sorted: one merge-like pass.
    let mut j = 0;
    for item in small {
        while j < big.len() && big[j] < *item {
            j += 1;
        }
        if j == big.len() || big[j] != *item {
            return false;
        }
        j += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "diff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n@@ -10,3 +10,3 @@\n x\n-y\n+Y\n z\ndiff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -1 +1 @@\n-q\n+Q\n";

    #[test]
    fn same_change_at_other_lines_is_applied() {
        let moved = OLD.replace("@@ -10,3 +10,3 @@\n x", "@@ -40,3 +40,3 @@\n other context");
        assert_eq!(
            compare(&changed_lines(OLD), &changed_lines(&moved)),
            Outcome::Applied
        );
    }

    #[test]
    fn losing_part_of_the_change_is_shrunk() {
        let part = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -10,3 +10,3 @@\n x\n-y\n+Y\n z\n";
        assert_eq!(
            compare(&changed_lines(OLD), &changed_lines(part)),
            Outcome::Shrunk {
                lines_before: 6,
                lines_after: 2
            }
        );
    }

    #[test]
    fn a_different_change_is_changed() {
        let other = OLD.replace("+B", "+BB");
        assert_eq!(
            compare(&changed_lines(OLD), &changed_lines(&other)),
            Outcome::Changed
        );
        let more = format!("{OLD}diff --git a/h b/h\n--- a/h\n+++ b/h\n@@ -1 +1 @@\n-1\n+2\n");
        assert_eq!(
            compare(&changed_lines(OLD), &changed_lines(&more)),
            Outcome::Changed
        );
    }

    #[test]
    fn mbox_signature_is_not_a_change() {
        let mbox = format!("{OLD}-- \n2.47.3\n");
        assert_eq!(changed_lines(&mbox), changed_lines(OLD));
    }

    #[test]
    fn outcomes_say_their_evidence() {
        let c = UpstreamChange {
            id: "0123456789abcdef".into(),
            subject: "gh-1: fix".into(),
        };
        let o = Outcome::Absorbed {
            evidence: Evidence::PatchId { commit: c },
        };
        assert_eq!(
            o.describe(),
            "absorbed: same patch id as upstream 0123456789ab \"gh-1: fix\""
        );
        assert!(!o.kept());
        assert!(
            Outcome::Shrunk {
                lines_before: 4,
                lines_after: 2
            }
            .kept()
        );
    }
}
