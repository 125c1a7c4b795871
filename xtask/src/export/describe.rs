//! Pull-request descriptions and the upstream conventions they follow, rendered from plain
//! data.

use serde::{Deserialize, Serialize};

use crate::manifest::{Conventions, NO_NEWS, News};

/// Upstream habits a pull request must follow: the stack's `conventions:`, or where it has
/// none, what the tool knows from the upstream's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub news: News,
    /// A group's news type or section when it names none.
    pub news_default: String,
    title: Option<Conventions>,
    pub statement: Option<String>,
    /// Upstream's CI checks, run after the stack's `verify:`.
    pub checks: Vec<String>,
    pub each_commit: bool,
    pub keep_author: bool,
    /// CPython: titles start with `gh-NNNNN: `.
    cpython: bool,
}

impl Rules {
    pub fn of(upstream: &str, conventions: Option<&Conventions>) -> Rules {
        let u = upstream.to_ascii_lowercase();
        let cpython = u.ends_with("/python/cpython");
        let news = match conventions {
            Some(c) => c.news,
            None if u.ends_with("/pyo3/pyo3") => News::TowncrierMd,
            None if cpython => News::CpythonBlurb,
            None => News::None,
        };
        let fallback = match news {
            News::TowncrierRst => "misc",
            News::CpythonBlurb => "Library",
            News::None | News::TowncrierMd => "changed",
        };
        let c = conventions.cloned();
        Rules {
            news,
            news_default: c
                .as_ref()
                .and_then(|c| c.news_default.clone())
                .unwrap_or_else(|| fallback.to_string()),
            statement: c.as_ref().and_then(|c| c.statement.clone()),
            checks: c.as_ref().map(|c| c.checks.clone()).unwrap_or_default(),
            each_commit: c.as_ref().is_some_and(|c| c.verify_each_commit),
            keep_author: c.as_ref().is_some_and(|c| c.keep_author),
            title: c,
            cpython,
        }
    }

    /// The pull request's title for a group titled `title`.
    pub fn title(&self, title: &str) -> String {
        match &self.title {
            Some(c) => c.title_for(title),
            None => title.to_string(),
        }
    }

    /// The placeholder news file a branch gets and its content, unless upstream wants none
    /// or the group says `news: none`.
    pub fn news_file(
        &self,
        group: &str,
        title: &str,
        news: Option<&str>,
    ) -> Option<(String, String)> {
        let kind = news.unwrap_or(&self.news_default);
        if kind == NO_NEWS {
            return None;
        }
        let file = match self.news {
            News::None => return None,
            News::TowncrierMd => format!("newsfragments/PLACEHOLDER-{group}.{kind}.md"),
            News::TowncrierRst => format!("newsfragments/PLACEHOLDER-{group}.{kind}.rst"),
            News::CpythonBlurb => format!("Misc/NEWS.d/next/{kind}/PLACEHOLDER-{group}.rst"),
        };
        Some((file, format!("{title}\n")))
    }

    /// The folder upstream keeps news entries in (ending in `/`), if it keeps them.
    pub fn news_dir(&self) -> Option<&'static str> {
        match self.news {
            News::None => None,
            News::TowncrierMd | News::TowncrierRst => Some("newsfragments/"),
            News::CpythonBlurb => Some("Misc/NEWS.d/next/"),
        }
    }

    /// What a person must still do once the pull request exists; `news` are the news files
    /// the branch adds (its patches' own, or the placeholder): each still named without the
    /// number upstream's scheme needs must be renamed.
    pub fn todo(&self, title: &str, news: &[String]) -> Vec<String> {
        let mut t = Vec::new();
        for file in news {
            let name = file.rsplit('/').next().unwrap_or(file);
            match self.news {
                News::TowncrierMd | News::TowncrierRst => {
                    let numbered = name
                        .split('.')
                        .next()
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                    if !numbered {
                        let ext = if self.news == News::TowncrierMd {
                            "md"
                        } else {
                            "rst"
                        };
                        let kind = name.split('.').rev().nth(1).unwrap_or("<type>");
                        t.push(format!("rename `{file}` to `newsfragments/<PR number>.{kind}.{ext}` once the pull request has a number"));
                    }
                }
                News::CpythonBlurb if !name.contains("gh-issue-") => t.push(format!(
                    "replace `{file}` with a `blurb add` entry (it needs the issue number)"
                )),
                _ => {}
            }
        }
        if self.cpython && !title.starts_with("gh-") {
            t.push("CPython titles start with `gh-NNNNN: `: open or find the issue and prefix the title".into());
        }
        t
    }
}

/// The checks of one commit of a branch verified commit by commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommitChecks {
    pub id: String,
    pub subject: String,
    pub checks: Vec<Check>,
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
    /// Per commit, when every commit was verified (then `checks` are the tip's).
    pub commit_checks: &'a [CommitChecks],
    pub statement: Option<&'a str>,
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
    let result = |c: &Check| if c.passed { "passed" } else { "FAILED" };
    if d.commit_checks.is_empty() {
        s.push_str("\n## Verification\n\n| command | result | seconds |\n| --- | --- | ---: |\n");
        for c in d.checks {
            s.push_str(&format!(
                "| `{}` | {} | {:.1} |\n",
                c.command,
                result(c),
                c.seconds
            ));
        }
    } else {
        s.push_str("\n## Verification\n\nEvery commit, checked out on its own:\n\n| commit | command | result | seconds |\n| --- | --- | --- | ---: |\n");
        for cc in d.commit_checks {
            for c in &cc.checks {
                s.push_str(&format!(
                    "| {} {} | `{}` | {} | {:.1} |\n",
                    cc.id,
                    cc.subject.replace('|', "\\|"),
                    c.command,
                    result(c),
                    c.seconds
                ));
            }
        }
    }
    if let Some(statement) = d.statement {
        s.push('\n');
        s.push_str(statement.trim_end());
        s.push('\n');
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

    fn conventions(news: News) -> Conventions {
        Conventions {
            source: "https://x.org/c".into(),
            title: Some("refactor: {title}".into()),
            news,
            news_default: None,
            checks: vec![],
            verify_each_commit: false,
            keep_author: false,
            statement: None,
        }
    }

    #[test]
    fn rules() {
        let pyo3 = Rules::of("https://github.com/PyO3/pyo3", None);
        let (file, _) = pyo3.news_file("abi", "Use enums", None).unwrap();
        assert_eq!(file, "newsfragments/PLACEHOLDER-abi.changed.md");
        assert_eq!(pyo3.news_file("abi", "Use enums", Some("none")), None);
        assert_eq!(pyo3.title("Use enums"), "Use enums");
        let cpython = Rules::of("https://github.com/python/cpython", None);
        let (file, _) = cpython.news_file("g", "Fix x", None).unwrap();
        assert_eq!(file, "Misc/NEWS.d/next/Library/PLACEHOLDER-g.rst");
        assert_eq!(cpython.todo("Fix x", std::slice::from_ref(&file)).len(), 2);
        assert_eq!(cpython.todo("gh-1: Fix x", &[file]).len(), 1);
        assert_eq!(cpython.todo("gh-1: Fix x", &[]).len(), 0);
        let blurb = "Misc/NEWS.d/next/Library/2026-08-21-10-00-00.gh-issue-1.abc.rst".to_string();
        assert!(cpython.todo("gh-1: Fix x", &[blurb]).is_empty());
        // A patch's own fragment: renamed only while it has no number.
        let own = "newsfragments/PLACEHOLDER-abi3t.feature.md".to_string();
        assert_eq!(
            pyo3.todo("T", &[own]),
            [
                "rename `newsfragments/PLACEHOLDER-abi3t.feature.md` to `newsfragments/<PR number>.feature.md` once the pull request has a number"
            ]
        );
        assert!(
            pyo3.todo("T", &["newsfragments/5193.feature.md".into()])
                .is_empty()
        );
        assert_eq!(pyo3.news_dir(), Some("newsfragments/"));
        // Conventions replace what the address implies.
        let none = Rules::of(
            "https://github.com/PyO3/pyo3",
            Some(&conventions(News::None)),
        );
        assert_eq!(none.news_file("abi", "Use enums", None), None);
        assert_eq!(none.news_file("abi", "Use enums", Some("fixed")), None);
        assert_eq!(none.title("Use enums"), "refactor: Use enums");
        assert!(none.todo("Use enums", &[]).is_empty());
        assert_eq!(none.news_dir(), None);
        let rst = Rules::of("https://x.org/y", Some(&conventions(News::TowncrierRst)));
        let (file, _) = rst.news_file("g", "T", Some("bugfix")).unwrap();
        assert_eq!(file, "newsfragments/PLACEHOLDER-g.bugfix.rst");
        assert_eq!(
            rst.news_file("g", "T", None).unwrap().0,
            "newsfragments/PLACEHOLDER-g.misc.rst"
        );
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
        let mut d = Description {
            title: "Enums",
            body: Some("Part 2."),
            commits: &commits,
            depends_on: Some("base"),
            checks: &checks,
            commit_checks: &[],
            statement: None,
            todo: &todo,
        };
        assert_eq!(
            render(&d),
            "# Enums\n\nPart 2.\n\nThis builds on the pull request from branch `pr/base`; review and merge that one first.\n\n## Commits\n\n- Use an enum (abc123)\n\n### Use an enum\n\nBecause booleans hide meaning.\n\n## Verification\n\n| command | result | seconds |\n| --- | --- | ---: |\n| `cargo check` | passed | 12.3 |\n\n## Before opening\n\n- rename it\n"
        );
        let per_commit = vec![CommitChecks {
            id: "abc123".into(),
            subject: "Use an enum".into(),
            checks: checks.clone(),
        }];
        d.commit_checks = &per_commit;
        d.statement = Some("Written by a person.\n");
        d.todo = &[];
        assert!(render(&d).ends_with("## Verification\n\nEvery commit, checked out on its own:\n\n| commit | command | result | seconds |\n| --- | --- | --- | ---: |\n| abc123 Use an enum | `cargo check` | passed | 12.3 |\n\nWritten by a person.\n"));
    }
}
