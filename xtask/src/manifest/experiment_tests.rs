//! Table tests of `experiment.yaml`: the repository's own file, and what the checks refuse.

use super::*;

const ROOT: &str = include_str!("../../../experiment.yaml");

fn with(edit: impl Fn(&mut Experiment)) -> Result<(), String> {
    let mut e = parse("experiment.yaml", ROOT).unwrap();
    edit(&mut e);
    check(&e)
}

#[test]
fn the_repositorys_experiment_parses() {
    let e = parse("experiment.yaml", ROOT).unwrap();
    let names: Vec<&str> = e.interpreters.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["3.15", "3.15t", "3.16", "3.16t"]);
    assert_eq!(e.builder().name, "3.15t");
    assert_eq!(e.builder().python_tag(), "cp315");
    assert_eq!(e.interpreters[1].variable(), "PYTHON_3_15T");
    assert_eq!(e.role(RoleKind::CargoPatch).unwrap().stack, "pyo3-release");
    let python: Vec<&str> = e.roles(RoleKind::Python).map(|r| r.role.as_str()).collect();
    assert_eq!(
        python,
        ["setuptools", "cffi", "setuptools-rust", "meson-python"]
    );
    assert!(e.stacks().contains("cpython-main"));
    assert_eq!(e.tested().len(), 4);
}

#[test]
fn what_the_checks_refuse() {
    type Edit = Box<dyn Fn(&mut Experiment)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|e| e.interpreters.clear()),
            "`interpreters` is empty",
        ),
        (
            Box::new(|e| e.interpreters[1].name = "3.15".into()),
            "two interpreters are named `3.15`",
        ),
        (
            Box::new(|e| e.interpreters[3].name = "3-15t".into()),
            "both give the variable `$PYTHON_3_15T`",
        ),
        (
            Box::new(|e| e.interpreters[0].name = "a/b".into()),
            "must be letters",
        ),
        (
            // Folders named `Setuptools` and `setuptools` are one on macOS and Windows.
            Box::new(|e| e.toolchain[1].role = "Setuptools".into()),
            "two toolchain entries play the role `Setuptools`",
        ),
        (
            // A role's name is a folder of the environment's and the wheel step's output.
            Box::new(|e| e.toolchain[0].role = "../../escape".into()),
            "toolchain role name `../../escape` must be letters",
        ),
        (
            Box::new(|e| e.interpreters[0].name = "wheel".into()),
            "is a step kind",
        ),
        (
            Box::new(|e| e.interpreters[0].version = "3".into()),
            "not `major.minor`",
        ),
        (
            Box::new(|e| e.interpreters[0].configure = vec!["--prefix=/usr".into()]),
            "`--prefix` is set by the recipe",
        ),
        (
            Box::new(|e| e.interpreters[0].configure = vec!["-O3".into()]),
            "does not begin with `--`",
        ),
        (
            Box::new(|e| e.wheels.build_on = "3.14t".into()),
            "does not have (3.15,",
        ),
        (
            Box::new(|e| e.wheels.build_on = "3.15".into()),
            "is GIL-enabled",
        ),
        (
            Box::new(|e| e.tests.installers = vec![Installer::Pip]),
            "`tests.suite: uv` is not one of",
        ),
        (
            Box::new(|e| e.tests.on = Some(vec!["x".into()])),
            "`tests.on` names",
        ),
        (
            Box::new(|e| e.toolchain[1].role = "setuptools".into()),
            "two toolchain entries play the role `setuptools`",
        ),
        (
            Box::new(|e| e.toolchain[5].kind = RoleKind::Maturin),
            "two toolchain roles have `kind: maturin`",
        ),
        (
            Box::new(|e| e.toolchain[4].runtime = true),
            "`runtime` is for `kind: python`",
        ),
        (
            // An experiment.yaml from before backends were data says what to add.
            Box::new(|e| e.backends.clear()),
            "`backends` is missing or empty",
        ),
        (
            Box::new(|e| e.backends[1].roles.push("meson".into())),
            "backend `maturin` uses the role `meson`, which `toolchain` does not have",
        ),
        (
            Box::new(|e| e.refusals[0].build_on = "3.16t".into()),
            "is free-threaded",
        ),
        (Box::new(|e| e.version = 2), "reads version 1"),
        (
            Box::new(|e| e.refusals[0].requires = vec!["setuptools".into()]),
            "is not pinned as `name==version`",
        ),
    ];
    for (edit, want) in cases {
        let err = with(edit).unwrap_err();
        assert!(err.contains(want), "{err} (wanted {want})");
    }
}

#[test]
fn parse_errors_carry_the_file_and_line() {
    let err = parse("experiment.yaml", "version: 1\ninterpreters: 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("experiment.yaml:2:"), "{err}");
    let bad = ROOT.replace("flavour: default", "flavour: nogil");
    let err = parse("experiment.yaml", &bad).unwrap_err().to_string();
    assert!(
        err.contains("experiment.yaml:") && err.contains("nogil"),
        "{err}"
    );
}

#[test]
fn old_variables_name_the_new_ones() {
    let e = parse("experiment.yaml", ROOT).unwrap();
    let msg = renamed_variable(&e, "PYTHON_FREETHREADED").unwrap();
    assert!(msg.contains("$PYTHON_3_15T, $PYTHON_3_16T"), "{msg}");
    assert!(renamed_variable(&e, "PYTHON_3_15").is_none());
}
