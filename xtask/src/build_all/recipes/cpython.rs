//! The POSIX CPython recipe: `configure` out of tree into an empty build folder, `make`
//! through ccache when it is on PATH (masquerading as the compiler, so the install never
//! names ccache), and `make install` with the standard library byte-compiled once rather than
//! three times. The decisions and their numbers are in docs/decisions.md ("CPython rebuilds").

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use super::{Ctx, logged};

/// One POSIX CPython build, from a read-only checkout into `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosixBuild {
    pub checkout: PathBuf,
    /// Made empty, then `configure` and `make` run here.
    pub build_dir: PathBuf,
    /// The install's final place (the cache entry): `--prefix`.
    pub prefix: PathBuf,
    /// After `--prefix`, e.g. `--disable-gil`.
    pub configure_args: Vec<String>,
    pub jobs: usize,
    /// The compiler cache, or `None` when ccache is not on PATH (every object is compiled).
    pub ccache: Option<Ccache>,
    /// The C++ compiler's plain name (see [`configure_args`]).
    pub cxx: Option<String>,
}

/// ccache and the cache folder it keeps its objects in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ccache {
    pub program: PathBuf,
    /// Under `target/`: nothing is written outside `checkouts/` and `target/`.
    pub dir: PathBuf,
}

/// The compiler names configure may pick (it tries `gcc`, then `cc`; C++ for `CXX`), each
/// linked to ccache in a folder put first on PATH. ccache called by one of these names runs
/// the next program of that name on PATH that is not itself.
pub const MASQUERADE: &[&str] = &["cc", "gcc", "c++", "g++", "clang", "clang++"];

/// What `make install` gets on its command line. `libinstall` runs `compileall -o 0 -o 1
/// -o 2 $(COMPILEALL_OPTS) ... -f <libdir>`; `-l` (do not recurse) leaves it the files at
/// the top of `Lib/`, and `byte_compile_args` then compiles the whole library once, at the
/// level every step uses.
pub fn install_args() -> Vec<String> {
    vec!["install".into(), "COMPILEALL_OPTS=-j0 -l".into()]
}

/// `python -m compileall` over the installed library at optimization level 0 only (the
/// install stays complete for the default level, so it works even where it cannot be written;
/// `-O` and `-OO`, which no step uses, write their `.pyc` lazily). The excludes are
/// `libinstall`'s: test files that are meant not to compile.
pub fn byte_compile_args(libdir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-Wi", "-m", "compileall", "-q", "-j0", "-o", "0", "-x"]
        .map(OsString::from)
        .to_vec();
    args.push("bad_coding|badsyntax|site-packages".into());
    args.push(libdir.into());
    args
}

/// `configure`'s arguments: the prefix, then the interpreter's own. With ccache, also the
/// C++ compiler by its plain name (`CXX=g++`): configure otherwise records the full path it
/// found, the masquerade link in the build folder, in the install's sysconfig, and every C++
/// extension built later on that interpreter (`test_cppext`, a C++ package) would name a
/// compiler that was deleted with the build folder. A plain name is found on PATH: through
/// ccache while CPython builds, the real compiler afterwards.
pub fn configure_args(b: &PosixBuild) -> Vec<OsString> {
    let mut prefix = OsString::from("--prefix=");
    prefix.push(&b.prefix);
    let mut args = vec![prefix];
    args.extend(b.configure_args.iter().map(OsString::from));
    if let (Some(_), Some(cxx)) = (&b.ccache, &b.cxx) {
        args.push(format!("CXX={cxx}").into());
    }
    args
}

/// The C++ compiler configure would pick, by plain name, from the caller's PATH (before the
/// masquerade folder): the first of `g++`, `c++`, `clang++` there.
pub fn plain_cxx(path: &[PathBuf], exists: impl Fn(&Path) -> bool) -> Option<String> {
    ["g++", "c++", "clang++"]
        .into_iter()
        .find(|name| path.iter().any(|dir| exists(&dir.join(name))))
        .map(str::to_string)
}

/// Where the masquerade links live: inside the build folder, so the two flavours building at
/// once never race on one folder, and it goes with the build folder.
pub fn masquerade_dir(build_dir: &Path) -> PathBuf {
    build_dir.join("ccache-bin")
}

/// The variables `configure` and `make` run with. Without ccache: none (PATH as it is).
/// With it: the masquerade folder first on PATH, the cache under `target/`, a per-build
/// statistics log, and the settings that keep a hit exactly what its key says set
/// explicitly, so a user's or the system's ccache.conf cannot loosen them: no `base_dir`
/// (paths stay absolute, as in a build without ccache) and no sloppiness (a file using
/// `__TIME__`, such as `Modules/getbuildinfo.c`, is compiled every time).
pub fn build_env(
    b: &PosixBuild,
    path: Option<&std::ffi::OsStr>,
) -> Result<Vec<(String, OsString)>> {
    let Some(cc) = &b.ccache else {
        return Ok(Vec::new());
    };
    let mut dirs = vec![masquerade_dir(&b.build_dir)];
    dirs.extend(path.map(std::env::split_paths).into_iter().flatten());
    let path = std::env::join_paths(dirs).context("a PATH folder holds the path separator")?;
    Ok(vec![
        ("PATH".into(), path),
        ("CCACHE_DIR".into(), cc.dir.clone().into()),
        ("CCACHE_BASEDIR".into(), OsString::new()),
        ("CCACHE_SLOPPINESS".into(), OsString::new()),
        (
            "CCACHE_STATSLOG".into(),
            b.build_dir.join("ccache-stats.log").into(),
        ),
    ])
}

/// ccache on PATH, with its cache in `dir`.
pub fn find_ccache(
    path: &[PathBuf],
    dir: &Path,
    is_file: impl Fn(&Path) -> bool,
) -> Option<Ccache> {
    path.iter()
        .map(|d| d.join("ccache"))
        .find(|p| is_file(p))
        .map(|program| Ccache {
            program,
            dir: dir.to_path_buf(),
        })
}

/// Said once on the terminal (by the preflight) and in each CPython step's log when there is
/// no compiler cache.
pub const NO_CCACHE: &str = "ccache is not on PATH: CPython is compiled from scratch on every change (slower); install ccache (apt-get install ccache, brew install ccache) to rebuild in minutes";

/// Configure, build and install; each phase's time goes to the step's log.
pub fn build_posix(ctx: &Ctx, b: &PosixBuild) -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(&b.build_dir);
    match &b.ccache {
        Some(cc) => {
            masquerade(&b.build_dir, &cc.program)?;
            std::fs::create_dir_all(&cc.dir)
                .with_context(|| format!("creating `{}`", cc.dir.display()))?;
            ctx.note(&format!(
                "compiler cache: {} in {}",
                cc.program.display(),
                cc.dir.display()
            ))?;
        }
        None => ctx.note(NO_CCACHE)?,
    }
    for (k, v) in build_env(b, std::env::var_os("PATH").as_deref())? {
        sh.set_var(k, v);
    }
    let configure = b.checkout.join("configure");
    let args = configure_args(b);
    timed(ctx, "configure", || {
        logged(ctx, cmd!(sh, "{configure} {args...}"))
    })?;
    let jobs = format!("-j{}", b.jobs.max(1));
    timed(ctx, "make", || logged(ctx, cmd!(sh, "make {jobs}")))?;
    if b.ccache.is_some() {
        // This build's hits and misses (the cache's own counters are shared by builds that
        // run at once); an old ccache without a stats log just says so.
        let out = cmd!(sh, "ccache --show-log-stats")
            .quiet()
            .ignore_status()
            .output();
        if let Ok(out) = out {
            ctx.note(&String::from_utf8_lossy(&out.stdout))?;
        }
    }
    let install = install_args();
    timed(ctx, "make install", || {
        logged(ctx, cmd!(sh, "make {install...}"))
    })?;
    let python = crate::ops::interpreters::python_in(super::HOST, &b.prefix)?;
    let libdir = installed_libdir(&python, &sh, ctx)?;
    let compile = byte_compile_args(&libdir);
    timed(ctx, "byte-compile", || {
        logged(ctx, cmd!(sh, "{python} {compile...}"))
    })?;
    Ok(())
}

/// The installed standard library's folder, as the interpreter reports it.
fn installed_libdir(python: &Path, sh: &Shell, ctx: &Ctx) -> Result<PathBuf> {
    let probe = "import sysconfig; print(sysconfig.get_path('stdlib'))";
    let out = logged(ctx, cmd!(sh, "{python} -c {probe}"))?;
    Ok(PathBuf::from(out.trim()))
}

fn timed(ctx: &Ctx, phase: &str, f: impl FnOnce() -> Result<String>) -> Result<()> {
    let start = Instant::now();
    f()?;
    ctx.note(&format!("{phase}: {:.1} s", start.elapsed().as_secs_f64()))?;
    Ok(())
}

/// Links each `MASQUERADE` name to ccache in the build folder's masquerade folder.
fn masquerade(build_dir: &Path, ccache: &Path) -> Result<()> {
    let dir = masquerade_dir(build_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
    for name in MASQUERADE {
        let link = dir.join(name);
        #[cfg(unix)]
        std::os::unix::fs::symlink(ccache, &link)
            .with_context(|| format!("linking `{}` to ccache", link.display()))?;
        #[cfg(not(unix))]
        anyhow::bail!(
            "the POSIX CPython recipe cannot link `{}` here",
            link.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(ccache: Option<Ccache>) -> PosixBuild {
        PosixBuild {
            checkout: "/r/checkouts/cpython".into(),
            build_dir: "/r/target/xtask/work/cpython-freethreaded-build".into(),
            prefix: "/r/target/xtask/cache/cpython/freethreaded/k1".into(),
            configure_args: vec!["--disable-gil".into()],
            jobs: 2,
            ccache,
            cxx: Some("g++".into()),
        }
    }

    fn cache() -> Option<Ccache> {
        Some(Ccache {
            program: "/usr/bin/ccache".into(),
            dir: "/r/target/xtask/work/ccache".into(),
        })
    }

    #[test]
    fn configure_gets_the_entry_as_prefix_then_the_interpreters_args() {
        assert_eq!(
            configure_args(&build(None)),
            [
                "--prefix=/r/target/xtask/cache/cpython/freethreaded/k1",
                "--disable-gil"
            ]
        );
    }

    #[test]
    fn with_ccache_the_install_records_the_cxx_by_its_plain_name() {
        // Once, configure recorded `<build>/ccache-bin/g++` as CXX, a folder deleted after
        // the build, so C++ extensions could not be built on the install.
        let args = configure_args(&build(cache()));
        assert_eq!(args.last().unwrap(), "CXX=g++");
        assert!(
            !configure_args(&build(None))
                .iter()
                .any(|a| a.to_string_lossy().starts_with("CXX="))
        );
        let path = [PathBuf::from("/opt/bin"), PathBuf::from("/usr/bin")];
        let cxx = plain_cxx(&path, |p| p == Path::new("/usr/bin/c++"));
        assert_eq!(cxx.as_deref(), Some("c++"));
        assert_eq!(plain_cxx(&path, |_| false), None);
    }

    #[test]
    fn without_ccache_the_build_runs_with_the_callers_environment() {
        let env = build_env(&build(None), Some("/usr/bin".as_ref())).unwrap();
        assert!(env.is_empty(), "{env:?}");
        let path = [PathBuf::from("/usr/local/bin"), PathBuf::from("/usr/bin")];
        assert_eq!(find_ccache(&path, Path::new("/c"), |_| false), None);
    }

    #[test]
    fn ccache_masquerades_first_on_path_and_keeps_its_cache_under_target() {
        let b = build(cache());
        let env = build_env(&b, Some("/usr/local/bin:/usr/bin".as_ref())).unwrap();
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(
            get("PATH").as_deref(),
            Some(
                "/r/target/xtask/work/cpython-freethreaded-build/ccache-bin:/usr/local/bin:/usr/bin"
            )
        );
        assert_eq!(
            get("CCACHE_DIR").as_deref(),
            Some("/r/target/xtask/work/ccache")
        );
        // Set, and empty: a ccache.conf elsewhere cannot turn on base_dir or sloppiness.
        assert_eq!(get("CCACHE_BASEDIR").as_deref(), Some(""));
        assert_eq!(get("CCACHE_SLOPPINESS").as_deref(), Some(""));
        for (_, v) in &env {
            let v = Path::new(v);
            assert!(
                !v.is_absolute() || v.starts_with("/r/target") || v.starts_with("/usr"),
                "{v:?}"
            );
        }
        // configure looks for gcc first, then cc.
        assert!(MASQUERADE.contains(&"gcc") && MASQUERADE.contains(&"cc"));
        let path = [PathBuf::from("/opt/bin"), PathBuf::from("/usr/bin")];
        let found = find_ccache(&path, Path::new("/r/target/xtask/work/ccache"), |p| {
            p == Path::new("/usr/bin/ccache")
        });
        assert_eq!(found, cache());
    }

    #[test]
    fn the_library_is_byte_compiled_once() {
        let install = install_args();
        assert_eq!(install[0], "install");
        // make's own compileall keeps to the top of Lib/.
        assert!(install[1].starts_with("COMPILEALL_OPTS=") && install[1].contains(" -l"));
        let args: Vec<String> = byte_compile_args(Path::new("/p/lib/python3.15t"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args.iter().filter(|a| *a == "-o").count(), 1, "{args:?}");
        let o = args.iter().position(|a| a == "-o").unwrap();
        assert_eq!(args[o + 1], "0");
        assert_eq!(args.last().map(String::as_str), Some("/p/lib/python3.15t"));
    }
}
