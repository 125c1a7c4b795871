//! Pull-request descriptions and the upstream conventions they follow, rendered from plain
//! data.

/// Upstream habits a pull request must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// `newsfragments/<PR>.<type>.md`.
    Pyo3,
    /// `gh-NNNNN: ` titles and a `Misc/NEWS.d/next/<section>/` entry.
    Cpython,
    None,
}

impl Convention {
    pub fn of(upstream: &str) -> Convention {
        let u = upstream.to_ascii_lowercase();
        if u.ends_with("/pyo3/pyo3") {
            Convention::Pyo3
        } else if u.ends_with("/python/cpython") {
            Convention::Cpython
        } else {
            Convention::None
        }
    }

    /// The placeholder file a branch gets, and its content.
    pub fn news_file(
        &self,
        group: &str,
        title: &str,
        news: Option<&str>,
    ) -> Option<(String, String)> {
        match self {
            Convention::Pyo3 => {
                let kind = news.unwrap_or("changed");
                Some((
                    format!("newsfragments/PLACEHOLDER-{group}.{kind}.md"),
                    format!("{title}\n"),
                ))
            }
            Convention::Cpython => {
                let section = news.unwrap_or("Library");
                Some((
                    format!("Misc/NEWS.d/next/{section}/PLACEHOLDER-{group}.rst"),
                    format!("{title}\n"),
                ))
            }
            Convention::None => None,
        }
    }

    /// What a person must still do once the pull request exists.
    pub fn todo(&self, title: &str) -> Vec<String> {
        match self {
            Convention::Pyo3 => vec![
                "rename `newsfragments/PLACEHOLDER-*.md` to `newsfragments/<PR number>.<type>.md` once the pull request has a number".into(),
            ],
            Convention::Cpython => {
                let mut t = vec!["rename the `Misc/NEWS.d/next/` placeholder with `blurb` (it needs the issue number)".into()];
                if !title.starts_with("gh-") {
                    t.push("CPython titles start with `gh-NNNNN: `: open or find the issue and prefix the title".into());
                }
                t
            }
            Convention::None => vec![],
        }
    }
}

/// One verification command's result on a branch.
pub use crate::ops::checks::Check;

pub struct Description<'a> {
    pub title: &'a str,
    pub body: Option<&'a str>,
    /// `(short id, full public message)` in order.
    pub commits: &'a [(String, String)],
    pub depends_on: Option<&'a str>,
    pub checks: &'a [Check],
    pub todo: &'a [String],
}

pub fn render(d: &Description) -> String {
    let mut s = format!("# {}\n\n", d.title);
    if let Some(b) = d.body {
        s.push_str(b.trim_end());
        s.push_str("\n\n");
    }
    if let Some(dep) = d.depends_on {
        s.push_str(&format!("This builds on the pull request from branch `pr/{dep}`; review and merge that one first.\n\n"));
    }
    s.push_str("## Commits\n\n");
    for (id, message) in d.commits {
        let subject = message.lines().next().unwrap_or("");
        s.push_str(&format!("- {subject} ({id})\n"));
    }
    for (_, message) in d.commits {
        let mut lines = message.lines();
        let subject = lines.next().unwrap_or("");
        let rest: Vec<&str> = lines.collect();
        let rest = rest.join("\n");
        if !rest.trim().is_empty() {
            s.push_str(&format!("\n### {subject}\n\n{}\n", rest.trim()));
        }
    }
    s.push_str("\n## Verification\n\n| command | result | seconds |\n| --- | --- | ---: |\n");
    for c in d.checks {
        s.push_str(&format!(
            "| `{}` | {} | {:.1} |\n",
            c.command,
            if c.passed { "passed" } else { "FAILED" },
            c.seconds
        ));
    }
    if !d.todo.is_empty() {
        s.push_str("\n## Before opening\n\n");
        for t in d.todo {
            s.push_str(&format!("- {t}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions() {
        assert_eq!(
            Convention::of("https://github.com/PyO3/pyo3"),
            Convention::Pyo3
        );
        assert_eq!(
            Convention::of("https://github.com/python/cpython"),
            Convention::Cpython
        );
        let (file, _) = Convention::Pyo3
            .news_file("abi", "Use enums", None)
            .unwrap();
        assert_eq!(file, "newsfragments/PLACEHOLDER-abi.changed.md");
        assert_eq!(Convention::Cpython.todo("Fix x").len(), 2);
        assert_eq!(Convention::Cpython.todo("gh-1: Fix x").len(), 1);
    }

    #[test]
    fn renders() {
        let commits = vec![(
            "abc123".to_string(),
            "Use an enum\n\nBecause booleans hide meaning.".to_string(),
        )];
        let checks = vec![Check {
            command: "cargo check".into(),
            passed: true,
            seconds: 12.34,
        }];
        let todo = vec!["rename it".to_string()];
        let text = render(&Description {
            title: "Enums",
            body: Some("Part 2."),
            commits: &commits,
            depends_on: Some("base"),
            checks: &checks,
            todo: &todo,
        });
        assert_eq!(
            text,
            "# Enums\n\nPart 2.\n\nThis builds on the pull request from branch `pr/base`; review and merge that one first.\n\n## Commits\n\n- Use an enum (abc123)\n\n### Use an enum\n\nBecause booleans hide meaning.\n\n## Verification\n\n| command | result | seconds |\n| --- | --- | ---: |\n| `cargo check` | passed | 12.3 |\n\n## Before opening\n\n- rename it\n"
        );
    }
}
