//! The interpreters build-all builds, as any command finds them: those `experiment.yaml`
//! names, the CPython steps' key inputs, the step cache's layout (keys, entry folders, the done
//! marker) and where an install keeps its interpreter. build-all writes this cache; `verify`
//! and export-prs only read it, through here, so no command imports another.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::manifest::Interpreter;
use crate::stack::{Layout, hex};

/// The platform's conventions for file names and layouts, passed as a value so that the
/// Windows strings are tested on every machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Posix,
    Windows,
}

impl Platform {
    pub const fn host() -> Platform {
        if cfg!(windows) {
            Platform::Windows
        } else {
            Platform::Posix
        }
    }

    /// A program's file name: `name.exe` on Windows.
    pub fn exe(self, name: &str) -> String {
        match self {
            Platform::Windows => format!("{name}.exe"),
            Platform::Posix => name.to_string(),
        }
    }
}

/// Revision of the CPython recipe, part of the CPython steps' keys (0 adds nothing): bump it
/// when the recipe changes what it produces. 1: the standard library is byte-compiled at
/// level 0 only (`build_all::recipes::cpython`). 2: with ccache, sysconfig's `CXX` is the
/// plain compiler name, not the build folder's masquerade link.
pub const CPYTHON_RECIPE: u32 = 2;

/// The file that makes a cache entry count, holding its key; written last.
pub const DONE_MARKER: &str = ".xtask-ok";

/// A CPython step's name, `cpython/<interpreter>`.
pub fn cpython_step(interpreter: &str) -> String {
    format!("cpython/{interpreter}")
}

/// Everything a CPython step's key holds: the tree it builds, the flavour, the extra
/// `configure` arguments, the C compiler and the recipe's revision. It needs no other step.
pub fn cpython_inputs(tree: &str, cc: &str, interp: &Interpreter) -> Vec<(String, String)> {
    let mut inputs = vec![
        ("tree".to_string(), tree.to_string()),
        (
            "disable-gil".to_string(),
            interp.flavour.free_threaded().to_string(),
        ),
        ("cc".to_string(), cc.to_string()),
    ];
    if !interp.configure.is_empty() {
        inputs.push(("configure".into(), interp.configure.join(" ")));
    }
    if CPYTHON_RECIPE != 0 {
        inputs.push(("recipe".into(), CPYTHON_RECIPE.to_string()));
    }
    inputs
}

/// A step's cache key: a hash of its name, its inputs and its dependencies' names and keys.
pub fn step_key(name: &str, inputs: &[(String, String)], deps: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    h.update(b"xtask-step-v1\0");
    h.update(name.as_bytes());
    for (label, value) in inputs {
        h.update(b"\0i\0");
        h.update(label.as_bytes());
        h.update(b"=");
        h.update(value.as_bytes());
    }
    for (dep, key) in deps {
        h.update(b"\0d\0");
        h.update(dep.as_bytes());
        h.update(b"=");
        h.update(key.as_bytes());
    }
    hex(&h.finalize()).chars().take(16).collect()
}

/// `cache/<step>/<key>`; the step name's `/` become folders.
pub fn entry_dir(cache: &Path, step: &str, key: &str) -> PathBuf {
    cache.join(step).join(key)
}

/// Whether a cache entry holds a finished step with this key.
pub fn is_done(dir: &Path, key: &str) -> bool {
    std::fs::read_to_string(dir.join(DONE_MARKER)).is_ok_and(|k| k.trim() == key)
}

/// The C compiler's first `--version` line: part of the CPython steps' keys. No compiler, or
/// one that prints nothing, is an error naming it.
pub fn cc_version(sh: &Shell) -> Result<String> {
    match Platform::host() {
        Platform::Posix => {
            let out = cmd!(sh, "cc --version").quiet().read().context(
                "running `cc --version` (build-all needs a C compiler named `cc` on PATH)",
            )?;
            first_line("cc --version", &out)
        }
        // CPython's `PCbuild/build.bat` finds MSVC with vswhere, not on PATH; ask the same.
        Platform::Windows => {
            let program_files = std::env::var("ProgramFiles(x86)")
                .unwrap_or_else(|_| r"C:\Program Files (x86)".to_string());
            let vswhere = vswhere_path(&program_files);
            let out = cmd!(
                sh,
                "{vswhere} -latest -products * -requires Microsoft.VisualStudio.Component.VC.Tools.x86.x64 -property installationVersion"
            )
            .quiet()
            .read()
            .with_context(|| {
                format!(
                    "running `{}` (build-all needs Visual Studio with the C++ tools, as CPython's build.bat does)",
                    vswhere.display()
                )
            })?;
            msvc_key(&out)
        }
    }
}

/// Where the Visual Studio installer keeps vswhere, under `%ProgramFiles(x86)%`.
pub fn vswhere_path(program_files_x86: &str) -> PathBuf {
    Path::new(program_files_x86)
        .join("Microsoft Visual Studio")
        .join("Installer")
        .join("vswhere.exe")
}

/// The compiler's part of a CPython key on Windows: `msvc <installation version>`.
pub fn msvc_key(vswhere_out: &str) -> Result<String> {
    let version = first_line("vswhere", vswhere_out)
        .context("no Visual Studio with the C++ tools (Microsoft.VisualStudio.Component.VC.Tools.x86.x64) was found")?;
    Ok(format!("msvc {version}"))
}

/// The first non-empty line of a tool's `--version` output, or an error naming the tool.
pub fn first_line(command: &str, out: &str) -> Result<String> {
    match out.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => Ok(line.to_string()),
        None => bail!("`{command}` printed nothing; cannot tell which version it is"),
    }
}

/// The interpreter a CPython install provides: `bin/python3` (or `python3.XXt`) on POSIX;
/// `python.exe` or `python3.XXt.exe` at the top of a Windows layout.
pub fn python_in(platform: Platform, prefix: &Path) -> Result<PathBuf> {
    let bin = match platform {
        Platform::Windows => prefix.to_path_buf(),
        Platform::Posix => prefix.join("bin"),
    };
    for name in ["python3", "python3t", "python"].map(|n| platform.exe(n)) {
        if bin.join(&name).exists() {
            return Ok(bin.join(&name));
        }
    }
    let suffix = platform.exe("");
    let found = std::fs::read_dir(&bin)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("python3.") && n.ends_with(&suffix) && !n.ends_with("-config")
            })
        });
    found.with_context(|| format!("no python3 in `{}`", bin.display()))
}

/// The tree id of a checkout's HEAD, for keys.
pub fn tree_of(layout: &Layout, project: &str) -> Result<String> {
    let dir = layout.checkout(project);
    git2::Repository::open(&dir)
        .and_then(|repo| Ok(repo.head()?.peel_to_tree()?.id().to_string()))
        .with_context(|| {
            format!(
                "reading the tree of `{}` (run `cargo xtask sync {project}`)",
                layout.show(&dir)
            )
        })
}

/// The interpreters of `experiment.yaml`, each with its python if build-all built it from the
/// current checkout of its stack, or the message that says how to build it.
pub fn interpreters(layout: &Layout) -> Result<Vec<(Interpreter, Result<PathBuf, String>)>> {
    let experiment = crate::stack::load_experiment(layout)?;
    let cc = cc_version(&Shell::new()?)?;
    let cache = layout.xtask_target().join("cache");
    let mut out = Vec::new();
    for interp in experiment.interpreters {
        let tree = tree_of(layout, &interp.stack)?;
        let step = cpython_step(&interp.name);
        let key = step_key(&step, &cpython_inputs(&tree, &cc, &interp), &[]);
        let dir = entry_dir(&cache, &step, &key);
        let python = if is_done(&dir, &key) {
            python_in(Platform::host(), &dir).map_err(|e| format!("{e:#}"))
        } else {
            Err(format!(
                "`{step}` is not built for the current `{}` checkout; run `cargo xtask build-all --only {step}` first",
                interp.stack
            ))
        };
        out.push((interp, python));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {

    #[test]
    fn windows_compiler_is_found_as_build_bat_finds_it() {
        let p = vswhere_path(r"C:\Program Files (x86)");
        assert!(p.ends_with("vswhere.exe"), "{}", p.display());
        assert!(
            p.to_string_lossy().contains("Microsoft Visual Studio"),
            "{}",
            p.display()
        );
        assert_eq!(
            msvc_key("\n17.11.35312.102\r\n").unwrap(),
            "msvc 17.11.35312.102"
        );
        let err = msvc_key("").unwrap_err();
        assert!(format!("{err:#}").contains("C++ tools"), "{err:#}");
    }
    use super::*;
    use crate::manifest::experiment::Flavour;

    #[test]
    fn keys_are_stable_and_cover_every_input() {
        let interp = |flavour, configure: &[&str]| Interpreter {
            name: "x".into(),
            stack: "cpython".into(),
            version: "3.15".into(),
            flavour,
            configure: configure.iter().map(|s| s.to_string()).collect(),
        };
        let inputs = cpython_inputs("t1", "cc 12", &interp(Flavour::Freethreaded, &[]));
        let key = step_key("cpython/freethreaded", &inputs, &[]);
        assert_eq!(key.len(), 16);
        assert_eq!(key, step_key("cpython/freethreaded", &inputs, &[]));
        assert_ne!(
            key,
            step_key(
                "cpython/freethreaded",
                &cpython_inputs("t1", "cc 13", &interp(Flavour::Freethreaded, &[])),
                &[]
            )
        );
        assert_ne!(
            key,
            step_key(
                "cpython/default",
                &cpython_inputs("t1", "cc 12", &interp(Flavour::Default, &[])),
                &[]
            )
        );
    }

    #[test]
    fn configure_arguments_reach_the_key() {
        let mut i = Interpreter {
            name: "3.15d".into(),
            stack: "cpython".into(),
            version: "3.15".into(),
            flavour: Flavour::Default,
            configure: vec![],
        };
        let plain = step_key("cpython/3.15d", &cpython_inputs("t", "cc", &i), &[]);
        i.configure = vec!["--with-pydebug".into()];
        let debug = step_key("cpython/3.15d", &cpython_inputs("t", "cc", &i), &[]);
        assert_ne!(plain, debug);
    }

    #[test]
    fn a_tool_that_prints_nothing_is_named() {
        assert_eq!(
            first_line("cc --version", "\ncc (Debian) 12\nmore").unwrap(),
            "cc (Debian) 12"
        );
        let err = first_line("rustc --version", "  \n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`rustc --version` printed nothing"), "{err}");
    }

    #[test]
    fn interpreters_in_each_layout() {
        let dir = std::env::temp_dir().join(format!("xtask-interp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin").join("python3.15t"), "").unwrap();
        std::fs::write(dir.join("bin").join("python3.15t-config"), "").unwrap();
        std::fs::write(dir.join("python3.15t.exe"), "").unwrap();
        assert_eq!(
            python_in(Platform::Posix, &dir).unwrap(),
            dir.join("bin").join("python3.15t")
        );
        assert_eq!(
            python_in(Platform::Windows, &dir).unwrap(),
            dir.join("python3.15t.exe")
        );
        std::fs::write(dir.join("python.exe"), "").unwrap();
        assert_eq!(
            python_in(Platform::Windows, &dir).unwrap(),
            dir.join("python.exe")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
