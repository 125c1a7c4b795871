//! Checking a stack's `prs:` groups and ordering them for export: pure functions over the
//! series, the groups and the files each patch touches.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};

use crate::manifest::{PatchName, PrGroup};
use crate::patch::{Hunk, overlaps};

/// The groups in an order where every group comes after the one it is stacked on.
pub fn order(
    series: &[PatchName],
    groups: &[PrGroup],
    hunks: &BTreeMap<PatchName, Vec<Hunk>>,
) -> Result<Vec<PrGroup>> {
    let by_name: BTreeMap<&str, &PrGroup> = groups.iter().map(|g| (g.name.as_str(), g)).collect();
    if by_name.len() != groups.len() {
        bail!("two pull-request groups have the same name");
    }
    let mut owner: BTreeMap<&PatchName, &str> = BTreeMap::new();
    for g in groups {
        // The name becomes a branch, a worktree folder and part of a file name: `..` or a
        // leading dot would leave the folder (and git refuses such ref components anyway).
        if g.name.is_empty()
            || g.name.starts_with('.')
            || g.name.contains("..")
            || !g
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            bail!(
                "group name `{}` must be letters, digits, `-`, `_` or `.`, not starting with `.` and without `..` (it names the branch pr/<name>)",
                g.name
            );
        }
        // `news` names a folder or a file suffix in upstream's tree (CPython's
        // `Misc/NEWS.d/next/<section>/`, PyO3's `<n>.<type>.md`): one plain word.
        if let Some(news) = &g.news
            && (news.is_empty()
                || !news
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)))
        {
            bail!(
                "group `{}`: news `{news}` must be one word of letters, digits, `-` or `_` (such as `changed` or `Core_and_Builtins`)",
                g.name
            );
        }
        if g.patches.is_empty() {
            bail!("group `{}` has no patches", g.name);
        }
        for p in &g.patches {
            if !series.contains(p) {
                bail!("group `{}` lists `{p}`, which is not in the series", g.name);
            }
            if let Some(other) = owner.insert(p, &g.name) {
                bail!("`{p}` is in two groups: `{other}` and `{}`", g.name);
            }
        }
        // Every patch is in the series (checked above), so none is left out here.
        let positions: Vec<usize> = g
            .patches
            .iter()
            .filter_map(|p| series.iter().position(|s| s == p))
            .collect();
        if positions.windows(2).any(|w| w[0] > w[1]) {
            bail!("group `{}` lists its patches out of series order", g.name);
        }
        if g.depends_on.len() > 1 {
            bail!(
                "group `{}` depends on {} groups; a branch stacks on one (make the others depend on each other)",
                g.name,
                g.depends_on.len()
            );
        }
        for d in &g.depends_on {
            if !by_name.contains_key(d.as_str()) {
                bail!("group `{}` depends on `{d}`, which is not a group", g.name);
            }
        }
    }
    // Dependency order, refusing cycles.
    let mut ordered: Vec<PrGroup> = Vec::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while ordered.len() < groups.len() {
        // Of the groups that can come next, the one that starts earliest in the series.
        let first_at = |g: &PrGroup| {
            series
                .iter()
                .position(|s| Some(s) == g.patches.first())
                .unwrap_or(usize::MAX)
        };
        let next = groups
            .iter()
            .filter(|g| {
                !placed.contains(g.name.as_str())
                    && g.depends_on.iter().all(|d| placed.contains(d.as_str()))
            })
            .min_by_key(|g| first_at(g));
        match next {
            Some(g) => {
                placed.insert(&g.name);
                ordered.push(g.clone());
            }
            None => {
                let stuck: Vec<&str> = groups
                    .iter()
                    .filter(|g| !placed.contains(g.name.as_str()))
                    .map(|g| g.name.as_str())
                    .collect();
                bail!(
                    "the groups {} depend on each other in a cycle",
                    stuck.join(", ")
                );
            }
        }
    }
    // A group's branch leaves out every patch of groups it does not stand on. That is only
    // sound when its own patches can move past those earlier ones: refuse when a later hunk
    // meets lines an earlier patch wrote (the same file alone is fine).
    for g in groups {
        let stands_on = ancestors(&g.name, &by_name);
        for p in &g.patches {
            let Some(at) = series.iter().position(|s| s == p) else {
                continue;
            };
            for earlier in &series[..at] {
                let Some(other) = owner.get(earlier) else {
                    continue;
                };
                if *other == g.name || stands_on.contains(*other) {
                    continue;
                }
                let empty = Vec::new();
                let shared = overlaps(
                    hunks.get(earlier).unwrap_or(&empty),
                    hunks.get(p).unwrap_or(&empty),
                );
                if !shared.is_empty() {
                    bail!(
                        "group `{}` has `{p}`, which comes after `{earlier}` of group `{other}` and changes the same lines of {}; add `depends_on: [{other}]` to `{}` or reorder the series",
                        g.name,
                        shared.join(", "),
                        g.name
                    );
                }
            }
        }
    }
    Ok(ordered)
}

/// The groups `name` stands on, transitively.
pub fn ancestors<'a>(name: &str, by_name: &BTreeMap<&'a str, &'a PrGroup>) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<&str> = by_name
        .get(name)
        .map(|g| g.depends_on.iter().map(|d| d.as_str()).collect())
        .unwrap_or_default();
    while let Some(d) = todo.pop() {
        if let Some((key, g)) = by_name.get_key_value(d)
            && out.insert(*key)
        {
            todo.extend(g.depends_on.iter().map(|x| x.as_str()));
        }
    }
    out
}

/// A commit message for a pull request: without the trailers that only mean something here.
pub fn public_message(message: &str) -> String {
    let internal = ["Upstream-Status:"];
    let kept: Vec<&str> = message
        .lines()
        .filter(|l| !internal.iter().any(|t| l.starts_with(t)))
        .collect();
    let mut text = kept.join("\n");
    while text.ends_with('\n') || text.ends_with(' ') {
        text.pop();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: &str) -> PatchName {
        PatchName::new(n).unwrap()
    }

    fn group(name: &str, patches: &[&str], deps: &[&str]) -> PrGroup {
        PrGroup {
            name: name.into(),
            title: name.into(),
            patches: patches.iter().map(|x| p(x)).collect(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            body: None,
            news: None,
        }
    }

    fn series() -> Vec<PatchName> {
        [
            "a1.patch", "a2.patch", "b1.patch", "b2.patch", "c1.patch", "c2.patch",
        ]
        .iter()
        .map(|x| p(x))
        .collect()
    }

    /// Each patch changes lines 10-17 of the file given.
    fn files(pairs: &[(&str, &str)]) -> BTreeMap<PatchName, Vec<Hunk>> {
        let mut m: BTreeMap<PatchName, Vec<Hunk>> = BTreeMap::new();
        for (patch, file) in pairs {
            m.entry(p(patch)).or_default().push(Hunk {
                path: file.to_string(),
                old: (10, 7),
                new: (10, 8),
            });
        }
        m
    }

    #[test]
    fn orders_stacked_groups_after_their_base() {
        let groups = vec![
            group("c", &["c1.patch", "c2.patch"], &["a"]),
            group("a", &["a1.patch", "a2.patch"], &[]),
            group("b", &["b1.patch", "b2.patch"], &[]),
        ];
        let f = files(&[("a1.patch", "x"), ("b1.patch", "y"), ("c1.patch", "x")]);
        let names: Vec<String> = order(&series(), &groups, &f)
            .unwrap()
            .into_iter()
            .map(|g| g.name)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn names_and_news_cannot_leave_their_folders() {
        let f = files(&[]);
        for name in ["..", ".hidden", "a..b", "a/b", ""] {
            let err = order(&series(), &[group(name, &["a1.patch"], &[])], &f).unwrap_err();
            assert!(err.to_string().contains("must be letters"), "{name}: {err}");
        }
        for news in ["../../../../tmp", "a/b", "x.y", ""] {
            let mut g = group("a", &["a1.patch"], &[]);
            g.news = Some(news.into());
            let err = order(&series(), &[g], &f).unwrap_err();
            assert!(err.to_string().contains("one word"), "{news}: {err}");
        }
        let mut g = group("a.b-c_1", &["a1.patch"], &[]);
        g.news = Some("Core_and_Builtins".into());
        assert!(order(&series(), &[g], &f).is_ok());
    }

    #[test]
    fn refusals() {
        let f = files(&[]);
        let cases: Vec<(Vec<PrGroup>, &str)> = vec![
            (
                vec![
                    group("a", &["a1.patch"], &[]),
                    group("b", &["a1.patch"], &[]),
                ],
                "`a1.patch` is in two groups: `a` and `b`",
            ),
            (
                vec![group("a", &["zz.patch"], &[])],
                "lists `zz.patch`, which is not in the series",
            ),
            (
                vec![group("a", &["a1.patch"], &["nope"])],
                "depends on `nope`, which is not a group",
            ),
            (
                vec![
                    group("a", &["a1.patch"], &["b"]),
                    group("b", &["b1.patch"], &["a"]),
                ],
                "the groups a, b depend on each other in a cycle",
            ),
            (
                vec![group("a", &["a2.patch", "a1.patch"], &[])],
                "out of series order",
            ),
            (vec![group("a b", &["a1.patch"], &[])], "must be letters"),
        ];
        for (groups, want) in cases {
            let err = order(&series(), &groups, &f).unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn refuses_to_move_a_patch_past_one_touching_the_same_files() {
        let groups = vec![
            group("a", &["a1.patch", "a2.patch"], &[]),
            group("c", &["c1.patch"], &[]),
        ];
        let f = files(&[
            ("a2.patch", "src/impl_.rs"),
            ("c1.patch", "src/impl_.rs"),
            ("c1.patch", "README"),
        ]);
        let err = order(&series(), &groups, &f).unwrap_err().to_string();
        assert!(err.contains("`c1.patch`, which comes after `a2.patch` of group `a` and changes the same lines of src/impl_.rs; add `depends_on: [a]`"), "{err}");
        let stacked = vec![
            group("a", &["a1.patch", "a2.patch"], &[]),
            group("c", &["c1.patch"], &["a"]),
        ];
        order(&series(), &stacked, &f).unwrap();
    }

    #[test]
    fn public_messages_drop_internal_trailers() {
        let m =
            "Use enums for the ABI\n\nBody.\n\nSigned-off-by: A <a@b>\nUpstream-Status: Pending\n";
        assert_eq!(
            public_message(m),
            "Use enums for the ABI\n\nBody.\n\nSigned-off-by: A <a@b>"
        );
    }
}
