//! The stack manifest, `patches/<project>/stack.yaml`: its types, parsing and validation.
//!
//! Everything here is pure data: it reads and writes strings, never the file system, so every
//! rule is a table test. The format is documented field by field in `docs/stack-format.md`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

mod conventions;
mod edit;
pub mod experiment;
mod guard;
mod name;
mod source;
mod values;

pub use conventions::{Conventions, NO_NEWS, News};
pub use edit::{with_base, with_series};
pub use experiment::{Backend, Experiment, Installer, Interpreter, Role, RoleKind};
pub use guard::{MAX_BRACKETS, MAX_DEPTH, token};
pub use name::PatchName;
use source::Upstream;
pub use source::{Pin, Source};
pub use values::is_full_hex;

/// One stack, from `stack.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// Where the unpatched source comes from and the pinned base the series applies to
    /// (`upstream:` and `base:`).
    pub source: Source,
    /// What `sync --update` follows: a branch for git, a version specifier for PyPI.
    pub track: String,
    /// Bumped whenever the content of the series changes.
    pub version: u64,
    /// Patch file names, in application order.
    pub series: Vec<PatchName>,
    /// What `build-all` does with this stack (see `docs/stack-format.md`).
    pub build: Option<Build>,
    /// Pull-request groups for `export-prs`, in the order they are listed.
    pub prs: Vec<PrGroup>,
    /// Commands that must pass on every exported pull-request branch (no shell: each string
    /// is split on whitespace).
    pub verify: Vec<String>,
    /// How upstream wants its pull requests (`conventions:`); `None`: the habits export-prs
    /// knows from the upstream's address.
    pub conventions: Option<Conventions>,
}

/// `stack.yaml` as written, before `parse` pairs `upstream:` with `base:` into a [`Source`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    upstream: Upstream,
    track: String,
    base: Pin,
    version: u64,
    #[serde(default)]
    series: Vec<PatchName>,
    #[serde(default)]
    build: Option<Build>,
    #[serde(default)]
    prs: Vec<PrGroup>,
    #[serde(default)]
    verify: Vec<String>,
    #[serde(default)]
    conventions: Option<Conventions>,
}

/// One pull request `export-prs` makes from part of the series.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrGroup {
    /// Names the branch, `pr/<name>`.
    pub name: String,
    pub title: String,
    /// Patch files of the series, in series order.
    pub patches: Vec<PatchName>,
    /// Groups this one is stacked on (at most one: a branch has one base).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The description's opening text; the commit messages follow it.
    #[serde(default)]
    pub body: Option<String>,
    /// The news entry's type or section where upstream wants one (PyO3: added, changed,
    /// fixed, removed, packaging), or `none` for no entry; default `conventions.news_default`.
    #[serde(default)]
    pub news: Option<String>,
}

/// The `build:` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// A real package built into one abi3.abi3t wheel and tested on both interpreters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

/// A package the experiment builds and tests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The build backend: one of experiment.yaml's `backends` (`setuptools`, `maturin`, ...).
    pub kind: String,
    /// A module whose import proves the extension loads (and, on the free-threaded build,
    /// that it keeps the GIL disabled).
    pub import: String,
    /// Requirements for the test run besides the wheel, pinned through the constraints file.
    #[serde(default)]
    pub test_requires: Vec<String>,
    /// pytest arguments, run from a copy of the source's tests (paths relative to the source).
    pub pytest: Vec<String>,
    /// What of the source that copy holds: the tests and the pytest configuration (paths
    /// relative to the source; default `tests` and `pyproject.toml`). Never the package
    /// itself, so the tests import the installed wheel.
    #[serde(default = "default_test_files")]
    pub test_files: Vec<String>,
    /// Test data the source lacks (an sdist without its repository's fixtures), taken from
    /// another sdist on the package index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_data: Vec<TestData>,
    /// pytest worker processes (`pytest -n`); default: one per core. `1` runs the tests in
    /// one process, for suites whose threading tests assume the cores are free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pytest_workers: Option<usize>,
    /// Tests (pytest node ids or paths, relative to the tests' copy) whose timing assumes
    /// free cores. A target that lists any runs its test cells alone, nothing else beside
    /// them: the rest of its suite first, on every core, then these in one process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timing_sensitive: Vec<String>,
    /// Violations of the Stable ABI audit this target accepts, each with its reason (see
    /// docs/audit.md); the wheel step fails on any other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_waivers: Vec<crate::stable_abi::Waiver>,
    /// Environment variables the wheel step gives the build backend (PyNaCl's
    /// `SODIUM_INSTALL: system`); part of the wheel's key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_env: BTreeMap<String, String>,
    /// System libraries the build needs, which build-all's preflight looks for with
    /// pkg-config before the long steps start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_requires: Vec<SystemRequire>,
}

/// A system library a target builds against, by its names for pkg-config, Debian and Homebrew.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SystemRequire {
    pub pkg_config: String,
    pub debian: String,
    pub brew: String,
}

impl SystemRequire {
    /// Why a name cannot be used, if one cannot: they reach pkg-config's command line and the
    /// install commands people copy from the error.
    fn problem(&self) -> Option<String> {
        [&self.pkg_config, &self.debian, &self.brew]
            .into_iter()
            .find(|n| !is_package_name(n))
            .map(|n| {
                format!(
                    "`{}` is not a package name (letters, digits, `.`, `_`, `+` and `-`, not starting with `-`)",
                    guard::token(n)
                )
            })
    }
}

fn is_package_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// Whether `name` is a portable environment variable name (POSIX: letters, digits and `_`,
/// not starting with a digit).
fn is_env_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn default_test_files() -> Vec<String> {
    vec!["tests".into(), "pyproject.toml".into()]
}

/// A folder of another sdist copied next to the tests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestData {
    /// `name==version` on the index.
    pub sdist: String,
    /// The archive's sha256, checked before anything is used.
    pub sha256: String,
    /// The folder inside the sdist (below its top-level `name-version/` folder).
    pub path: String,
    /// Where it goes in the tests' copy.
    pub to: String,
}

impl Target {
    /// Whether `test_files` is the default list rather than one the stack wrote.
    pub fn test_files_are_default(&self) -> bool {
        self.test_files == default_test_files()
    }
}

impl TestData {
    /// The sdist's name and version.
    pub fn name_version(&self) -> Option<(&str, &str)> {
        self.sdist
            .split_once("==")
            .filter(|(n, v)| !n.trim().is_empty() && !v.trim().is_empty())
    }
}

/// Parses `stack.yaml` text. Errors carry `file:line:column` when the parser knows them.
///
/// Before the parser sees the text, its nesting is capped ([`MAX_DEPTH`], [`MAX_BRACKETS`]):
/// the parser's cost grows with the square of the nesting. Errors show at most the offending
/// token, shortened, never a whole value.
pub fn parse(file: &str, text: &str) -> Result<Stack> {
    if let Some((line, column)) = guard::too_deep(text, MAX_DEPTH) {
        bail!(
            "{file}:{line}:{column}: nested deeper than {MAX_DEPTH} levels; a stack.yaml needs 5 (see docs/stack-format.md)"
        );
    }
    let brackets = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if brackets > MAX_BRACKETS {
        bail!(
            "{file}: {brackets} `[` and `{{` characters; a stack.yaml may hold {MAX_BRACKETS} (see docs/stack-format.md)"
        );
    }
    let raw: RawStack = serde_yaml::from_str(text).map_err(|e| {
        let msg = guard::sanitize(&strip_location(&e.to_string()));
        match e.location() {
            Some(loc) => anyhow::anyhow!("{file}:{}:{}: {msg}", loc.line(), loc.column()),
            None => anyhow::anyhow!("{file}: {msg}"),
        }
    })?;
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.starts_with(&format!("{key}:")))
            .map_or(1, |i| i + 1)
    };
    let source = Source::pair(raw.upstream, raw.base)
        .map_err(|why| anyhow::anyhow!("{file}:{}:1: {why}", line_of("base")))?;
    let stack = Stack {
        source,
        track: raw.track,
        version: raw.version,
        series: raw.series,
        build: raw.build,
        prs: raw.prs,
        verify: raw.verify,
        conventions: raw.conventions,
    };
    if stack.track.trim().is_empty() {
        bail!("{file}:{}:1: `track` is empty", line_of("track"));
    }
    if let Some(target) = stack.build.as_ref().and_then(|b| b.target.as_ref()) {
        let at = line_of("build");
        for path in target
            .test_files
            .iter()
            .chain(target.test_data.iter().flat_map(|d| [&d.path, &d.to]))
        {
            if let Err(why) = crate::patch::check_path(path) {
                bail!("{file}:{at}:1: in `build.target`: {why}");
            }
        }
        if target.pytest_workers == Some(0) {
            bail!("{file}:{at}:1: in `build.target`: `pytest_workers` must be at least 1");
        }
        for w in &target.audit_waivers {
            w.check().map_err(|e| {
                anyhow::anyhow!("{file}:{at}:1: in `build.target.audit_waivers`: {e}")
            })?;
        }
        for (name, value) in &target.build_env {
            if !is_env_name(name) {
                bail!(
                    "{file}:{at}:1: in `build.target.build_env`: `{}` is not a variable name (letters, digits and `_`, not starting with a digit)",
                    guard::token(name)
                );
            }
            if value.chars().any(char::is_control) {
                bail!(
                    "{file}:{at}:1: in `build.target.build_env`: the value of `{name}` holds a control character"
                );
            }
        }
        for r in &target.system_requires {
            if let Some(why) = r.problem() {
                bail!("{file}:{at}:1: in `build.target.system_requires`: {why}");
            }
        }
        for d in &target.test_data {
            if d.name_version().is_none() {
                bail!(
                    "{file}:{at}:1: in `build.target.test_data`: `sdist: {}` is not `name==version`",
                    guard::token(&d.sdist)
                );
            }
            if d.sha256.len() != 64 || !d.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    "{file}:{at}:1: in `build.target.test_data`: `sha256` of `{}` is not 64 hex digits",
                    guard::token(&d.sdist)
                );
            }
        }
    }
    if let Some(c) = &stack.conventions {
        let at = line_of("conventions");
        if let Some(why) = c.problem() {
            bail!("{file}:{at}:1: in `conventions`: {why}");
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for name in &stack.series {
        if !seen.insert(name) {
            bail!(
                "{file}:{}:1: `{}` appears twice in the series",
                line_of("series"),
                guard::token(name.as_str())
            );
        }
    }
    Ok(stack)
}

fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIT: &str = "upstream: https://github.com/PyO3/pyo3\ntrack: main\nbase: 34f08c32dec2a3170fbe2e177910352489678816\nversion: 1\nseries: []\n";

    #[test]
    fn parses_git_and_pypi_stacks() {
        let s = parse("stack.yaml", GIT).unwrap();
        assert_eq!(
            s.source,
            Source::Git {
                url: "https://github.com/PyO3/pyo3".into(),
                commit: "34f08c32dec2a3170fbe2e177910352489678816".into()
            }
        );
        assert!(s.series.is_empty());
        let p = parse(
            "stack.yaml",
            "upstream:\n  pypi: cryptography\ntrack: '>=50'\nbase:\n  version: 50.0.2\n  sha256: 7b46165bb56eb4704e2eaaf86f3c940d19154535d9b0ca7d6d590b04060e00d5\nversion: 3\nseries:\n  - a.patch\n",
        )
        .unwrap();
        assert_eq!(
            p.source,
            Source::Pypi {
                name: "cryptography".into(),
                version: "50.0.2".into(),
                sha256: "7b46165bb56eb4704e2eaaf86f3c940d19154535d9b0ca7d6d590b04060e00d5".into()
            }
        );
        assert_eq!(p.series, vec![PatchName::new("a.patch").unwrap()]);
    }

    #[test]
    fn refusals_name_file_line_and_column() {
        let cases: &[(&str, &str)] = &[
            ("colour: red\n", "stack.yaml:5:1: unknown field `colour`"),
            (
                "series:\n  - ../evil.patch\n",
                "stack.yaml:6:3: series: patch name `../evil.patch` must be a plain file name",
            ),
            ("series:\n  - notes.txt\n", "must end in `.patch`"),
            ("series:\n  - a.patch\n  - a.patch\n", "appears twice"),
        ];
        for (extra, want) in cases {
            let text = GIT.replace("series: []\n", "") + extra;
            let err = parse("stack.yaml", &text).unwrap_err().to_string();
            assert!(err.contains(want), "{extra:?}: got {err}");
        }
        let bad_base = GIT.replace("34f08c32dec2a3170fbe2e177910352489678816", "34f08c32");
        let err = parse("stack.yaml", &bad_base).unwrap_err().to_string();
        assert!(
            err.starts_with("stack.yaml:3:7: base: `34f08c32` is not a full commit id"),
            "{err}"
        );
        let err = parse("s.yaml", "upstream: [\n").unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:"), "{err}");
    }

    #[test]
    fn target_test_files_default_and_test_data_is_checked() {
        let target = "build:\n  target:\n    kind: setuptools\n    import: m\n    pytest: [test]\n";
        let s = parse("stack.yaml", &(GIT.to_string() + target)).unwrap();
        let t = s.build.unwrap().target.unwrap();
        assert_eq!(t.test_files, ["tests", "pyproject.toml"]);
        assert!(t.test_data.is_empty());
        let data = |sdist: &str, sha: &str, to: &str| {
            format!(
                "{GIT}{target}    test_files: [test, setup.cfg]\n    test_data:\n      - sdist: {sdist}\n        sha256: {sha}\n        path: tests/testdata\n        to: {to}\n"
            )
        };
        let sha = "e310f77e41941c13340a95976fe66a8a95b01e783d430eeaf7a2f87e0a57dd0a";
        let s = parse("stack.yaml", &data("brotli==1.2.0", sha, "lib/testdata")).unwrap();
        let t = s.build.unwrap().target.unwrap();
        assert_eq!(t.test_files, ["test", "setup.cfg"]);
        assert_eq!(t.test_data[0].name_version(), Some(("brotli", "1.2.0")));
        let waived = data("brotli==1.2.0", sha, "x")
            + "    audit_waivers:\n      - rule: module-def\n        symbol: PyModuleDef_Init\n        reason: passes on a definition made elsewhere\n";
        let t = parse("stack.yaml", &waived)
            .unwrap()
            .build
            .unwrap()
            .target
            .unwrap();
        assert_eq!(
            t.audit_waivers[0].symbol.as_deref(),
            Some("PyModuleDef_Init")
        );
        for (text, want) in [
            (
                data("brotli", sha, "x"),
                "stack.yaml:6:1: in `build.target.test_data`: `sdist: brotli` is not `name==version`",
            ),
            (
                data("brotli==1.2.0", "abc", "x"),
                "`sha256` of `brotli==1.2.0` is not 64 hex digits",
            ),
            (
                data("brotli==1.2.0", sha, "../up"),
                "stack.yaml:6:1: in `build.target`: `../up`",
            ),
            (
                data("brotli==1.2.0", sha, "x") + "    pytest_workers: 0\n",
                "`pytest_workers` must be at least 1",
            ),
            (
                data("brotli==1.2.0", sha, "x")
                    + "    audit_waivers:\n      - rule: refcounts\n        reason: r\n",
                "stack.yaml:6:1: in `build.target.audit_waivers`: audit waiver names rule `refcounts`; the rules are symbols, module-init",
            ),
            (
                data("brotli==1.2.0", sha, "x")
                    + "    audit_waivers:\n      - rule: refcount\n        reason: ''\n",
                "audit waiver of `refcount` gives no reason",
            ),
        ] {
            let err = parse("stack.yaml", &text).unwrap_err().to_string();
            assert!(err.contains(want), "got {err}");
        }
    }

    #[test]
    fn target_build_env_and_system_requires_are_checked() {
        let target = format!(
            "{GIT}build:\n  target:\n    kind: setuptools\n    import: m\n    pytest: [tests]\n"
        );
        let sodium = "    system_requires:\n      - pkg_config: libsodium\n        debian: libsodium-dev\n        brew: libsodium\n";
        let text = format!("{target}    build_env:\n      SODIUM_INSTALL: system\n{sodium}");
        let t = parse("stack.yaml", &text)
            .unwrap()
            .build
            .unwrap()
            .target
            .unwrap();
        assert_eq!(t.build_env["SODIUM_INSTALL"], "system");
        assert_eq!(
            t.system_requires,
            [SystemRequire {
                pkg_config: "libsodium".into(),
                debian: "libsodium-dev".into(),
                brew: "libsodium".into(),
            }]
        );
        // Unset, neither reaches the target's JSON, so the other targets keep their keys.
        let plain = parse("stack.yaml", &target).unwrap().build.unwrap().target;
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("build_env") && !json.contains("system_requires"));
        for (extra, want) in [
            (
                sodium.replace("libsodium-dev", "\"libsodium-dev; rm\""),
                "stack.yaml:6:1: in `build.target.system_requires`: `libsodium-dev; rm` is not a package name",
            ),
            (
                sodium.replace("pkg_config: libsodium", "pkg_config: --help"),
                "`--help` is not a package name",
            ),
            (
                sodium.replace("        brew: libsodium\n", ""),
                "missing field `brew`",
            ),
            (
                sodium.replace("brew:", "apk: x\n        brew:"),
                "unknown field `apk`",
            ),
            (
                "    build_env:\n      1X: y\n".into(),
                "in `build.target.build_env`: `1X` is not a variable name",
            ),
            (
                "    build_env:\n      X: \"a\\nb\"\n".into(),
                "the value of `X` holds a control character",
            ),
        ] {
            let err = parse("stack.yaml", &format!("{target}{extra}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{extra:?}: got {err}");
        }
    }

    #[test]
    fn conventions_parse_and_refusals_name_the_line() {
        let conv = "conventions:\n  source: https://example.org/CONTRIBUTING.md\n  title: \"refactor: {title}\"\n  news: towncrier-rst\n  news_default: misc\n  checks: [ruff check]\n  verify_each_commit: true\n  statement: |\n    Written with help.\n";
        let s = parse("stack.yaml", &format!("{GIT}{conv}")).unwrap();
        let c = s.conventions.unwrap();
        assert_eq!(c.news, News::TowncrierRst);
        assert_eq!(c.title_for("X"), "refactor: X");
        assert!(c.verify_each_commit && !c.keep_author);
        assert_eq!(c.statement.as_deref(), Some("Written with help.\n"));
        assert_eq!(parse("stack.yaml", GIT).unwrap().conventions, None);
        for (extra, want) in [
            (
                "conventions:\n  source: https://x.org/c\n  colour: red\n".to_string(),
                "stack.yaml:7:3: conventions: unknown field `colour`, expected one of `source`",
            ),
            (
                "conventions:\n  news: none\n".to_string(),
                "stack.yaml:6:3: conventions: missing field `source`",
            ),
            (
                "conventions:\n  source: https://x.org/c\n  news: newsfile\n".to_string(),
                "stack.yaml:7:9: conventions.news: unknown variant `newsfile`, expected one of `none`, `towncrier-md`, `towncrier-rst`, `cpython-blurb`",
            ),
            (
                "conventions:\n  source: https://x.org/c\n  title: refactor\n".to_string(),
                "stack.yaml:5:1: in `conventions`: `title: refactor` must contain `{title}`",
            ),
        ] {
            let text = GIT.replace("series: []\n", "") + &extra;
            let err = parse("stack.yaml", &text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{extra:?}: got {err}");
        }
    }

    #[test]
    fn refuses_mismatched_upstream_and_base() {
        let sdist = "base:\n  version: '1.0'\n  sha256: 7b46165bb56eb4704e2eaaf86f3c940d19154535d9b0ca7d6d590b04060e00d5\n";
        let commit = "base: 34f08c32dec2a3170fbe2e177910352489678816\n";
        let cases = [
            (
                format!("# a comment\nupstream: https://x.org/y\ntrack: main\n{sdist}version: 1\n"),
                "s.yaml:4:1: a git upstream needs a commit id as base, not a version and sha256",
            ),
            (
                format!("upstream:\n  pypi: demo\ntrack: '>=1'\n{commit}version: 1\n"),
                "s.yaml:4:1: a PyPI upstream needs `version` and `sha256` as base, not a commit id",
            ),
        ];
        for (text, want) in cases {
            let err = parse("s.yaml", &text).unwrap_err().to_string();
            assert_eq!(err, want);
        }
    }

    #[test]
    fn all_digit_base_is_an_error_unless_quoted() {
        let digits = "1".repeat(40);
        let text = GIT.replace("34f08c32dec2a3170fbe2e177910352489678816", &digits);
        let err = parse("stack.yaml", &text).unwrap_err().to_string();
        assert!(
            err.starts_with("stack.yaml:3:7: base: YAML reads this commit id as a number"),
            "{err}"
        );
        let text = GIT.replace(
            "34f08c32dec2a3170fbe2e177910352489678816",
            &format!("\"{digits}\""),
        );
        assert_eq!(
            parse("stack.yaml", &text).unwrap().source.pin(),
            Pin::Commit(digits)
        );
    }

    #[test]
    fn nesting_is_capped_before_the_parser() {
        let err = parse("s.yaml", &"[".repeat(400_000))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.yaml:1:16: nested deeper than 16 levels"),
            "{err}"
        );
        let flat = format!("{GIT}verify: [{}]\n", "[], ".repeat(5000));
        let err = parse("s.yaml", &flat).unwrap_err().to_string();
        assert!(
            err.starts_with("s.yaml: 5002 `[` and `{` characters"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_one_value_is_not_echoed() {
        let secret = "https://someone:ghp_0123456789abcdefghij0123456789@github.com";
        for text in [format!("{secret}\n"), format!("{GIT}prs: {secret}\n")] {
            let err = parse("s.yaml", &text).unwrap_err().to_string();
            assert!(err.starts_with("s.yaml:"), "{err}");
            assert!(!err.contains("ghp_0123"), "{err}");
        }
    }
}
