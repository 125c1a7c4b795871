//! Why a matrix cell did not pass, as a stable class and one line a person can act on.
//!
//! A recipe that knows why it failed says so with a [`Failure`] in its error (the runner
//! keeps it with the step's result); the report classes every cell from those, from the
//! cell's own record (its counts, its flaky tests) and from its neighbours: a test suite that
//! fails on some interpreters only is told apart from one that fails everywhere. The class
//! names are part of `report.json`'s schema (docs/build-all.md).

use serde::{Deserialize, Serialize};

/// Where a cell stopped. The order is the order of the report's sections: the earliest stage
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// The target's stack did not sync: a patch does not apply to its base.
    Sync,
    /// A toolchain step the cell needs failed (an interpreter, maturin, an environment).
    Toolchain,
    /// The backend (or cargo under it) refused or failed to build the wheel.
    BuildRefused,
    /// The wheel was built with the wrong tags, module suffixes or version.
    WrongTags,
    /// The Stable ABI audit found violations.
    AuditViolation,
    /// The installer refused the wheel (or its requirements).
    InstallRefused,
    /// The module did not import (or turned the GIL on).
    ImportError,
    /// A process died of a signal.
    Crash,
    /// Tests failed on some of the interpreters only.
    TestsFailedSomeBuilds,
    /// Tests failed on every interpreter they ran on.
    TestsFailedEverywhere,
    /// Tests failed, then passed when re-run on their own.
    Flaky,
    /// An installer accepted what it must refuse, or refused what it must accept.
    RefusalMismatch,
    /// A failure no recipe explained (the reason is the error).
    Error,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Sync => "sync",
            Class::Toolchain => "toolchain",
            Class::BuildRefused => "build-refused",
            Class::WrongTags => "wrong-tags",
            Class::AuditViolation => "audit-violation",
            Class::InstallRefused => "install-refused",
            Class::ImportError => "import-error",
            Class::Crash => "crash",
            Class::TestsFailedSomeBuilds => "tests-failed-some-builds",
            Class::TestsFailedEverywhere => "tests-failed-everywhere",
            Class::Flaky => "flaky",
            Class::RefusalMismatch => "refusal-mismatch",
            Class::Error => "error",
        }
    }

    /// What the class means, for the report's section headings.
    pub fn heading(self) -> &'static str {
        match self {
            Class::Sync => "the stack does not sync (a patch does not apply)",
            Class::Toolchain => "a toolchain step failed",
            Class::BuildRefused => "the build was refused",
            Class::WrongTags => "wrong wheel tags, module suffix or version",
            Class::AuditViolation => "Stable ABI audit violations",
            Class::InstallRefused => "the installer refused",
            Class::ImportError => "the module does not import",
            Class::Crash => "a crash (signal)",
            Class::TestsFailedSomeBuilds => "tests fail on some builds only",
            Class::TestsFailedEverywhere => "tests fail everywhere",
            Class::Flaky => "flaky (passed when re-run)",
            Class::RefusalMismatch => "an installer's verdict is not the expected one",
            Class::Error => "other errors",
        }
    }
}

/// A classified failure: carried in a step's `anyhow::Error` (as the error or its context)
/// and found again with `downcast_ref`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub class: Class,
    /// One line: what stopped, and what to do where that is known.
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    pub fn new(class: Class, reason: impl Into<String>) -> Failure {
        Failure {
            class,
            reason: one_line(&reason.into()),
        }
    }

    /// The failure an error carries, if a recipe classified it.
    pub fn of(e: &anyhow::Error) -> Option<Failure> {
        e.downcast_ref::<Failure>().cloned()
    }
}

/// Wraps `e` in a [`Failure`] of `class`, unless it already carries one (a crash found
/// deeper down stays a crash).
pub fn classed(e: anyhow::Error, class: Class, reason: impl Into<String>) -> anyhow::Error {
    if Failure::of(&e).is_some() {
        return e;
    }
    e.context(Failure::new(class, reason))
}

/// Whitespace folded to single spaces, and at most 300 characters: a report cell.
pub fn one_line(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match folded.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &folded[..i]),
        None => folded,
    }
}

/// The line of a tool's output that says what went wrong: the last line that looks like an
/// error (pip's `ERROR:`, uv's `error:` or `×`, a Python exception, a compiler's `error:`),
/// else the last non-empty line.
pub fn error_line(output: &str) -> Option<String> {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !GENERIC.iter().any(|g| l.contains(g)))
        .collect();
    let looks_like_error = |l: &&&str| {
        let lower = l.to_ascii_lowercase();
        lower.starts_with("error")
            || l.starts_with('×')
            || lower.contains(" error: ")
            || lower.contains("error: ")
            || python_exception(l)
    };
    lines
        .iter()
        .rev()
        .find(looks_like_error)
        .or(lines.last())
        .map(|l| one_line(l))
}

/// What pip and uv say around every failed build, which names no cause.
const GENERIC: &[&str] = &[
    "Failed building wheel for",
    "Failed to build",
    "subprocess-exited-with-error",
    "metadata-generation-failed",
    "Could not build wheels",
    "exit code:",
    "See above for output",
    "This error originates from a subprocess",
    "╰─>",
];

/// `SomethingError: ...` or `SomethingError` alone: the last line of a traceback.
fn python_exception(line: &str) -> bool {
    let head = line.split(':').next().unwrap_or("");
    !head.is_empty()
        && !head.contains(' ')
        && (head.ends_with("Error") || head.ends_with("Exception") || head.ends_with("Exit"))
}

/// What pytest-xdist says when a worker died under a test: `worker 'gw0' crashed while
/// running 'tests/test_x.py::test_y'`.
pub fn crashed_worker(output: &str) -> Option<String> {
    output
        .lines()
        .find(|l| l.contains("crashed while running"))
        .map(|l| one_line(l.trim_start_matches(['[', ']']).trim()))
}

/// A finished test cell as the classification across interpreters sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteOutcome {
    pub interpreter: String,
    /// It ran and tests failed (not a crash, not a failure before the tests).
    pub tests_failed: bool,
    /// It ran and passed.
    pub passed: bool,
}

/// The class of a target's failed test cells, from all of its test cells: failing on some
/// interpreters while passing on others is `TestsFailedSomeBuilds`, with the reason naming
/// both sides; failing on every interpreter that ran is `TestsFailedEverywhere`.
pub fn tests_across(cells: &[SuiteOutcome]) -> (Class, String) {
    let failed: Vec<&str> = cells
        .iter()
        .filter(|c| c.tests_failed)
        .map(|c| c.interpreter.as_str())
        .collect();
    let passed: Vec<&str> = cells
        .iter()
        .filter(|c| c.passed)
        .map(|c| c.interpreter.as_str())
        .collect();
    if passed.is_empty() {
        (
            Class::TestsFailedEverywhere,
            format!("tests fail on every interpreter ({})", failed.join(", ")),
        )
    } else {
        (
            Class::TestsFailedSomeBuilds,
            format!(
                "tests fail on {} only; they pass on {}",
                failed.join(", "),
                passed.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_survives_context_and_is_not_reclassed() {
        let e = anyhow::Error::new(Failure::new(Class::Crash, "killed by SIGSEGV"))
            .context("running the tests");
        assert_eq!(Failure::of(&e).unwrap().class, Class::Crash);
        let e = classed(e, Class::TestsFailedEverywhere, "tests failed");
        assert_eq!(Failure::of(&e).unwrap().class, Class::Crash);
        let plain = classed(
            anyhow::anyhow!("exit 1"),
            Class::InstallRefused,
            "uv said no",
        );
        assert_eq!(
            Failure::of(&plain),
            Some(Failure::new(Class::InstallRefused, "uv said no"))
        );
        assert_eq!(format!("{plain:#}"), "uv said no: exit 1");
    }

    #[test]
    fn the_error_line_is_the_one_that_says_what_went_wrong() {
        let pip = "Processing ./x.whl\nERROR: x-1.0-cp315-abi3-linux_x86_64.whl is not a supported wheel on this platform.\n\n";
        assert_eq!(
            error_line(pip).unwrap(),
            "ERROR: x-1.0-cp315-abi3-linux_x86_64.whl is not a supported wheel on this platform."
        );
        let uv = "  × No solution found when resolving dependencies:\n  ╰─▶ Because x has no wheels with a matching Python ABI tag\n";
        assert!(error_line(uv).unwrap().starts_with("× No solution found"));
        let traceback = "Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\nModuleNotFoundError: No module named 'x._x'\n";
        assert_eq!(
            error_line(traceback).unwrap(),
            "ModuleNotFoundError: No module named 'x._x'"
        );
        assert_eq!(error_line("a\nlast words\n").unwrap(), "last words");
        let build = "      ValueError: `py_limited_api='cp315'` not supported.\n      [end of output]\n  error: subprocess-exited-with-error\nERROR: Failed building wheel for x\nERROR: Failed to build installable wheels for some pyproject.toml based projects (x)\n";
        assert_eq!(
            error_line(build).unwrap(),
            "ValueError: `py_limited_api='cp315'` not supported."
        );
        assert_eq!(error_line("\n\n"), None);
        assert_eq!(one_line(&"x".repeat(400)).len(), 303);
    }

    #[test]
    fn a_crashed_xdist_worker_names_its_test() {
        let out = "[gw0] node down: Not properly terminated\nworker 'gw0' crashed while running 'tests/test_c.py::test_segv'\n";
        assert_eq!(
            crashed_worker(out).unwrap(),
            "worker 'gw0' crashed while running 'tests/test_c.py::test_segv'"
        );
        assert_eq!(crashed_worker("1 failed"), None);
    }

    #[test]
    fn failing_tests_are_told_apart_by_where_they_fail() {
        let cell = |i: &str, failed: bool| SuiteOutcome {
            interpreter: i.into(),
            tests_failed: failed,
            passed: !failed,
        };
        let (class, reason) = tests_across(&[
            cell("3.15", false),
            cell("3.15t", true),
            cell("3.16", false),
            cell("3.16t", true),
        ]);
        assert_eq!(class, Class::TestsFailedSomeBuilds);
        assert_eq!(
            reason,
            "tests fail on 3.15t, 3.16t only; they pass on 3.15, 3.16"
        );
        let (class, reason) = tests_across(&[cell("3.15", true), cell("3.15t", true)]);
        assert_eq!(class, Class::TestsFailedEverywhere);
        assert_eq!(reason, "tests fail on every interpreter (3.15, 3.15t)");
        // A cell that did not get to its tests (a crash) is on neither side.
        let crashed = SuiteOutcome {
            interpreter: "3.16".into(),
            tests_failed: false,
            passed: false,
        };
        assert_eq!(
            tests_across(&[cell("3.15", true), crashed]).0,
            Class::TestsFailedEverywhere
        );
    }

    #[test]
    fn class_names_are_the_report_schemas() {
        for c in [
            Class::Sync,
            Class::Toolchain,
            Class::BuildRefused,
            Class::WrongTags,
            Class::AuditViolation,
            Class::InstallRefused,
            Class::ImportError,
            Class::Crash,
            Class::TestsFailedSomeBuilds,
            Class::TestsFailedEverywhere,
            Class::Flaky,
            Class::RefusalMismatch,
            Class::Error,
        ] {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.as_str())
            );
        }
    }
}
