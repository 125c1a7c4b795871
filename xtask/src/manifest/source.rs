//! Where a stack's unpatched tree comes from, as one value: `upstream:` and `base:` of
//! `stack.yaml` paired once, here, so that no consumer meets a pair that cannot be.

use serde::Serialize;

/// The `upstream:` value as written: half of a [`Source`], never seen outside the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Upstream {
    /// A git repository URL, fetched with the `git` CLI.
    Git(String),
    /// A source distribution on the package index.
    Pypi(String),
}

/// The `base:` value on its own. The update record keeps the base an update moves to in this
/// form (`new_pin` in `xtask-update.json`), serialised exactly as `base:` is written: a
/// string for a commit, `{"version", "sha256"}` for an sdist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Pin {
    /// A full 40-hex commit id.
    Commit(String),
    /// An sdist version and the sha256 of its archive.
    Sdist { version: String, sha256: String },
}

/// The source of a stack's unpatched tree and the pinned base the series applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A git repository and a full 40-hex commit id in it.
    Git { url: String, commit: String },
    /// A source distribution on the package index: its name, version and archive sha256.
    Pypi {
        name: String,
        version: String,
        sha256: String,
    },
}

/// Why an upstream and a pin do not make a [`Source`], for people.
pub const GIT_NEEDS_COMMIT: &str =
    "a git upstream needs a commit id as base, not a version and sha256";
pub const PYPI_NEEDS_SDIST: &str =
    "a PyPI upstream needs `version` and `sha256` as base, not a commit id";

impl Source {
    /// Pairs an upstream with a pin; a git upstream takes a commit, PyPI an sdist.
    pub(super) fn pair(upstream: Upstream, pin: Pin) -> Result<Source, &'static str> {
        match (upstream, pin) {
            (Upstream::Git(url), Pin::Commit(commit)) => Ok(Source::Git { url, commit }),
            (Upstream::Pypi(name), Pin::Sdist { version, sha256 }) => Ok(Source::Pypi {
                name,
                version,
                sha256,
            }),
            (Upstream::Git(_), Pin::Sdist { .. }) => Err(GIT_NEEDS_COMMIT),
            (Upstream::Pypi(_), Pin::Commit(_)) => Err(PYPI_NEEDS_SDIST),
        }
    }

    /// The same upstream pinned to another base. The pin may come from a record on disk (the
    /// update's `new_pin`), so a pin of the wrong kind is an error, not a surprise.
    pub fn with_pin(&self, pin: &Pin) -> Result<Source, &'static str> {
        let upstream = match self {
            Source::Git { url, .. } => Upstream::Git(url.clone()),
            Source::Pypi { name, .. } => Upstream::Pypi(name.clone()),
        };
        Source::pair(upstream, pin.clone())
    }

    /// The `base:` half.
    pub fn pin(&self) -> Pin {
        match self {
            Source::Git { commit, .. } => Pin::Commit(commit.clone()),
            Source::Pypi {
                version, sha256, ..
            } => Pin::Sdist {
                version: version.clone(),
                sha256: sha256.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdist() -> Pin {
        Pin::Sdist {
            version: "1.0".into(),
            sha256: "b".repeat(64),
        }
    }

    #[test]
    fn pair_takes_matching_halves_only() {
        let git = || Upstream::Git("https://x.org/y".into());
        let pypi = || Upstream::Pypi("demo".into());
        assert_eq!(
            Source::pair(git(), Pin::Commit("a".repeat(40))),
            Ok(Source::Git {
                url: "https://x.org/y".into(),
                commit: "a".repeat(40)
            })
        );
        let p = Source::pair(pypi(), sdist()).unwrap();
        assert_eq!(p.pin(), sdist());
        assert_eq!(Source::pair(git(), sdist()), Err(GIT_NEEDS_COMMIT));
        assert_eq!(
            Source::pair(pypi(), Pin::Commit("a".repeat(40))),
            Err(PYPI_NEEDS_SDIST)
        );
        assert_eq!(
            p.with_pin(&Pin::Commit("a".repeat(40))),
            Err(PYPI_NEEDS_SDIST)
        );
    }

    /// `new_pin` in `xtask-update.json` keeps the shape it had when `Pin` was `Base`: an
    /// update interrupted by an older build resumes with a newer one.
    #[test]
    fn pin_serialises_as_base_is_written() {
        let commit = Pin::Commit("a".repeat(40));
        let json = serde_json::to_string(&commit).unwrap();
        assert_eq!(json, format!("\"{}\"", "a".repeat(40)));
        assert_eq!(serde_json::from_str::<Pin>(&json).unwrap(), commit);
        let json = serde_json::to_string_pretty(&sdist()).unwrap();
        assert_eq!(
            json,
            format!(
                "{{\n  \"version\": \"1.0\",\n  \"sha256\": \"{}\"\n}}",
                "b".repeat(64)
            )
        );
        assert_eq!(serde_json::from_str::<Pin>(&json).unwrap(), sdist());
    }
}
