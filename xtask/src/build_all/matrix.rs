//! The report from a run's results: one row per cell of the matrix (the audit, each install,
//! each test suite, each refusal), each classed when it did not pass (`classify`), and the
//! survey (one row per target) on top. Cells an earlier run left for the same keys are
//! reported as theirs, marked cached.

use anyhow::Result;

use super::classify::{self, Class, Failure, SuiteOutcome};
use super::experiment::{self, TargetInfo};
use super::graph::Graph;
use super::recipes::{self, pytest::CellResult, refusal::RefusalResult};
use super::report::{self, Row, SurveyRow};
use super::run::{self, Status, StepResult};
use super::step::StepId;
use super::tools::Tools;
use crate::manifest::Experiment;
use crate::stack::{self, Project};

/// A target whose stack did not sync: it has no steps, and every cell says why.
#[derive(Debug, Clone)]
pub struct SyncFailure {
    pub target: String,
    pub error: String,
}

/// What a row needs of a step's result: passed, failed or not run, and why.
struct Verdict {
    outcome: &'static str,
    cached: bool,
    failure: Option<Failure>,
}

/// The verdict on a step: its own result, or for a blocked step the failure that blocked it
/// (the first failed step found among what it needs).
fn verdict(summary: &run::Summary<StepId>, graph: &Graph<StepId>, id: &StepId) -> Verdict {
    let r = summary.get(id);
    match r.map(|r| &r.status) {
        Some(Status::Built) => Verdict {
            outcome: "passed",
            cached: false,
            failure: None,
        },
        Some(Status::Cached) => Verdict {
            outcome: "passed",
            cached: true,
            failure: None,
        },
        Some(Status::Failed) => {
            let r = r.expect("matched Some");
            Verdict {
                outcome: "failed",
                cached: r.earlier,
                failure: Some(own_failure(r)),
            }
        }
        Some(Status::Blocked) => Verdict {
            outcome: "not-run",
            cached: false,
            // Blocked by no failed step it needs: the run stopped at a toolchain failure.
            failure: Some(blocker(summary, graph, id).unwrap_or_else(|| {
                Failure::new(
                    Class::Toolchain,
                    "not run: the run stopped when a toolchain step failed (`--keep-going` runs what does not need it)",
                )
            })),
        },
        // Not selected, and nothing an earlier run left for its key; but a step it needs may
        // have failed earlier, which is why.
        None => Verdict {
            outcome: "not-run",
            cached: false,
            failure: blocker(summary, graph, id),
        },
    }
}

/// A failed step's failure: the one its recipe gave, else its error's first line.
fn own_failure(r: &StepResult<StepId>) -> Failure {
    r.failure.clone().unwrap_or_else(|| {
        let error = r.error.as_deref().unwrap_or("failed");
        Failure::new(Class::Error, error.lines().next().unwrap_or(error))
    })
}

/// Why a blocked step did not run: the failed step it needs (directly or not), with that
/// step's class; a toolchain step's failure is `toolchain` for every cell it blocks.
fn blocker(summary: &run::Summary<StepId>, graph: &Graph<StepId>, id: &StepId) -> Option<Failure> {
    let mut todo = vec![id.clone()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(n) = todo.pop() {
        for d in graph.spec(&n).map(|s| s.deps.clone()).unwrap_or_default() {
            if !seen.insert(d.clone()) {
                continue;
            }
            match summary.get(&d) {
                Some(r) if r.status == Status::Failed => {
                    let f = own_failure(r);
                    let class = match d {
                        StepId::CPython(_) | StepId::Env(_) | StepId::Maturin => Class::Toolchain,
                        _ => f.class,
                    };
                    return Some(Failure::new(
                        class,
                        format!("not run: `{d}` failed: {}", f.reason),
                    ));
                }
                _ => todo.push(d),
            }
        }
    }
    None
}

impl Verdict {
    fn row(self, target: &str, interpreter: &str, check: &str, installer: &str) -> Row {
        Row {
            target: target.into(),
            interpreter: interpreter.into(),
            check: check.into(),
            installer: installer.into(),
            outcome: self.outcome.into(),
            cached: self.cached,
            class: self.failure.as_ref().map(|f| f.class),
            reason: self.failure.map(|f| f.reason),
            counts: None,
            flaky: vec![],
            wheel: None,
            detail: None,
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn make_report(
    summary: &run::Summary<StepId>,
    graph: &Graph<StepId>,
    e: &Experiment,
    projects: &[Project],
    targets: &[TargetInfo],
    unsynced: &[SyncFailure],
    tools: &Tools,
) -> Result<report::Report> {
    let read = |id: &StepId, file: &str| -> Option<String> {
        summary
            .get(id)
            .filter(|r| !r.out.as_os_str().is_empty())
            .and_then(|r| std::fs::read_to_string(r.out.join(file)).ok())
    };
    let wheel_tag = |id: StepId, sub: &str| {
        summary
            .get(&id)
            .filter(|r| matches!(r.status, Status::Built | Status::Cached))
            .and_then(|r| recipes::wheel_in(&r.out.join(sub)).ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .and_then(|f| super::wheel::parse_name(&f).ok())
            .map(|n| format!("{}-{}-{}", n.python, n.abi, n.platform))
    };
    let mut matrix = Vec::new();
    let mut survey = Vec::new();
    for t in targets {
        let first = matrix.len();
        let wheel_id = StepId::Wheel(t.name.clone());
        let wheel = wheel_tag(wheel_id.clone(), "");
        // The wheel step's Stable ABI audit, on the interpreter that built it; the row
        // stands for the wheel step, so a refused build shows here.
        let audit: Option<recipes::AuditRecord> =
            read(&wheel_id, recipes::AUDIT_JSON).and_then(|t| serde_json::from_str(&t).ok());
        let mut row =
            verdict(summary, graph, &wheel_id).row(&t.name, &e.builder().name, "audit", "-");
        if let Some(a) = audit {
            // Violations the step let through (the report's own check, whatever the step
            // decided).
            if a.verdict == crate::stable_abi::Verdict::Violations && row.outcome == "passed" {
                row.outcome = "failed".into();
                row.class = Some(Class::AuditViolation);
                row.reason = Some(a.summary.clone());
            }
            row.detail = Some(a.summary);
        }
        matrix.push(row);
        for i in e.tested() {
            for &installer in &e.tests.installers {
                let id = StepId::Install(t.name.clone(), i.name.clone(), installer);
                matrix.push(verdict(summary, graph, &id).row(
                    &t.name,
                    &i.name,
                    "install",
                    &installer.to_string(),
                ));
            }
            let id = StepId::Test(t.name.clone(), i.name.clone());
            // What the cell left: counts, and the tests that passed only when re-run.
            let result: Option<CellResult> =
                read(&id, "result.json").and_then(|t| serde_json::from_str(&t).ok());
            let mut row = verdict(summary, graph, &id).row(
                &t.name,
                &i.name,
                "tests",
                &e.tests.suite.to_string(),
            );
            row.counts = result.as_ref().map(|c| c.counts.clone());
            row.flaky = result.map(|c| c.flaky_tests).unwrap_or_default();
            if row.outcome == "passed" && !row.flaky.is_empty() {
                row.class = Some(Class::Flaky);
                row.reason = Some(classify::one_line(&format!(
                    "failed, then passed when re-run on their own: {}",
                    row.flaky.join(" ")
                )));
            }
            matrix.push(row);
        }
        refine_tests(&mut matrix[first..]);
        for r in &mut matrix[first..] {
            r.wheel = wheel.clone();
        }
        survey.push(survey_row(e, projects, t, wheel, &matrix[first..]));
    }
    for u in unsynced {
        let first = matrix.len();
        let failure = Failure::new(
            Class::Sync,
            format!("patches/{}/ does not sync: {}", u.target, u.error),
        );
        let not_run = |check: &str, interpreter: &str, installer: &str| {
            Verdict {
                outcome: "not-run",
                cached: false,
                failure: Some(failure.clone()),
            }
            .row(&u.target, interpreter, check, installer)
        };
        matrix.push(not_run("audit", &e.builder().name, "-"));
        for i in e.tested() {
            for &installer in &e.tests.installers {
                matrix.push(not_run("install", &i.name, &installer.to_string()));
            }
            matrix.push(not_run("tests", &i.name, &e.tests.suite.to_string()));
        }
        let rows: Vec<&Row> = matrix[first..].iter().collect();
        let (audit, results) = report::survey_cells(&rows, &tested_names(e));
        survey.push(SurveyRow {
            target: u.target.clone(),
            backend: "-".into(),
            stacks: vec![],
            wheel: None,
            audit,
            results,
        });
    }
    for refusal in &e.refusals {
        let wheel = wheel_tag(StepId::Abi3Wheel(refusal.target.clone()), "dist");
        for i in e.tested() {
            for &installer in &e.tests.installers {
                let id = StepId::Refusal(refusal.target.clone(), i.name.clone(), installer);
                let found: Option<RefusalResult> =
                    read(&id, "result.json").and_then(|t| serde_json::from_str(&t).ok());
                let check = format!(
                    "refusal (expect {})",
                    if experiment::accepts_abi3(i) {
                        "accept"
                    } else {
                        "refuse"
                    }
                );
                let mut row = verdict(summary, graph, &id).row(
                    &refusal.target,
                    &i.name,
                    &check,
                    &installer.to_string(),
                );
                row.wheel = wheel.clone();
                row.detail = found.map(|f| format!("{}: {}", f.got, f.message));
                matrix.push(row);
            }
        }
    }
    let mut stacks = Vec::new();
    for p in projects {
        stacks.push(report::StackInfo {
            project: p.name.clone(),
            base: match &p.stack.source {
                crate::manifest::Source::Git { commit, .. } => commit.clone(),
                crate::manifest::Source::Pypi {
                    version, sha256, ..
                } => {
                    format!("{version} sha256:{sha256}")
                }
            },
            version: p.stack.version,
            series_digest: stack::digest(p)?,
            patches: p.stack.series.len(),
        });
    }
    Ok(report::Report {
        version: 3,
        date: crate::changelog::today(),
        survey,
        stacks,
        tools: tools.pairs(),
        matrix,
        steps: summary
            .results
            .iter()
            .map(|r| report::StepTime {
                step: r.name.to_string(),
                status: r.status.clone(),
                seconds: r.seconds,
                key: r.key.clone(),
                cores: r.cores,
                started: r.started,
            })
            .collect(),
        wall_seconds: summary.wall.as_secs_f64(),
        step_seconds: summary.step_seconds(),
        core_seconds: summary.core_seconds(),
        cores: summary.cores,
    })
}

/// A target's failed test cells, classed by where else its suite failed: on some builds
/// only, or everywhere. A cell whose tests did not get to fail (a crash, a collection
/// error) keeps its class.
pub fn refine_tests(rows: &mut [Row]) {
    let suites: Vec<SuiteOutcome> = rows
        .iter()
        .filter(|r| r.check == "tests")
        .map(|r| SuiteOutcome {
            interpreter: r.interpreter.clone(),
            tests_failed: r.class == Some(Class::TestsFailedEverywhere),
            passed: r.outcome == "passed",
        })
        .collect();
    if !suites.iter().any(|s| s.tests_failed) {
        return;
    }
    let (class, across) = classify::tests_across(&suites);
    for r in rows
        .iter_mut()
        .filter(|r| r.check == "tests" && r.class == Some(Class::TestsFailedEverywhere))
    {
        r.class = Some(class);
        r.reason = Some(classify::one_line(&format!(
            "{}; {across}",
            r.reason.as_deref().unwrap_or("tests failed")
        )));
    }
}

fn tested_names(e: &Experiment) -> Vec<String> {
    e.tested().iter().map(|i| i.name.clone()).collect()
}

/// The survey row of a target from its rows.
fn survey_row(
    e: &Experiment,
    projects: &[Project],
    t: &TargetInfo,
    wheel: Option<String>,
    rows: &[Row],
) -> SurveyRow {
    let patches = |stack: &str| {
        projects
            .iter()
            .find(|p| p.name == stack)
            .map_or(0, |p| p.stack.series.len())
    };
    let mut stacks = vec![(t.name.clone(), patches(&t.name))];
    if let Some(backend) = e.backend(&t.target.kind) {
        for r in e.backend_roles(backend) {
            if !stacks.iter().any(|(s, _)| s == &r.stack) {
                stacks.push((r.stack.clone(), patches(&r.stack)));
            }
        }
    }
    let rows: Vec<&Row> = rows.iter().collect();
    let (audit, results) = report::survey_cells(&rows, &tested_names(e));
    SurveyRow {
        target: t.name.clone(),
        backend: t.target.kind.clone(),
        stacks,
        wheel,
        audit,
        results,
    }
}
