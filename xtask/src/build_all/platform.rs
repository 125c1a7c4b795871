//! What differs between POSIX and Windows, as pure functions of the platform: the tools the
//! preflight looks for and their file names, venv layouts, where each CPython build runs, and
//! the `[patch.crates-io]` table (written with the `toml` crate, so a Windows path's
//! backslashes stay backslashes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use crate::ops::interpreters::Platform;

/// The programs build-all runs itself. On Windows CPython is built by `PCbuild\build.bat`,
/// which finds MSVC on its own and brings its libraries, so `cc`, `make` and `pkg-config`
/// are POSIX-only.
pub fn required_tools(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::Posix => &["cc", "make", "cargo", "git", "curl", "tar", "pkg-config"],
        Platform::Windows => &["cargo", "git", "curl", "tar"],
    }
}

/// The file names a tool may have on PATH.
pub fn tool_file_names(platform: Platform, tool: &str) -> Vec<String> {
    match platform {
        Platform::Posix => vec![tool.to_string()],
        Platform::Windows => [".exe", ".cmd", ".bat"]
            .iter()
            .map(|ext| format!("{tool}{ext}"))
            .collect(),
    }
}

/// The required tools that no PATH folder has, in order.
pub fn missing_tools(
    platform: Platform,
    path: &[PathBuf],
    is_file: impl Fn(&Path) -> bool,
) -> Vec<&'static str> {
    required_tools(platform)
        .iter()
        .copied()
        .filter(|tool| {
            !path.iter().any(|dir| {
                tool_file_names(platform, tool)
                    .iter()
                    .any(|f| is_file(&dir.join(f)))
            })
        })
        .collect()
}

/// Where a venv keeps its programs: `bin/` on POSIX, `Scripts\` on Windows.
pub fn scripts_dir(platform: Platform, venv: &Path) -> PathBuf {
    match platform {
        Platform::Windows => venv.join("Scripts"),
        Platform::Posix => venv.join("bin"),
    }
}

pub fn venv_python(platform: Platform, venv: &Path) -> PathBuf {
    scripts_dir(platform, venv).join(platform.exe("python"))
}

/// Where a CPython step builds. Never in the checkout: the two flavours build at the same
/// time and would share (and race on) in-tree build products.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpythonBuild {
    /// Made empty, then the build runs here.
    pub dir: PathBuf,
    /// A copy of the checkout made into `dir` first (Windows: `PCbuild` builds into its
    /// source tree); `None` when the build reads the checkout from outside (POSIX
    /// `configure` from an empty build folder).
    pub copy_source: Option<PathBuf>,
    /// The script that starts the build: `<checkout>/configure` or `<copy>\PCbuild\build.bat`.
    pub script: PathBuf,
}

pub fn cpython_build(
    platform: Platform,
    work: &Path,
    checkout: &Path,
    interpreter: &str,
) -> CpythonBuild {
    let dir = work.join(format!("cpython-{interpreter}-build"));
    match platform {
        Platform::Posix => CpythonBuild {
            script: checkout.join("configure"),
            copy_source: None,
            dir,
        },
        Platform::Windows => {
            let copy = dir.join("cpython");
            CpythonBuild {
                script: copy.join("PCbuild").join("build.bat"),
                copy_source: Some(copy),
                dir,
            }
        }
    }
}

#[derive(serde::Serialize)]
struct CargoConfig {
    patch: BTreeMap<&'static str, BTreeMap<String, PathDep>>,
}

#[derive(serde::Serialize)]
struct PathDep {
    path: String,
}

/// A `.cargo/config.toml` whose `[patch.crates-io]` points each crate at its folder.
pub fn patch_config(crates: &[(String, PathBuf)]) -> Result<String> {
    let table = crates
        .iter()
        .map(|(name, path)| {
            let path = path.to_string_lossy().into_owned();
            (name.clone(), PathDep { path })
        })
        .collect();
    let config = CargoConfig {
        patch: BTreeMap::from([("crates-io", table)]),
    };
    toml::to_string(&config).context("writing the `[patch.crates-io]` table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preflight_finds_windows_programs_by_their_exe_names() {
        let path = [PathBuf::from("C:/Git/cmd"), PathBuf::from("C:/cargo/bin")];
        let on_windows = [
            "C:/Git/cmd/git.exe",
            "C:/Git/cmd/curl.exe",
            "C:/Git/cmd/tar.exe",
            "C:/cargo/bin/cargo.exe",
        ];
        let is_file = |p: &Path| on_windows.iter().any(|f| Path::new(f) == p);
        assert!(missing_tools(Platform::Windows, &path, is_file).is_empty());
        // The same folders seen as POSIX have none of them.
        assert_eq!(
            missing_tools(Platform::Posix, &path, is_file),
            required_tools(Platform::Posix)
        );
        let posix = |p: &Path| p == Path::new("C:/cargo/bin/cargo");
        assert!(!missing_tools(Platform::Posix, &path, posix).contains(&"cargo"));
        assert_eq!(
            tool_file_names(Platform::Windows, "git"),
            ["git.exe", "git.cmd", "git.bat"]
        );
    }

    #[test]
    fn venv_layouts() {
        let v = Path::new("venv");
        assert_eq!(
            venv_python(Platform::Windows, v),
            Path::new("venv").join("Scripts").join("python.exe")
        );
        assert_eq!(
            venv_python(Platform::Posix, v),
            Path::new("venv").join("bin").join("python")
        );
        assert_eq!(Platform::Windows.exe("uv"), "uv.exe");
        assert_eq!(Platform::Posix.exe("uv"), "uv");
    }

    #[test]
    fn cpython_builds_out_of_tree_each_in_its_own_folder() {
        let (work, co) = (
            Path::new("/r/target/xtask/work"),
            Path::new("/r/checkouts/cpython"),
        );
        for platform in [Platform::Posix, Platform::Windows] {
            let b: Vec<CpythonBuild> = ["3.15", "3.15t"]
                .iter()
                .map(|i| cpython_build(platform, work, co, i))
                .collect();
            assert_ne!(b[0].dir, b[1].dir, "{platform:?}");
            for build in &b {
                assert!(build.dir.starts_with(work), "{build:?}");
                assert!(!build.dir.starts_with(co), "{build:?}");
            }
        }
        let posix = cpython_build(Platform::Posix, work, co, "3.15t");
        assert_eq!(posix.script, co.join("configure"));
        assert_eq!(posix.copy_source, None);
        let win = cpython_build(Platform::Windows, work, co, "3.15");
        assert!(win.script.starts_with(&win.dir), "{win:?}");
        assert_eq!(
            win.copy_source.as_deref(),
            Some(work.join("cpython-3.15-build").join("cpython").as_path())
        );
    }

    #[test]
    fn patch_paths_survive_toml_whatever_their_separators() {
        let crates = vec![
            (
                "pyo3".to_string(),
                PathBuf::from(r"C:\Users\runner\work\checkouts\pyo3"),
            ),
            (
                "pyo3-ffi".to_string(),
                PathBuf::from(r#"/home/a "quoted" dir/pyo3-ffi"#),
            ),
        ];
        let text = patch_config(&crates).unwrap();
        let back: toml::Table = text.parse().unwrap();
        let table = &back["patch"]["crates-io"];
        assert_eq!(
            table["pyo3"]["path"].as_str(),
            Some(r"C:\Users\runner\work\checkouts\pyo3")
        );
        assert_eq!(
            table["pyo3-ffi"]["path"].as_str(),
            Some(r#"/home/a "quoted" dir/pyo3-ffi"#)
        );
    }
}
