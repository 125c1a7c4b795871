//! Table tests of the experiment's graph, without running anything: what each step's key
//! holds and which changes reach which keys.

use std::collections::BTreeSet;

use super::*;
use crate::build_all::graph::Graph;
use crate::manifest::TestData;
use crate::ops::interpreters::{cpython_step, step_key};

fn target(kind: RecipeKind) -> Target {
    Target {
        kind,
        import: "demo._demo".into(),
        test_requires: vec!["pytest".into()],
        pytest: vec!["tests".into()],
        test_files: vec!["tests".into(), "pyproject.toml".into()],
        test_data: vec![],
        pytest_workers: None,
    }
}

fn sources() -> Sources {
    Sources {
        cpython: "cp".into(),
        maturin: "mat".into(),
        setuptools: "st".into(),
        cffi: "cffi".into(),
        pyo3: Some("pyo3".into()),
    }
}

fn tools() -> Tools {
    Tools::new("rustc 1.95.0", "cc 12", "pip==25.3\n").unwrap()
}

fn targets(names: &[(&str, RecipeKind)]) -> Vec<TargetInfo> {
    names
        .iter()
        .map(|&(name, kind)| TargetInfo {
            name: name.into(),
            target: target(kind),
            tree: format!("tree-{name}"),
        })
        .collect()
}

fn graph(src: &Sources, ts: &[TargetInfo]) -> Graph<StepId> {
    Graph::new(specs(src, &tools(), ts).unwrap()).unwrap()
}

fn two_targets() -> Vec<TargetInfo> {
    targets(&[
        ("cryptography", RecipeKind::Maturin),
        ("brotlicffi", RecipeKind::Setuptools),
    ])
}

/// The steps whose keys differ between two graphs of the same steps.
fn changed(a: &Graph<StepId>, b: &Graph<StepId>) -> BTreeSet<String> {
    a.keys
        .iter()
        .filter(|(id, key)| b.keys.get(*id) != Some(*key))
        .map(|(id, _)| id.to_string())
        .collect()
}

fn all_of(g: &Graph<StepId>, pred: impl Fn(&StepId) -> bool) -> BTreeSet<String> {
    g.steps
        .iter()
        .filter(|s| pred(&s.name))
        .map(|s| s.name.to_string())
        .collect()
}

#[test]
fn what_each_steps_key_holds() {
    use Flavour::*;
    let g = graph(&sources(), &two_targets());
    let crypto = "cryptography".to_string();
    let cases: Vec<(StepId, &[&str], Vec<StepId>)> = vec![
        (
            StepId::CPython(Default),
            &["tree", "disable-gil", "cc", "recipe"],
            vec![],
        ),
        (StepId::Maturin, &["tree", "rustc", "recipe"], vec![]),
        (
            StepId::Env(Freethreaded),
            &["constraints", "setuptools", "cffi", "recipe"],
            vec![StepId::CPython(Freethreaded), StepId::Maturin],
        ),
        (
            StepId::Wheel(crypto.clone()),
            &["tree", "kind", "rustc", "pyo3", "recipe"],
            vec![StepId::Env(Freethreaded)],
        ),
        (
            StepId::Wheel("brotlicffi".into()),
            &["tree", "kind", "rustc", "recipe"],
            vec![StepId::Env(Freethreaded)],
        ),
        (
            StepId::Test(crypto.clone(), Default, Installer::Uv),
            &["tree", "target", "constraints", "recipe"],
            vec![
                StepId::Wheel(crypto.clone()),
                StepId::CPython(Default),
                StepId::Env(Default),
            ],
        ),
    ];
    for (id, labels, deps) in cases {
        let s = g.spec(&id).unwrap();
        let got: Vec<&str> = s.inputs.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(got, labels, "{id}");
        assert_eq!(s.deps, deps, "{id}");
        assert_eq!(s.leaf, matches!(id, StepId::Test(..)), "{id}");
    }
    let kind = |id: StepId| {
        g.spec(&id)
            .unwrap()
            .inputs
            .iter()
            .find(|(l, _)| l == "kind")
            .map(|(_, v)| v.clone())
    };
    // The manifest's own spelling, not a `Debug` string.
    assert_eq!(kind(StepId::Wheel(crypto)).as_deref(), Some("maturin"));
    assert_eq!(g.steps.len(), 2 + 1 + 2 + 2 * (1 + 4));
}

#[test]
fn the_cpython_keys_are_the_ones_verify_finds() {
    let g = graph(&sources(), &two_targets());
    for f in Flavour::ALL {
        let inputs = cpython_inputs("cp", "cc 12", f);
        assert_eq!(
            g.key(&StepId::CPython(f)).unwrap(),
            step_key(&cpython_step(f), &inputs, &[])
        );
    }
}

#[test]
fn test_only_fields_leave_the_wheel_key_alone() {
    let base = graph(&sources(), &two_targets());
    let tests_of_crypto = all_of(
        &base,
        |id| matches!(id, StepId::Test(t, ..) if t == "cryptography"),
    );
    type Edit = fn(&mut Target);
    let edits: Vec<(&str, Edit)> = vec![
        ("test_files", |t| t.test_files = vec!["tests".into()]),
        ("pytest", |t| t.pytest.push("-x".into())),
        ("test_requires", |t| {
            t.test_requires.push("hypothesis".into())
        }),
        ("pytest_workers", |t| t.pytest_workers = Some(1)),
        ("test_data", |t| {
            t.test_data.push(TestData {
                sdist: "brotli==1.2.1".into(),
                sha256: "ab".repeat(32),
                path: "tests/testdata".into(),
                to: "tests/testdata".into(),
            })
        }),
    ];
    for (field, edit) in edits {
        let mut ts = two_targets();
        edit(&mut ts[0].target);
        assert_eq!(
            changed(&base, &graph(&sources(), &ts)),
            tests_of_crypto,
            "{field}"
        );
    }
    // What the wheel is built from does change it.
    let mut ts = two_targets();
    ts[0].target.kind = RecipeKind::Setuptools;
    assert!(changed(&base, &graph(&sources(), &ts)).contains("cryptography/wheel"));
}

#[test]
fn which_keys_a_changed_stack_reaches() {
    let base = graph(&sources(), &two_targets());
    let not_toolchain = |id: &StepId| !matches!(id, StepId::CPython(_) | StepId::Maturin);
    type Edit = fn(&mut Sources);
    let cases: Vec<(&str, Edit, BTreeSet<String>)> = vec![
        // A setuptools patch: the environments, every wheel and every test; not CPython,
        // not maturin.
        (
            "setuptools",
            |s| s.setuptools = "st2".into(),
            all_of(&base, not_toolchain),
        ),
        (
            "cffi",
            |s| s.cffi = "cffi2".into(),
            all_of(&base, not_toolchain),
        ),
        (
            "cpython",
            |s| s.cpython = "cp2".into(),
            all_of(&base, |id| *id != StepId::Maturin),
        ),
        (
            "pyo3",
            |s| s.pyo3 = Some("pyo3-2".into()),
            all_of(&base, |id| match id {
                StepId::Wheel(t) | StepId::Test(t, ..) => t == "cryptography",
                _ => false,
            }),
        ),
    ];
    for (stack, edit, want) in cases {
        let mut src = sources();
        edit(&mut src);
        let got = changed(&base, &graph(&src, &two_targets()));
        assert_eq!(got, want, "{stack}");
    }
}

#[test]
fn targets_named_like_step_kinds_get_their_own_recipes_revision() {
    let ts = targets(&[
        ("env", RecipeKind::Setuptools),
        ("test", RecipeKind::Setuptools),
        ("cpython", RecipeKind::Setuptools),
    ]);
    let g = graph(&sources(), &ts);
    let recipe = |name: &str| {
        let id: StepId = name.parse().unwrap();
        g.spec(&id)
            .unwrap()
            .inputs
            .iter()
            .find(|(l, _)| l == "recipe")
            .map(|(_, v)| v.clone())
    };
    let wheel = recipe_revision(&StepId::Wheel(String::new())).to_string();
    let test = recipe_revision(&StepId::Test(
        String::new(),
        Flavour::Default,
        Installer::Pip,
    ));
    for name in ["env/wheel", "test/wheel", "cpython/wheel"] {
        assert_eq!(recipe(name).as_deref(), Some(wheel.as_str()), "{name}");
    }
    for name in ["env/test/default/pip", "test/test/freethreaded/uv"] {
        assert_eq!(recipe(name), Some(test.to_string()), "{name}");
    }
    assert_eq!(recipe("env/default"), Some("2".into()));
    assert_eq!(
        recipe("cpython/default"),
        Some(crate::ops::interpreters::CPYTHON_RECIPE.to_string())
    );
    // Each has an action, dispatched on the id rather than on its name.
    let env = Arc::new(Env {
        root: "/r".into(),
        work: "/r/w".into(),
        constraints: "/r/c.txt".into(),
    });
    let specs: Vec<_> = g.steps.clone();
    assert_eq!(actions(&env, &specs, &ts).unwrap().len(), specs.len());
}

#[test]
fn a_maturin_target_without_pyo3_is_an_error() {
    let mut src = sources();
    src.pyo3 = None;
    let err = specs(&src, &tools(), &two_targets())
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs the `pyo3` stack"), "{err}");
    // A setuptools target alone does not need it.
    let ts = targets(&[("brotlicffi", RecipeKind::Setuptools)]);
    assert!(specs(&src, &tools(), &ts).is_ok());
}
