//! Patch file names from `series`: the one type every name goes through, so a name the tool
//! makes is as valid as one it reads.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// A patch file name from `series`: a plain file name ending in `.patch`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PatchName(String);

impl PatchName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks a would-be patch file name; the error says what is wrong with it.
    pub fn new(name: &str) -> Result<PatchName, String> {
        let ok_chars = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
        if !name.ends_with(".patch") || name.len() == ".patch".len() {
            return Err(format!("patch name `{name}` must end in `.patch`"));
        }
        if !ok_chars || name.starts_with('.') || name.starts_with('-') {
            return Err(format!(
                "patch name `{name}` must be a plain file name (letters, digits, `-`, `_`, `.`, `+`)"
            ));
        }
        let b = name.as_bytes();
        if b.len() > 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
            return Err(format!(
                "patch name `{name}` has a number prefix; series order lives in `series`, so names carry none"
            ));
        }
        Ok(PatchName(name.to_string()))
    }

    /// The valid name closest to `<stem>.patch`, for names the tool makes (from a commit
    /// subject, or with a `-2` suffix). Total: whatever `stem` holds, the result passes
    /// [`PatchName::new`], because a made name that fails it would stop `save` half-way.
    pub fn from_stem(stem: &str) -> PatchName {
        let mut out = String::new();
        for c in stem.chars() {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+') {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        let mut out = out.trim_start_matches(['-', '.']).to_string();
        // `2038-problem` reads as a numbered `git format-patch` name; `2038_problem` does not.
        let b = out.as_bytes();
        if b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
            out.replace_range(4..5, "_");
        }
        if out.is_empty() {
            out.push_str("patch");
        }
        out.push_str(".patch");
        PatchName::new(&out).unwrap_or_else(|_| PatchName("patch.patch".into()))
    }
}

impl fmt::Display for PatchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PatchName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PatchName::new(&s).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_names_are_valid() {
        for (stem, want) in [
            ("2038-problem", "2038_problem.patch"),
            ("2038", "2038.patch"),
            ("2038-2", "2038_2.patch"),
            ("12345-x", "12345-x.patch"),
            ("-.x", "x.patch"),
            ("", "patch.patch"),
            ("caf\u{e9} au lait", "caf-au-lait.patch"),
            ("a/../b", "a-..-b.patch"),
        ] {
            assert_eq!(PatchName::from_stem(stem).as_str(), want, "{stem:?}");
        }
    }
}
