//! The `conventions:` section of `stack.yaml`: how upstream wants a pull request to look
//! (title, news entry, CI checks, per-commit verification, authorship, a statement), and the
//! rules its values must follow.

use serde::{Deserialize, Serialize};

/// Upstream's habits for pull requests, taken from its contributing documents (`source`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Conventions {
    /// Where these come from: the contributing guide they were read from.
    pub source: String,
    /// The pull request's title, with `{title}` standing for the group's title.
    #[serde(default)]
    pub title: Option<String>,
    /// Whether and where a news entry goes (default: none).
    #[serde(default)]
    pub news: News,
    /// The news type (towncrier) or section (blurb) of a group that names none.
    #[serde(default)]
    pub news_default: Option<String>,
    /// Commands upstream's CI runs; verification runs them after the stack's `verify:`.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Every commit of a branch must pass, not only its tip.
    #[serde(default)]
    pub verify_each_commit: bool,
    /// Keep the author recorded in each patch (default: the proposer's git identity).
    #[serde(default)]
    pub keep_author: bool,
    /// Text appended to every pull-request description.
    #[serde(default)]
    pub statement: Option<String>,
}

/// Where a news entry goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum News {
    /// No entry.
    #[default]
    None,
    /// `newsfragments/<PR>.<type>.md`.
    TowncrierMd,
    /// `newsfragments/<PR>.<type>.rst`.
    TowncrierRst,
    /// `Misc/NEWS.d/next/<Section>/<name>.rst`, named by `blurb`.
    CpythonBlurb,
}

/// What a group's `news:` means.
pub const NO_NEWS: &str = "none";

impl Conventions {
    /// The first rule the values break, said for an error message.
    pub fn problem(&self) -> Option<String> {
        if !self.source.starts_with("https://") || self.source.trim() != self.source {
            return Some(format!(
                "`source` must be the https:// address of the contributing document these come from, not `{}`",
                super::guard::token(&self.source)
            ));
        }
        if let Some(t) = &self.title {
            let rest = t.replacen("{title}", "", 1);
            if !t.contains("{title}") || rest.contains(['{', '}']) {
                return Some(format!(
                    "`title: {}` must contain `{{title}}` once and no other braces",
                    super::guard::token(t)
                ));
            }
        }
        if let Some(d) = &self.news_default
            && (d == NO_NEWS || !is_word(d))
        {
            return Some(format!(
                "`news_default: {}` must be one word of letters, digits, `-` or `_` (such as `changed`); say `news: none` for no entry",
                super::guard::token(d)
            ));
        }
        if self.news_default.is_some() && self.news == News::None {
            return Some("`news_default` is given but `news` is `none`".into());
        }
        if self.checks.iter().any(|c| c.trim().is_empty()) {
            return Some("`checks` holds an empty command".into());
        }
        None
    }

    /// The pull request's title for a group titled `title`.
    pub fn title_for(&self, title: &str) -> String {
        match &self.title {
            Some(pattern) => pattern.replacen("{title}", title, 1),
            None => title.to_string(),
        }
    }
}

/// One plain word: it names a folder or a file suffix in upstream's tree.
pub fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Conventions {
        Conventions {
            source: "https://example.org/CONTRIBUTING.md".into(),
            title: None,
            news: News::TowncrierMd,
            news_default: None,
            checks: vec![],
            verify_each_commit: false,
            keep_author: false,
            statement: None,
        }
    }

    #[test]
    fn problems() {
        assert_eq!(base().problem(), None);
        let cases: Vec<(Conventions, &str)> = vec![
            (
                Conventions {
                    source: "CONTRIBUTING.md".into(),
                    ..base()
                },
                "`source` must be the https:// address",
            ),
            (
                Conventions {
                    title: Some("refactor: title".into()),
                    ..base()
                },
                "must contain `{title}`",
            ),
            (
                Conventions {
                    title: Some("{title} {x}".into()),
                    ..base()
                },
                "no other braces",
            ),
            (
                Conventions {
                    news_default: Some("a b".into()),
                    ..base()
                },
                "must be one word",
            ),
            (
                Conventions {
                    news: News::None,
                    news_default: Some("changed".into()),
                    ..base()
                },
                "`news` is `none`",
            ),
            (
                Conventions {
                    checks: vec![" ".into()],
                    ..base()
                },
                "empty command",
            ),
        ];
        for (c, want) in cases {
            let got = c.problem().unwrap_or_default();
            assert!(got.contains(want), "{c:?}: {got}");
        }
    }

    #[test]
    fn titles() {
        let c = Conventions {
            title: Some("refactor: {title}".into()),
            ..base()
        };
        assert_eq!(c.title_for("Use enums"), "refactor: Use enums");
        assert_eq!(base().title_for("Use enums"), "Use enums");
    }
}
