//! Choosing a release by a PEP 440 specifier (`track` of a PyPI stack), with `pep440_rs`
//! doing the parsing and the comparisons.

use std::str::FromStr;

use anyhow::{Context, Result};
use pep440_rs::{Version, VersionSpecifiers};

/// The newest version matching a PEP 440 specifier such as `>=50.0.2,<51`; pre-releases only
/// when the specifier names one. Versions the index lists that are not PEP 440 are skipped.
pub fn newest_matching(versions: &[String], spec: &str) -> Result<Option<String>> {
    let specifiers = VersionSpecifiers::from_str(spec)
        .with_context(|| format!("track `{spec}` is not a PEP 440 version specifier"))?;
    // The policy pip follows: a specifier that names a pre-release opts into pre-releases.
    let allow_pre = specifiers.iter().any(|s| s.any_prerelease());
    let mut best: Option<(Version, &String)> = None;
    for v in versions {
        let Ok(parsed) = Version::from_str(v) else {
            continue;
        };
        if (parsed.any_prerelease() && !allow_pre) || !specifiers.contains(&parsed) {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| parsed > *b) {
            best = Some((parsed, v));
        }
    }
    Ok(best.map(|(_, v)| v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best(versions: &[&str], spec: &str) -> Option<String> {
        let vs: Vec<String> = versions.iter().map(|s| s.to_string()).collect();
        newest_matching(&vs, spec).unwrap()
    }

    #[test]
    fn newest_matching_follows_pep_440() {
        let vs = [
            "49.0.0",
            "50.0.0",
            "50.0.1",
            "50.0.2",
            "51.0.0rc1",
            "51.0.0",
            "50.1.0.post1",
            "52.0.0.dev3",
        ];
        // (specifier, newest match)
        let table: &[(&str, Option<&str>)] = &[
            (">=50.0.2", Some("51.0.0")),
            (">=50.0.2,<51", Some("50.1.0.post1")),
            ("~=50.0.0", Some("50.0.2")),
            ("==50.*", Some("50.1.0.post1")),
            ("==50.0.1", Some("50.0.1")),
            // `<51.0.0` admits no pre-release of 51.0.0 (the old evaluator said 51.0.0rc1).
            (">=51.0.0rc1,<51.0.0", None),
            ("==51.0.0rc1", Some("51.0.0rc1")),
            (">=53", None),
        ];
        for (spec, want) in table {
            assert_eq!(best(&vs, spec).as_deref(), *want, "{spec}");
        }
        assert!(newest_matching(&[], "latest").is_err());
    }

    #[test]
    fn exclusive_bounds_epochs_and_post_release_spellings() {
        // (versions on the index, specifier, newest match)
        let table: &[(&[&str], &str, Option<&str>)] = &[
            // `>V` admits no post-release of V (PEP 440, exclusive ordered comparison).
            (&["1.0", "1.0.post1"], ">1.0", None),
            (&["1.0", "1.0.post1", "1.1"], ">1.0", Some("1.1")),
            (&["1.0.post1", "1.0.post2"], ">1.0.post1", Some("1.0.post2")),
            // `<V` admits no pre-release of V, even when pre-releases are allowed.
            (&["1.0rc1", "2.0rc1"], ">=1.0rc1,<2.0", Some("1.0rc1")),
            (&["1.9", "2.0rc1"], "<2.0", Some("1.9")),
            // Epochs order before everything else.
            (&["1.0", "1!0.5"], ">=1.0", Some("1!0.5")),
            (&["1.0", "1!0.5"], "<2", Some("1.0")),
            (&["1!0.5", "1!0.6"], "==1!0.*", Some("1!0.6")),
            // `1.0-1` is the implicit spelling of `1.0.post1`.
            (&["1.0", "1.0-1"], ">=1.0", Some("1.0-1")),
            (&["1.0", "1.0-1"], "==1.0.post1", Some("1.0-1")),
            (&["1.0", "1.0-1"], "<=1.0", Some("1.0")),
            // Pre-releases only when the specifier names one.
            (&["1.0", "1.1a1"], ">=1.0", Some("1.0")),
            (&["1.0", "1.1.dev1"], ">=1.1.dev0", Some("1.1.dev1")),
            // Versions that are not PEP 440 are skipped, not fatal.
            (&["1.0", "banana"], ">=1", Some("1.0")),
        ];
        for (versions, spec, want) in table {
            assert_eq!(
                best(versions, spec).as_deref(),
                *want,
                "{versions:?} {spec}"
            );
        }
    }
}
