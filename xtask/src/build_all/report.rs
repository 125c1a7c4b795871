//! The experiment's report: the matrix target x interpreter x installer with test counts and
//! the wheel tag, what was built from what, and where the time went; as `report.json`
//! (schema in `docs/build-all.md`) and `report.md`.

use serde::{Deserialize, Serialize};

/// Test counts from a JUnit XML file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
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
    pub installer: String,
    /// `passed`, `failed`, or `not-run` (a step it needs failed).
    pub outcome: String,
    pub counts: Option<Counts>,
    pub wheel: Option<String>,
}

impl Row {
    /// The row's values in matrix order, for the markdown and the terminal tables.
    fn cells(&self) -> [String; 8] {
        let c = self.counts.clone().unwrap_or_default();
        [
            self.target.clone(),
            self.interpreter.clone(),
            self.installer.clone(),
            self.outcome.clone(),
            c.passed.to_string(),
            c.failed.to_string(),
            c.skipped.to_string(),
            self.wheel.clone().unwrap_or_else(|| "-".into()),
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
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut s = format!("# build-all report ({})\n\n## matrix\n\n", self.date);
        s.push_str(
            "| target | interpreter | installer | result | passed | failed | skipped | wheel |\n",
        );
        s.push_str("| --- | --- | --- | --- | ---: | ---: | ---: | --- |\n");
        for r in &self.matrix {
            s.push_str(&format!("| {} |\n", r.cells().join(" | ")));
        }
        s.push_str("\n## stacks\n\n| stack | base | version | patches | series digest |\n| --- | --- | ---: | ---: | --- |\n");
        for st in &self.stacks {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                st.project,
                st.base,
                st.version,
                st.patches,
                &st.series_digest[..16.min(st.series_digest.len())]
            ));
        }
        s.push_str("\n## tools\n\n");
        for (k, v) in &self.tools {
            s.push_str(&format!("- {k}: {v}\n"));
        }
        s.push_str(&format!(
            "\n## time\n\nwall {:.1} s; steps' own time {:.1} s\n\n| step | status | seconds |\n| --- | --- | ---: |\n",
            self.wall_seconds, self.step_seconds
        ));
        for t in &self.steps {
            s.push_str(&format!(
                "| {} | {:?} | {:.1} |\n",
                t.step, t.status, t.seconds
            ));
        }
        s
    }

    /// The matrix for a terminal.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<14} {:<13} {:<9} {:<8} {:>7} {:>7} {:>7}  wheel\n",
            "target", "interpreter", "installer", "result", "passed", "failed", "skipped"
        );
        for r in &self.matrix {
            let [t, i, n, o, p, f, k, w] = r.cells();
            s.push_str(&format!(
                "{t:<14} {i:<13} {n:<9} {o:<8} {p:>7} {f:>7} {k:>7}  {w}\n"
            ));
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
                skipped: 30
            }
        );
        assert_eq!(junit_counts(""), Counts::default());
    }
}
