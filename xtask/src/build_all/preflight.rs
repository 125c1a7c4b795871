//! build-all's preflight: the tools it runs and the system libraries its steps build against
//! (CPython's, and those the targets' `system_requires` list), found before the long steps start.

use anyhow::{Result, bail};
use xshell::{Shell, cmd};

use super::{platform, recipes};
use crate::manifest::SystemRequire;
use crate::ops::interpreters::Platform;
use crate::stack::{Layout, Project};

/// What CPython needs for `ssl`, `ctypes`, `zlib` and `sqlite3`: the pkg-config, Debian and
/// Homebrew names.
const CPYTHON_NEEDS: [(&str, &str, &str); 4] = [
    ("openssl", "libssl-dev", "openssl@3"),
    ("libffi", "libffi-dev", "libffi"),
    ("zlib", "zlib1g-dev", "zlib"),
    ("sqlite3", "libsqlite3-dev", "sqlite"),
];

/// A system library a step builds against, and the targets that list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub names: SystemRequire,
    /// The targets whose `build.target.system_requires` list it; empty when only CPython does.
    pub by: Vec<String>,
}

/// CPython's libraries, then each target's `system_requires` in target order, each library
/// once (by its pkg-config name) with every target that lists it.
pub fn needs(targets: &[(String, Vec<SystemRequire>)]) -> Vec<Need> {
    let mut all: Vec<Need> = CPYTHON_NEEDS
        .iter()
        .map(|&(pkg_config, debian, brew)| Need {
            names: SystemRequire {
                pkg_config: pkg_config.into(),
                debian: debian.into(),
                brew: brew.into(),
            },
            by: vec![],
        })
        .collect();
    for (target, requires) in targets {
        for r in requires {
            match all.iter_mut().find(|n| n.names.pkg_config == r.pkg_config) {
                Some(n) if n.by.contains(target) => {}
                Some(n) => n.by.push(target.clone()),
                None => all.push(Need {
                    names: r.clone(),
                    by: vec![target.clone()],
                }),
            }
        }
    }
    all
}

/// The error for the libraries pkg-config did not find, with the commands that install them;
/// `None` when nothing is missing.
pub fn missing_message(missing: &[Need]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let what: Vec<String> = missing
        .iter()
        .map(|n| match n.by.as_slice() {
            [] => n.names.pkg_config.clone(),
            by => format!("{} (needed by {})", n.names.pkg_config, by.join(", ")),
        })
        .collect();
    let names = |f: fn(&SystemRequire) -> &str| {
        missing
            .iter()
            .map(|n| f(&n.names))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(format!(
        "missing development files for {} (pkg-config found none); install them first:\n  Debian/Ubuntu: sudo apt-get install pkg-config {}\n  macOS: brew install pkg-config {}",
        what.join(", "),
        names(|r| &r.debian),
        names(|r| &r.brew)
    ))
}

/// Every stack's `build.target.system_requires`, read from `patches/` (no sync needed).
pub fn system_requires(layout: &Layout) -> Result<Vec<(String, Vec<SystemRequire>)>> {
    let mut found = Vec::new();
    for name in layout.projects()? {
        let project = Project::load(layout, &name)?;
        if let Some(t) = project.stack.build.and_then(|b| b.target)
            && !t.system_requires.is_empty()
        {
            found.push((name, t.system_requires));
        }
    }
    Ok(found)
}

/// The tools build-all runs, and on POSIX the system libraries of CPython and the targets.
pub fn preflight(
    sh: &Shell,
    platform: Platform,
    targets: &[(String, Vec<SystemRequire>)],
) -> Result<()> {
    let path: Vec<_> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    if let Some(tool) = platform::missing_tools(platform, &path, |p| p.is_file()).first() {
        bail!("`{tool}` is not on PATH; build-all needs it");
    }
    if platform == Platform::Windows {
        // PCbuild fetches CPython's libraries itself (`build.bat -e`).
        return Ok(());
    }
    // ccache is optional: without it every CPython build compiles everything, so say so
    // once here; each CPython step's log says it too.
    if recipes::cpython::find_ccache(&path, std::path::Path::new(""), |p| p.is_file()).is_none() {
        eprintln!("note: {}", recipes::cpython::NO_CCACHE);
    }
    let missing: Vec<Need> = needs(targets)
        .into_iter()
        .filter(|n| {
            let module = &n.names.pkg_config;
            cmd!(sh, "pkg-config --exists {module}")
                .quiet()
                .ignore_stderr()
                .run()
                .is_err()
        })
        .collect();
    if let Some(msg) = missing_message(&missing) {
        bail!("{msg}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sodium() -> SystemRequire {
        SystemRequire {
            pkg_config: "libsodium".into(),
            debian: "libsodium-dev".into(),
            brew: "libsodium".into(),
        }
    }

    #[test]
    fn targets_system_requires_join_cpythons_and_name_the_target() {
        let openssl = SystemRequire {
            pkg_config: "openssl".into(),
            debian: "libssl-dev".into(),
            brew: "openssl@3".into(),
        };
        let targets = vec![
            ("pynacl".to_string(), vec![sodium(), openssl]),
            ("other".to_string(), vec![sodium(), sodium()]),
        ];
        let all = needs(&targets);
        let names: Vec<&str> = all.iter().map(|n| n.names.pkg_config.as_str()).collect();
        assert_eq!(names, ["openssl", "libffi", "zlib", "sqlite3", "libsodium"]);
        assert_eq!(all[0].by, ["pynacl"]);
        assert_eq!(all[4].by, ["pynacl", "other"]);
        assert!(needs(&[]).iter().all(|n| n.by.is_empty()));

        assert_eq!(missing_message(&[]), None);
        let missing: Vec<Need> = all
            .into_iter()
            .filter(|n| ["zlib", "libsodium"].contains(&n.names.pkg_config.as_str()))
            .collect();
        assert_eq!(
            missing_message(&missing).unwrap(),
            "missing development files for zlib, libsodium (needed by pynacl, other) (pkg-config found none); install them first:\n  Debian/Ubuntu: sudo apt-get install pkg-config zlib1g-dev libsodium-dev\n  macOS: brew install pkg-config zlib libsodium"
        );
    }
}
