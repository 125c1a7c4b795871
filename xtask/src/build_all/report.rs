//! The experiment's report: the matrix target x interpreter x check (install with each
//! installer, the test suite, the refusals) with test counts (flaky tests apart), the wheel tag, what was built from what, and where the time went; as
//! `report.json` (schema in `docs/build-all.md`) and `report.md`.

use serde::{Deserialize, Serialize};

/// Test counts from a JUnit XML file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Failed, then passed when re-run on their own; not in `failed`.
    #[serde(default)]
    pub flaky: u64,
}

/// Sums the `<testsuite>` attributes of a JUnit XML report (pytest writes one suite).
pub fn junit_counts(xml: &str) -> Counts {
    let attr = |tag: &str, name: &str| -> u64 {
        let key = format!(" {name}=\"");
        tag.find(&key)
            .and_then(|i| tag[i + key.len()..].split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut c = Counts::default();
    for part in xml.split("<testsuite").skip(1) {
        if part.starts_with('s') {
            continue; // <testsuites>
        }
        let tag = part.split('>').next().unwrap_or("");
        let (tests, failures, errors, skipped) = (
            attr(tag, "tests"),
            attr(tag, "failures"),
            attr(tag, "errors"),
            attr(tag, "skipped"),
        );
        c.failed += failures + errors;
        c.skipped += skipped;
        c.passed += tests.saturating_sub(failures + errors + skipped);
    }
    c
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub target: String,
    pub interpreter: String,
    /// `install` (installed and imported), `tests` (the target's test suite), or
    /// `refusal (expect refuse|accept)` (the abi3-only wheel).
    pub check: String,
    pub installer: String,
    /// `passed`, `failed`, or `not-run` (a step it needs failed).
    pub outcome: String,
    pub counts: Option<Counts>,
    /// Node ids of the tests that failed, then passed when re-run on their own.
    pub flaky: Vec<String>,
    pub wheel: Option<String>,
    /// What the installer said, for refusals.
    pub detail: Option<String>,
}

impl Row {
    /// The row's values in matrix order, for the markdown and the terminal tables.
    fn cells(&self) -> [String; 10] {
        let (p, f, y, k) = match &self.counts {
            Some(c) => (
                c.passed.to_string(),
                c.failed.to_string(),
                c.flaky.to_string(),
                c.skipped.to_string(),
            ),
            None => Default::default(),
        };
        let wheel = self.wheel.clone().unwrap_or_else(|| "-".into());
        [
            self.target.clone(),
            self.interpreter.clone(),
            self.check.clone(),
            self.installer.clone(),
            self.outcome.clone(),
            p,
            f,
            y,
            k,
            match &self.detail {
                Some(d) => format!("{wheel}: {d}"),
                None => wheel,
            },
        ]
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StackInfo {
    pub project: String,
    pub base: String,
    pub version: u64,
    pub series_digest: String,
    pub patches: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepTime {
    pub step: String,
    pub status: super::run::Status,
    pub seconds: f64,
    /// The cores it was granted (0: it did not run).
    pub cores: usize,
    /// Seconds from the start of the steps to its start (0: it did not run).
    pub started: f64,
    pub key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub date: String,
    pub stacks: Vec<StackInfo>,
    pub tools: Vec<(String, String)>,
    pub matrix: Vec<Row>,
    pub steps: Vec<StepTime>,
    pub wall_seconds: f64,
    /// Sum of the own times of the steps that ran (cached steps count zero).
    pub step_seconds: f64,
    /// Own time times granted cores, summed over the steps that ran; divided by `cores`, the
    /// wall time a run with no idle core would take.
    pub core_seconds: f64,
    /// The core budget (`--jobs`).
    pub cores: usize,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut s = format!("# build-all report ({})\n\n## matrix\n\n", self.date);
        s.push_str(
            "| target | interpreter | check | installer | result | passed | failed | flaky | skipped | wheel |\n",
        );
        s.push_str("| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |\n");
        for r in &self.matrix {
            let cells = r.cells().map(|c| c.replace('|', "\\|"));
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        let flaky = self.flaky_lines();
        if !flaky.is_empty() {
            s.push_str("\n## flaky tests\n\n");
            for line in flaky {
                s.push_str(&format!("- {line}\n"));
            }
        }
        s.push_str("\n## stacks\n\n| stack | base | version | patches | series digest |\n| --- | --- | ---: | ---: | --- |\n");
        for st in &self.stacks {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                st.project,
                st.base,
                st.version,
                st.patches,
                st.series_digest.chars().take(16).collect::<String>()
            ));
        }
        s.push_str("\n## tools\n\n");
        for (k, v) in &self.tools {
            s.push_str(&format!("- {k}: {v}\n"));
        }
        s.push_str(&format!(
            "\n## time\n\nwall {:.1} s; steps' own time {:.1} s; core-seconds {:.1} / {} cores = {:.1} s\n\n| step | status | seconds | cores |\n| --- | --- | ---: | ---: |\n",
            self.wall_seconds,
            self.step_seconds,
            self.core_seconds,
            self.cores,
            self.core_seconds / self.cores.max(1) as f64
        ));
        for t in &self.steps {
            s.push_str(&format!(
                "| {} | {:?} | {:.1} | {} |\n",
                t.step, t.status, t.seconds, t.cores
            ));
        }
        s
    }

    /// One line per flaky test, naming it and its cell.
    pub fn flaky_lines(&self) -> Vec<String> {
        self.matrix
            .iter()
            .flat_map(|r| {
                r.flaky.iter().map(move |t| {
                    format!(
                        "`{t}` ({} on {}) failed, then passed when re-run on its own",
                        r.target, r.interpreter
                    )
                })
            })
            .collect()
    }

    /// The matrix for a terminal, and the flaky tests under it.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<14} {:<7} {:<24} {:<4} {:<8} {:>7} {:>7} {:>6} {:>7}  wheel\n",
            "target", "python", "check", "by", "result", "passed", "failed", "flaky", "skipped"
        );
        for r in &self.matrix {
            let [t, i, c, n, o, p, f, y, k, w] = r.cells();
            s.push_str(&format!(
                "{t:<14} {i:<7} {c:<24} {n:<4} {o:<8} {p:>7} {f:>7} {y:>6} {k:>7}  {w}\n"
            ));
        }
        for line in self.flaky_lines() {
            s.push_str(&format!("flaky: {line}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pytest_junit() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="2" skipped="30" tests="3000" time="20.1" timestamp="x" hostname="h"><testcase/></testsuite></testsuites>"#;
        assert_eq!(
            junit_counts(xml),
            Counts {
                passed: 2967,
                failed: 3,
                skipped: 30,
                flaky: 0,
            }
        );
        assert_eq!(junit_counts(""), Counts::default());
    }

    #[test]
    fn flaky_tests_have_a_column_and_a_line() {
        let row = |interpreter: &str, flaky: &[&str]| Row {
            target: "brotlicffi".into(),
            interpreter: interpreter.into(),
            check: "tests".into(),
            installer: "uv".into(),
            outcome: "passed".into(),
            counts: Some(Counts {
                passed: 157,
                failed: 0,
                skipped: 0,
                flaky: flaky.len() as u64,
            }),
            flaky: flaky.iter().map(|s| s.to_string()).collect(),
            wheel: None,
            detail: None,
        };
        let report = Report {
            version: 1,
            date: "2026-01-01".into(),
            stacks: vec![],
            tools: vec![],
            matrix: vec![
                row("3.15", &[]),
                row("3.15t", &["tests/t.py::test_concurrency"]),
            ],
            steps: vec![],
            wall_seconds: 0.0,
            step_seconds: 0.0,
            core_seconds: 0.0,
            cores: 2,
        };
        let md = report.markdown();
        assert!(md.contains("| passed | failed | flaky | skipped |"), "{md}");
        assert!(
            md.contains("| brotlicffi | 3.15t | tests | uv | passed | 157 | 0 | 1 | 0 | - |"),
            "{md}"
        );
        assert!(
            md.contains("## flaky tests\n\n- `tests/t.py::test_concurrency` (brotlicffi on 3.15t) failed, then passed when re-run on its own\n"),
            "{md}"
        );
        assert!(
            report
                .table()
                .contains("flaky: `tests/t.py::test_concurrency`")
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["matrix"][1]["flaky"][0],
            "tests/t.py::test_concurrency"
        );
        assert_eq!(json["matrix"][1]["counts"]["flaky"], 1);
    }
}
