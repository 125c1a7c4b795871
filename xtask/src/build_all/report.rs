//! The experiment's report: the matrix target x interpreter x check (install with each
//! installer, the test suite, the refusals) with test counts (flaky tests apart), the wheel tag, what was built from what, and where the time went; as
//! `report.json` (schema in `docs/build-all.md`) and `report.md`.

use serde::{Deserialize, Serialize};

use super::classify::Class;

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

impl Counts {
    /// Both runs' counts together.
    pub fn add(&self, other: &Counts) -> Counts {
        Counts {
            passed: self.passed + other.passed,
            failed: self.failed + other.failed,
            skipped: self.skipped + other.skipped,
            flaky: self.flaky + other.flaky,
        }
    }
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub target: String,
    pub interpreter: String,
    /// `audit` (the wheel step's Stable ABI audit), `install` (installed and imported),
    /// `tests` (the target's test suite), or `refusal (expect refuse|accept)` (the abi3-only
    /// wheel).
    pub check: String,
    pub installer: String,
    /// `passed`, `failed`, or `not-run` (a step it needs failed, or its key changed since
    /// the run that left its result).
    pub outcome: String,
    /// The result is an earlier run's, for the same key (cached, or a failure it recorded).
    #[serde(default)]
    pub cached: bool,
    /// Why it did not pass (none when it passed cleanly): a stable name.
    #[serde(default)]
    pub class: Option<Class>,
    /// One line saying where it stopped and why.
    #[serde(default)]
    pub reason: Option<String>,
    pub counts: Option<Counts>,
    /// Node ids of the tests that failed, then passed when re-run on their own.
    pub flaky: Vec<String>,
    pub wheel: Option<String>,
    /// What the installer said, for refusals; the audit's summary.
    pub detail: Option<String>,
}

impl Row {
    /// The outcome as the tables show it: `passed (cached)`, `failed: crash`.
    pub fn result(&self) -> String {
        let mut s = self.outcome.clone();
        if let Some(c) = self.class {
            s.push_str(&format!(": {}", c.as_str()));
        }
        if self.cached {
            s.push_str(" (cached)");
        }
        s
    }

    /// Same target, interpreter, check and installer.
    fn same_cell(&self, other: &Row) -> bool {
        (
            &self.target,
            &self.interpreter,
            &self.check,
            &self.installer,
        ) == (
            &other.target,
            &other.interpreter,
            &other.check,
            &other.installer,
        )
    }

    /// How much a row says about its cell: run now, then an earlier result, then nothing.
    fn weight(&self) -> u8 {
        match (self.outcome.as_str(), self.cached) {
            // A not-run cell that says why (its wheel failed) says more than a bare one.
            ("not-run", _) if self.class.is_some() => 1,
            ("not-run", _) => 0,
            (_, true) => 2,
            _ => 3,
        }
    }

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
            self.result(),
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackInfo {
    pub project: String,
    pub base: String,
    pub version: u64,
    pub series_digest: String,
    pub patches: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// One target's answer, for the survey at the top of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyRow {
    pub target: String,
    pub backend: String,
    /// The stacks its wheel needed and how many patches each carries: its own first, then
    /// its backend's toolchain roles.
    pub stacks: Vec<(String, usize)>,
    /// The wheel's tag (`cp315-abi3.abi3t-linux_x86_64`), once built.
    pub wheel: Option<String>,
    /// The audit's cell: `passed`, or the failure's class.
    pub audit: String,
    /// Per tested interpreter: `passed (N tests)`, or the first failure's class.
    pub results: Vec<(String, String)>,
}

impl SurveyRow {
    /// Its audit and every interpreter's cells passed.
    pub fn passes(&self) -> bool {
        self.audit == "passed" && self.results.iter().all(|(_, r)| r.starts_with("passed"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub date: String,
    /// One row per target: the whole answer on one screen.
    #[serde(default)]
    pub survey: Vec<SurveyRow>,
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
    /// The survey as a markdown table, under its heading: what the GitHub job summary shows.
    pub fn survey_markdown(&self) -> String {
        let interpreters: Vec<&str> = self
            .survey
            .first()
            .map(|r| r.results.iter().map(|(i, _)| i.as_str()).collect())
            .unwrap_or_default();
        let mut s =
            String::from("## survey\n\n| target | backend | stacks (patches) | wheel | audit |");
        for i in &interpreters {
            s.push_str(&format!(" {i} |"));
        }
        s.push_str("\n| --- | --- | --- | --- | --- |");
        s.push_str(&" --- |".repeat(interpreters.len()));
        s.push('\n');
        for r in &self.survey {
            let stacks: Vec<String> = r.stacks.iter().map(|(n, c)| format!("{n} ({c})")).collect();
            let mut cells = vec![
                r.target.clone(),
                r.backend.clone(),
                stacks.join(", "),
                r.wheel.clone().unwrap_or_else(|| "-".into()),
                r.audit.clone(),
            ];
            cells.extend(r.results.iter().map(|(_, v)| v.clone()));
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        let failing = self.survey.iter().filter(|r| !r.passes()).count();
        s.push_str(&format!(
            "\n{} target{}: {} pass{} on every interpreter, {failing} do{} not.\n",
            self.survey.len(),
            if self.survey.len() == 1 { "" } else { "s" },
            self.survey.len() - failing,
            if self.survey.len() - failing == 1 {
                "es"
            } else {
                ""
            },
            if failing == 1 { "es" } else { "" },
        ));
        s
    }

    /// The cells that did not pass cleanly, grouped by class (earliest stage first).
    pub fn not_passing_markdown(&self) -> String {
        let mut by_class: std::collections::BTreeMap<Class, Vec<&Row>> = Default::default();
        for r in &self.matrix {
            if let Some(c) = r.class {
                by_class.entry(c).or_default().push(r);
            }
        }
        if by_class.is_empty() {
            return String::new();
        }
        let mut s = String::from("## not passing, by class\n");
        for (class, rows) in by_class {
            s.push_str(&format!(
                "\n### {} ({}): {}\n\n",
                class.as_str(),
                rows.len(),
                class.heading()
            ));
            // One line per target: its cells, and the reason of its first (the earliest
            // stage: what blocked the rest).
            let mut targets: Vec<&str> = Vec::new();
            for r in &rows {
                if !targets.contains(&r.target.as_str()) {
                    targets.push(&r.target);
                }
            }
            for t in targets {
                let cells: Vec<&&Row> = rows.iter().filter(|r| r.target == t).collect();
                let named: Vec<String> = cells
                    .iter()
                    .map(|r| {
                        let installer = if r.installer == "-" {
                            String::new()
                        } else {
                            format!(" ({})", r.installer)
                        };
                        format!("{} on {}{installer}", r.check, r.interpreter)
                    })
                    .collect();
                let shown = if named.len() <= 4 {
                    named.join(", ")
                } else {
                    format!("{} cells", named.len())
                };
                let cached = if cells.iter().all(|r| r.cached) {
                    ", cached"
                } else {
                    ""
                };
                s.push_str(&format!(
                    "- {t} ({shown}{cached}): {}\n",
                    cells[0].reason.as_deref().unwrap_or("-")
                ));
            }
        }
        s
    }

    pub fn markdown(&self) -> String {
        let mut s = format!("# build-all report ({})\n\n", self.date);
        s.push_str(&self.survey_markdown());
        let not_passing = self.not_passing_markdown();
        if !not_passing.is_empty() {
            s.push('\n');
            s.push_str(&not_passing);
        }
        s.push_str("\n## matrix\n\n");
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

    /// One report from several runs' (one job per target): for each cell the row that says
    /// most (run by its own job, then an earlier result, then not-run; the first of equals),
    /// the survey row of each target from the report whose job ran it, the stacks and steps
    /// of all. Reports of another schema version, or of runs with other tool versions, are
    /// refused: their cells are not comparable.
    pub fn merge(reports: Vec<(String, Report)>) -> anyhow::Result<Report> {
        let mut iter = reports.into_iter();
        let Some((first_name, mut merged)) = iter.next() else {
            anyhow::bail!("no reports to merge");
        };
        for (name, r) in iter {
            if r.version != merged.version {
                anyhow::bail!(
                    "`{name}` is a version {} report, `{first_name}` version {}",
                    r.version,
                    merged.version
                );
            }
            if r.tools != merged.tools {
                let differ: Vec<String> = r
                    .tools
                    .iter()
                    .filter(|t| !merged.tools.contains(t))
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                anyhow::bail!(
                    "`{name}` was made with other tools than `{first_name}` ({}): its cells are not comparable",
                    differ.join(", ")
                );
            }
            for row in r.matrix {
                match merged.matrix.iter_mut().find(|m| m.same_cell(&row)) {
                    Some(m) if row.weight() > m.weight() => *m = row,
                    Some(_) => {}
                    None => merged.matrix.push(row),
                }
            }
            for st in r.stacks {
                match merged.stacks.iter().find(|m| m.project == st.project) {
                    Some(m) if m != &st => anyhow::bail!(
                        "`{name}` was made from another `{}` stack than `{first_name}` (series digest {} against {}): its cells are not comparable",
                        st.project,
                        &st.series_digest.chars().take(16).collect::<String>(),
                        &m.series_digest.chars().take(16).collect::<String>()
                    ),
                    Some(_) => {}
                    None => merged.stacks.push(st),
                }
            }
            for s in r.survey {
                if !merged.survey.iter().any(|m| m.target == s.target) {
                    merged.survey.push(s);
                }
            }
            for t in r.steps {
                if !merged
                    .steps
                    .iter()
                    .any(|m| m.step == t.step && m.key == t.key)
                {
                    merged.steps.push(t);
                }
            }
            merged.wall_seconds = merged.wall_seconds.max(r.wall_seconds);
            merged.step_seconds += r.step_seconds;
            merged.core_seconds += r.core_seconds;
            merged.date = merged.date.max(r.date);
        }
        merged.survey = merged
            .survey
            .iter()
            .map(|row| merged.resurvey(row))
            .collect();
        Ok(merged)
    }

    /// A survey row again from the matrix (after a merge brought in the target's cells).
    fn resurvey(&self, row: &SurveyRow) -> SurveyRow {
        let rows: Vec<&Row> = self
            .matrix
            .iter()
            .filter(|r| r.target == row.target)
            .collect();
        let mut out = row.clone();
        if out.wheel.is_none() {
            out.wheel = rows
                .iter()
                .find(|r| r.check == "audit")
                .and_then(|a| a.wheel.clone());
        }
        let interpreters: Vec<String> = row.results.iter().map(|(i, _)| i.clone()).collect();
        (out.audit, out.results) = survey_cells(&rows, &interpreters);
        out
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

/// A target's survey cells from its rows: the audit's, and each interpreter's from its
/// install and test rows.
pub fn survey_cells(rows: &[&Row], interpreters: &[String]) -> (String, Vec<(String, String)>) {
    let audit: Vec<&Row> = rows
        .iter()
        .filter(|r| r.check == "audit")
        .copied()
        .collect();
    let results = interpreters
        .iter()
        .map(|i| {
            let cells: Vec<&Row> = rows
                .iter()
                .filter(|r| &r.interpreter == i && (r.check == "install" || r.check == "tests"))
                .copied()
                .collect();
            (i.clone(), survey_cell(&cells))
        })
        .collect();
    (survey_cell(&audit), results)
}

/// A survey cell from a target's rows on one interpreter: `passed (N tests)`, `passed, N
/// flaky`, or the first failure's class (earliest stage first) and what it hit.
pub fn survey_cell(rows: &[&Row]) -> String {
    if rows.is_empty() {
        return "-".into();
    }
    let worst = rows
        .iter()
        .filter(|r| r.class.is_some_and(|c| c != Class::Flaky))
        .min_by_key(|r| r.class);
    if let Some(r) = worst {
        let class = r.class.map(Class::as_str).unwrap_or_default();
        return match (&r.counts, r.installer.as_str()) {
            (Some(c), _) if c.failed > 0 => format!("{class} ({} failed)", c.failed),
            (_, "pip" | "uv") if r.check != "tests" && r.outcome == "failed" => {
                format!("{class} ({})", r.installer)
            }
            _ => class.to_string(),
        };
    }
    if rows.iter().any(|r| r.outcome == "not-run") {
        return "not-run".into();
    }
    let tests: u64 = rows
        .iter()
        .filter_map(|r| r.counts.as_ref())
        .map(|c| c.passed)
        .sum();
    let flaky: u64 = rows
        .iter()
        .filter_map(|r| r.counts.as_ref())
        .map(|c| c.flaky)
        .sum();
    let mut s = if rows.iter().any(|r| r.counts.is_some()) {
        format!("passed ({tests} tests)")
    } else {
        "passed".to_string()
    };
    if flaky > 0 {
        s.push_str(&format!(", {flaky} flaky"));
    }
    s
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
            cached: false,
            class: None,
            reason: None,
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
            survey: vec![],
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
