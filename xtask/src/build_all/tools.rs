//! The tool versions that are part of the steps' keys (rustc, the C compiler, the constraints
//! file) and the pinned Python tools the report records. A tool that is missing or prints no
//! version is an error naming it, never an empty key input.

use std::path::Path;

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::ops::interpreters::{cc_version, first_line};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// `rustc --version`'s first line.
    pub rustc: String,
    /// `cc --version`'s first line.
    pub cc: String,
    /// The first 16 hex digits of the constraints file's sha256.
    pub constraints: String,
    /// `name==version` lines of the constraints file, in order.
    pub pinned: Vec<(String, String)>,
}

impl Tools {
    /// Asks the tools for their versions and reads the constraints file.
    pub fn probe(sh: &Shell, constraints: &Path) -> Result<Tools> {
        let rustc = cmd!(sh, "rustc --version")
            .quiet()
            .read()
            .context("running `rustc --version` (build-all needs rustc on PATH)")?;
        let cc = cc_version(sh)?;
        let text = std::fs::read_to_string(constraints)
            .with_context(|| format!("reading `{}`", constraints.display()))?;
        Tools::new(&rustc, &cc, &text)
    }

    /// From the tools' outputs and the constraints file's text.
    pub fn new(rustc_version: &str, cc: &str, constraints: &str) -> Result<Tools> {
        use sha2::Digest;
        let digest = crate::stack::hex(&sha2::Sha256::digest(constraints.as_bytes()));
        let pinned = constraints
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once("=="))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Tools {
            rustc: first_line("rustc --version", rustc_version)?,
            cc: first_line("cc --version", cc)?,
            constraints: digest.chars().take(16).collect(),
            pinned,
        })
    }

    /// Label and value of each, for the report.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("rustc".to_string(), self.rustc.clone()),
            ("cc".to_string(), self.cc.clone()),
            ("constraints".to_string(), self.constraints.clone()),
        ];
        out.extend(self.pinned.iter().cloned());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_pins() {
        let t = Tools::new(
            "rustc 1.95.0 (abc 2026-01-01)\n",
            "cc (Debian 12.2.0-14) 12.2.0\nCopyright\n",
            "# pins\npip==25.3\n\nuv == 0.9.1\n",
        )
        .unwrap();
        assert_eq!(t.rustc, "rustc 1.95.0 (abc 2026-01-01)");
        assert_eq!(t.cc, "cc (Debian 12.2.0-14) 12.2.0");
        assert_eq!(t.constraints.len(), 16);
        assert_eq!(
            t.pinned,
            [("pip".into(), "25.3".into()), ("uv".into(), "0.9.1".into())]
        );
        assert_eq!(t.pairs()[0].0, "rustc");
    }

    #[test]
    fn a_tool_without_a_version_is_an_error_naming_it() {
        let err = Tools::new("", "cc 12", "").unwrap_err().to_string();
        assert!(err.contains("`rustc --version` printed nothing"), "{err}");
        let err = Tools::new("rustc 1", "\n", "").unwrap_err().to_string();
        assert!(err.contains("`cc --version` printed nothing"), "{err}");
    }
}
