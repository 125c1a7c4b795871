//! Table tests of the experiment's graph, without running anything: what each step's key
//! holds, which changes reach which keys, and that interpreters, roles and refusals are data.

use std::collections::BTreeSet;

use super::*;
use crate::build_all::graph::Graph;
use crate::manifest::TestData;
use crate::manifest::experiment::{self, Flavour};
use crate::ops::interpreters::{cpython_step, step_key};

const ROOT: &str = include_str!("../../../experiment.yaml");

fn exp() -> Experiment {
    experiment::parse("experiment.yaml", ROOT).unwrap()
}

fn target(kind: &str) -> Target {
    Target {
        kind: kind.into(),
        import: "demo._demo".into(),
        test_requires: vec!["pytest".into()],
        pytest: vec!["tests".into()],
        test_files: vec!["tests".into(), "pyproject.toml".into()],
        test_data: vec![],
        pytest_workers: None,
        timing_sensitive: vec![],
        audit_waivers: vec![],
        build_env: Default::default(),
        system_requires: vec![],
    }
}

fn trees() -> Trees {
    [
        ("cpython", "cp"),
        ("cpython-main", "cpmain"),
        ("maturin", "mat"),
        ("setuptools", "st"),
        ("cffi", "cffi"),
        ("pyo3-release", "pyo3"),
        ("setuptools-rust", "str"),
        ("meson-python", "mp"),
        ("cython", "cy"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Why experiment.yaml's checks refuse `text`.
fn parse_err(text: &str) -> String {
    experiment::parse("experiment.yaml", text)
        .unwrap_err()
        .to_string()
}

fn tools() -> Tools {
    Tools::new("rustc 1.95.0", "cc 12", "pip==25.3\n").unwrap()
}

fn targets(names: &[(&str, &str)]) -> Vec<TargetInfo> {
    names
        .iter()
        .map(|&(name, kind)| TargetInfo {
            name: name.into(),
            target: target(kind),
            tree: format!("tree-{name}"),
        })
        .collect()
}

fn graph_of(e: &Experiment, trees: &Trees, ts: &[TargetInfo]) -> Graph<StepId> {
    Graph::new(specs(e, trees, &tools(), ts).unwrap()).unwrap()
}

fn graph(trees: &Trees, ts: &[TargetInfo]) -> Graph<StepId> {
    graph_of(&exp(), trees, ts)
}

fn two_targets() -> Vec<TargetInfo> {
    targets(&[("cryptography", "maturin"), ("brotlicffi", "setuptools")])
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

fn names(g: &Graph<StepId>) -> BTreeSet<String> {
    all_of(g, |_| true)
}

#[test]
fn what_each_steps_key_holds() {
    let g = graph(&trees(), &two_targets());
    let crypto = "cryptography".to_string();
    let s = |x: &str| x.to_string();
    let cases: Vec<(StepId, &[&str], Vec<StepId>)> = vec![
        (
            StepId::CPython(s("3.16t")),
            &["tree", "disable-gil", "cc", "recipe"],
            vec![],
        ),
        (StepId::Maturin, &["tree", "rustc", "recipe"], vec![]),
        (
            StepId::Env(s("3.15t")),
            &[
                "constraints",
                "role:setuptools",
                "role:cffi",
                "role:setuptools-rust",
                "role:meson-python",
                "recipe",
            ],
            vec![StepId::CPython(s("3.15t")), StepId::Maturin],
        ),
        (
            StepId::Wheel(crypto.clone()),
            &[
                "tree",
                "backend",
                "rustc",
                "python-tag",
                "audit",
                "role:pyo3",
                "recipe",
            ],
            vec![StepId::Env(s("3.15t"))],
        ),
        (
            StepId::Wheel(s("brotlicffi")),
            &["tree", "backend", "rustc", "python-tag", "audit", "recipe"],
            vec![StepId::Env(s("3.15t"))],
        ),
        (
            StepId::Install(crypto.clone(), s("3.16"), Installer::Pip),
            &["import", "constraints", "recipe"],
            vec![
                StepId::Wheel(crypto.clone()),
                StepId::CPython(s("3.16")),
                StepId::Env(s("3.16")),
            ],
        ),
        (
            StepId::Test(crypto.clone(), s("3.16t")),
            &["tree", "target", "constraints", "installer", "recipe"],
            vec![
                StepId::Wheel(crypto.clone()),
                StepId::CPython(s("3.16t")),
                StepId::Env(s("3.16t")),
            ],
        ),
        (
            StepId::Abi3Wheel(s("brotlicffi")),
            &["tree", "constraints", "requires", "audit", "recipe"],
            vec![StepId::CPython(s("3.15"))],
        ),
        (
            StepId::Refusal(s("brotlicffi"), s("3.16t"), Installer::Uv),
            &["import", "expect", "recipe"],
            vec![
                StepId::Abi3Wheel(s("brotlicffi")),
                StepId::CPython(s("3.16t")),
                StepId::Env(s("3.16t")),
            ],
        ),
    ];
    for (id, labels, deps) in cases {
        let spec = g.spec(&id).unwrap();
        let got: Vec<&str> = spec.inputs.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(got, labels, "{id}");
        assert_eq!(spec.deps, deps, "{id}");
        let leaf = matches!(
            id,
            StepId::Test(..) | StepId::Install(..) | StepId::Refusal(..)
        );
        assert_eq!(spec.leaf, leaf, "{id}");
        // No target of these lists timing-sensitive tests: every cell shares the cores.
        assert!(!spec.exclusive, "{id}");
        assert_eq!(
            spec.contained,
            matches!(id, StepId::Wheel(..) | StepId::Abi3Wheel(..)),
            "{id}"
        );
    }
    let input = |id: StepId, label: &str| {
        g.spec(&id)
            .unwrap()
            .inputs
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
    };
    // The backend as experiment.yaml spells it, not a `Debug` string.
    assert_eq!(
        input(StepId::Wheel(crypto.clone()), "backend").as_deref(),
        Some(r#"{"name":"maturin","roles":["maturin","pyo3"]}"#)
    );
    assert_eq!(
        input(StepId::Wheel(crypto), "python-tag").as_deref(),
        Some("cp315")
    );
    let expect = |i: &str| {
        input(
            StepId::Refusal(s("brotlicffi"), s(i), Installer::Pip),
            "expect",
        )
    };
    assert_eq!(expect("3.15").as_deref(), Some("accept"));
    assert_eq!(expect("3.16").as_deref(), Some("accept"));
    assert_eq!(expect("3.15t").as_deref(), Some("refuse"));
    assert_eq!(expect("3.16t").as_deref(), Some("refuse"));
    // 4 interpreters, maturin, 4 environments; per target a wheel and per interpreter two
    // install cells and one suite; the refusal: its wheel and 4 x 2 cells.
    assert_eq!(g.steps.len(), 4 + 1 + 4 + 2 * (1 + 4 * 3) + (1 + 8));
}

#[test]
fn the_cpython_keys_are_the_ones_verify_finds() {
    let e = exp();
    let g = graph(&trees(), &two_targets());
    for i in &e.interpreters {
        let tree = &trees()[&i.stack];
        let inputs = cpython_inputs(tree, "cc 12", i);
        assert_eq!(
            g.key(&StepId::CPython(i.name.clone())).unwrap(),
            step_key(&cpython_step(&i.name), &inputs, &[])
        );
    }
}

#[test]
fn a_fifth_interpreter_is_a_data_change() {
    let mut e = exp();
    e.interpreters.push(Interpreter {
        name: "3.15d".into(),
        stack: "cpython".into(),
        version: "3.15".into(),
        flavour: Flavour::Default,
        configure: vec!["--with-pydebug".into()],
    });
    experiment::parse("experiment.yaml", &serde_yaml::to_string(&e).unwrap()).unwrap();
    let base = graph(&trees(), &two_targets());
    let more = graph_of(&e, &trees(), &two_targets());
    let added: BTreeSet<String> = names(&more).difference(&names(&base)).cloned().collect();
    let want: BTreeSet<String> = [
        "cpython/3.15d",
        "env/3.15d",
        "cryptography/install/3.15d/pip",
        "cryptography/install/3.15d/uv",
        "cryptography/test/3.15d",
        "brotlicffi/install/3.15d/pip",
        "brotlicffi/install/3.15d/uv",
        "brotlicffi/test/3.15d",
        "brotlicffi/refusal/3.15d/pip",
        "brotlicffi/refusal/3.15d/uv",
    ]
    .map(String::from)
    .into();
    assert_eq!(added, want);
    // Nothing that was there changes its key.
    assert!(changed(&base, &more).is_empty());
    // The debug build shares the 3.15 tree, and its configure flag keeps its key apart.
    let key = |g: &Graph<StepId>, i: &str| g.key(&StepId::CPython(i.into())).unwrap().to_string();
    let input = more.spec(&StepId::CPython("3.15d".into())).unwrap();
    assert!(
        input
            .inputs
            .contains(&("configure".into(), "--with-pydebug".into()))
    );
    assert_ne!(key(&more, "3.15d"), key(&more, "3.15"));
    // Testing on fewer interpreters drops their cells, not their builds.
    e.tests.on = Some(vec!["3.15t".into()]);
    let fewer = graph_of(&e, &trees(), &two_targets());
    assert!(names(&fewer).contains("cpython/3.15d"));
    assert!(!names(&fewer).contains("cryptography/test/3.15"));
    assert!(names(&fewer).contains("cryptography/test/3.15t"));
}

#[test]
fn the_roles_decide_which_stack_reaches_which_key() {
    let mut e = exp();
    // The role names the stack; another stack in the same role changes the maturin
    // targets' wheels, and the key holds that stack's tree.
    let pyo3 = e.toolchain.iter_mut().find(|r| r.role == "pyo3").unwrap();
    pyo3.stack = "pyo3".into();
    let mut t = trees();
    t.insert("pyo3".into(), "pyo3-main".into());
    let g = graph_of(&e, &t, &two_targets());
    let spec = g.spec(&StepId::Wheel("cryptography".into())).unwrap();
    assert!(
        spec.inputs
            .contains(&("role:pyo3".into(), "pyo3-main".into()))
    );
    // A toolchain without the roles a backend uses is refused where it is written.
    let text = ROOT.replace(
        "  - role: maturin\n    stack: maturin\n    kind: maturin\n",
        "",
    );
    let err = parse_err(&text);
    assert!(
        err.contains("backend `maturin` uses the role `maturin`, which `toolchain` does not have"),
        "{err}"
    );
    // Without the maturin backend, a setuptools target still builds, and no maturin step.
    let mut e = exp();
    e.toolchain.retain(|r| r.kind != RoleKind::Maturin);
    e.backends.retain(|b| b.name != "maturin");
    let ts = targets(&[("brotlicffi", "setuptools")]);
    let g = graph_of(&e, &t, &ts);
    assert!(!names(&g).contains("maturin"));
    // A target naming a backend experiment.yaml lacks says which it has.
    let err = specs(&e, &t, &tools(), &two_targets())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`cryptography` (patches/cryptography/stack.yaml) names the build backend `kind: maturin`, which experiment.yaml's `backends` does not have (setuptools, scikit-build-core, meson-python, setuptools-cython, setuptools-rust)"),
        "{err}"
    );
}

/// A backend is data: one written in YAML alone, with its own build tools from the index
/// and the PyO3 role, gives its targets a wheel step whose key holds what it builds with.
#[test]
fn a_backend_is_yaml_alone() {
    let text = ROOT.replace(
        "backends:\n",
        "backends:\n  - name: rust-demo\n    roles: [setuptools, pyo3]\n    requires: [setuptools-rust, semantic_version]\n  - name: cmake-demo\n    roles: [cffi]\n    requires: [scikit-build-core, cmake, ninja]\n",
    );
    let e = experiment::parse("experiment.yaml", &text).unwrap();
    let ts = targets(&[
        ("bcrypt", "rust-demo"),
        ("argon2", "cmake-demo"),
        ("brotlicffi", "setuptools"),
    ]);
    let g = graph_of(&e, &trees(), &ts);
    let bcrypt = g.spec(&StepId::Wheel("bcrypt".into())).unwrap();
    assert!(
        bcrypt.inputs.contains(&("role:pyo3".into(), "pyo3".into())),
        "{:?}",
        bcrypt.inputs
    );
    assert!(
        bcrypt
            .inputs
            .iter()
            .any(|(l, v)| l == "constraints" && !v.is_empty())
    );
    let argon2 = g.spec(&StepId::Wheel("argon2".into())).unwrap();
    assert!(!argon2.inputs.iter().any(|(l, _)| l.starts_with("role:")));
    assert!(
        argon2
            .inputs
            .iter()
            .any(|(l, v)| l == "backend" && v.contains("\"cmake\""))
    );
    for t in ["bcrypt", "argon2"] {
        for i in ["3.15", "3.15t", "3.16", "3.16t"] {
            assert!(
                g.spec(&StepId::Test(t.into(), i.into())).is_some(),
                "{t} on {i}"
            );
        }
    }
    // The constraints file's pins reach only the wheels whose backends use them.
    let other = Tools::new("rustc 1.95.0", "cc 12", "pip==25.3\ncmake==4.1.2\n").unwrap();
    let g2 = Graph::new(specs(&e, &trees(), &other, &ts).unwrap()).unwrap();
    let key = |g: &Graph<StepId>, t: &str| g.spec(&StepId::Wheel(t.into())).unwrap().inputs.clone();
    assert_ne!(key(&g, "argon2"), key(&g2, "argon2"));
    // Bad backends are refused with what is wrong.
    for (bad, says) in [
        (
            "  - name: x\n    requires: [\"cmake>=4\"]\n",
            "`requires` entry `cmake>=4` is not a project name",
        ),
        (
            "  - name: x\n    roles: [meson]\n",
            "backend `x` uses the role `meson`",
        ),
        (
            "  - name: setuptools\n",
            "two backends are named `setuptools`",
        ),
        (
            "  - name: x\n    diagnoses: [{when: \"\", say: s}]\n",
            "empty `when`",
        ),
    ] {
        let text = ROOT.replace("backends:\n", &format!("backends:\n{bad}"));
        let err = parse_err(&text);
        assert!(err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn a_python_role_added_in_data_reaches_every_environment() {
    let mut e = exp();
    e.toolchain.insert(
        2,
        crate::manifest::experiment::Role {
            role: "scikit-build-core".into(),
            stack: "scikit-build-core".into(),
            kind: RoleKind::Python,
            runtime: false,
            requires: vec![],
        },
    );
    let mut t = trees();
    t.insert("scikit-build-core".into(), "sbc".into());
    let base = graph(&trees(), &two_targets());
    let g = graph_of(&e, &t, &two_targets());
    let not_toolchain = |id: &StepId| {
        !matches!(
            id,
            StepId::CPython(_) | StepId::Maturin | StepId::Abi3Wheel(_)
        )
    };
    assert_eq!(changed(&base, &g), all_of(&base, not_toolchain));
}

/// A `build-python` role (Cython) reaches the wheels of the backends that name it, and their
/// cells, and nothing else: no environment is built again for it.
#[test]
fn a_build_python_role_reaches_only_its_backends_wheels() {
    let with = exp();
    let mut without = exp();
    without.toolchain.retain(|r| r.role != "cython");
    for b in &mut without.backends {
        b.roles.retain(|r| r != "cython");
    }
    let ts = targets(&[
        ("brotlicffi", "setuptools"),
        ("cwcwidth", "setuptools-cython"),
    ]);
    let a = graph_of(&without, &trees(), &ts);
    let b = graph_of(&with, &trees(), &ts);
    let cwcwidth = |id: &StepId| id.to_string().starts_with("cwcwidth/");
    assert_eq!(changed(&a, &b), all_of(&b, cwcwidth));
    let wheel = b.spec(&StepId::Wheel("cwcwidth".into())).unwrap();
    assert!(
        wheel.inputs.contains(&("role:cython".into(), "cy".into())),
        "{:?}",
        wheel.inputs
    );
    // A new Cython tree rebuilds that wheel and its cells only.
    let mut t = trees();
    t.insert("cython".into(), "cy2".into());
    assert_eq!(changed(&b, &graph_of(&with, &t, &ts)), all_of(&b, cwcwidth));
    // A package cannot be a build tool of its own build.
    let own = targets(&[("cython", "setuptools-cython")]);
    let err = specs(&with, &trees(), &tools(), &own)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a package cannot be a build tool of its own build"),
        "{err}"
    );
    // `runtime` is for roles the test venvs get, which a build-python role never is.
    let text = ROOT.replace(
        "    kind: build-python\n",
        "    kind: build-python\n    runtime: true\n",
    );
    let err = parse_err(&text);
    assert!(
        err.contains("`runtime` is for `kind: python` roles"),
        "{err}"
    );
}

#[test]
fn test_only_fields_leave_the_wheel_key_alone() {
    let base = graph(&trees(), &two_targets());
    let tests_of_crypto = all_of(
        &base,
        |id| matches!(id, StepId::Test(t, _) if t == "cryptography"),
    );
    type Edit = fn(&mut Target);
    let edits: Vec<(&str, Edit)> = vec![
        ("test_files", |t| t.test_files = vec!["tests".into()]),
        ("pytest", |t| t.pytest.push("-x".into())),
        ("test_requires", |t| {
            t.test_requires.push("hypothesis".into())
        }),
        ("pytest_workers", |t| t.pytest_workers = Some(1)),
        // The preflight reads it; the test cells' keys hold it with the whole target.
        ("system_requires", |t| {
            t.system_requires.push(crate::manifest::SystemRequire {
                pkg_config: "libsodium".into(),
                debian: "libsodium-dev".into(),
                brew: "libsodium".into(),
            })
        }),
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
            changed(&base, &graph(&trees(), &ts)),
            tests_of_crypto,
            "{field}"
        );
    }
    // What the wheel is built from does change it.
    let mut ts = two_targets();
    ts[0].target.kind = "setuptools".into();
    assert!(changed(&base, &graph(&trees(), &ts)).contains("cryptography/wheel"));
    // So does what its audit accepts: a waiver audits the wheel again.
    let mut ts = two_targets();
    ts[0].target.audit_waivers.push(crate::stable_abi::Waiver {
        rule: "refcount".into(),
        symbol: None,
        reason: "checked by hand".into(),
    });
    let got = changed(&base, &graph(&trees(), &ts));
    assert!(got.contains("cryptography/wheel"), "{got:?}");
    assert!(!got.contains("brotlicffi/wheel"), "{got:?}");
    // And the variables the backend builds with.
    let mut ts = two_targets();
    ts[0]
        .target
        .build_env
        .insert("SODIUM_INSTALL".into(), "system".into());
    let got = changed(&base, &graph(&trees(), &ts));
    assert!(got.contains("cryptography/wheel"), "{got:?}");
    assert!(!got.contains("brotlicffi/wheel"), "{got:?}");
}

#[test]
fn which_keys_a_changed_stack_reaches() {
    let base = graph(&trees(), &two_targets());
    let of_interp = |id: &StepId, names: &[&str]| match id {
        StepId::CPython(i) | StepId::Env(i) => names.contains(&i.as_str()),
        StepId::Install(_, i, _) | StepId::Test(_, i) | StepId::Refusal(_, i, _) => {
            names.contains(&i.as_str())
        }
        _ => false,
    };
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        // A setuptools patch: the environments, every wheel and every cell; not CPython,
        // not maturin, not the abi3-only wheel (built with the released setuptools).
        (
            "setuptools",
            all_of(&base, |id| {
                !matches!(
                    id,
                    StepId::CPython(_) | StepId::Maturin | StepId::Abi3Wheel(_)
                )
            }),
        ),
        // CPython main: its two interpreters and what runs on them; the wheels are built on
        // 3.15t, so they keep their keys.
        (
            "cpython-main",
            all_of(&base, |id| of_interp(id, &["3.16", "3.16t"])),
        ),
        (
            "pyo3-release",
            all_of(&base, |id| match id {
                StepId::Wheel(t) | StepId::Test(t, _) | StepId::Install(t, ..) => {
                    t == "cryptography"
                }
                _ => false,
            }),
        ),
    ];
    for (stack, want) in cases {
        let mut t = trees();
        t.insert(stack.into(), "changed".into());
        let got = changed(&base, &graph(&t, &two_targets()));
        assert_eq!(got, want, "{stack}");
    }
}

#[test]
fn targets_named_like_step_kinds_get_their_own_recipes_revision() {
    let ts = targets(&[
        ("env", "setuptools"),
        ("test", "setuptools"),
        ("cpython", "setuptools"),
    ]);
    let mut e = exp();
    e.refusals.clear();
    let g = graph_of(&e, &trees(), &ts);
    let recipe = |name: &str| {
        let s = g
            .steps
            .iter()
            .find(|s| s.name.to_string() == name)
            .unwrap_or_else(|| panic!("no step {name}"));
        s.inputs
            .iter()
            .find(|(l, _)| l == "recipe")
            .map(|(_, v)| v.clone())
    };
    let wheel = recipe_revision(&StepId::Wheel(String::new())).to_string();
    let test = recipe_revision(&StepId::Test(String::new(), String::new())).to_string();
    for name in ["env/wheel", "test/wheel", "cpython/wheel"] {
        assert_eq!(recipe(name).as_deref(), Some(wheel.as_str()), "{name}");
    }
    for name in ["env/test/3.15", "test/test/3.16t"] {
        assert_eq!(recipe(name), Some(test.clone()), "{name}");
    }
    assert_eq!(recipe("env/3.15"), Some("3".into()));
    assert_eq!(
        recipe("cpython/3.15"),
        Some(crate::ops::interpreters::CPYTHON_RECIPE.to_string())
    );
    // Each has an action, dispatched on the id rather than on its name.
    let env = Arc::new(Env {
        root: "/r".into(),
        work: "/r/w".into(),
        constraints: "/r/c.txt".into(),
    });
    let specs: Vec<_> = g.steps.clone();
    assert_eq!(actions(&env, &specs, &e, &ts).unwrap().len(), specs.len());
}

#[test]
fn a_refusal_needs_a_setuptools_target() {
    let e = exp();
    let ts = targets(&[("cryptography", "maturin")]);
    let err = specs(&e, &trees(), &tools(), &ts).unwrap_err().to_string();
    assert!(
        err.contains("refusal names `brotlicffi`, which has no `build.target`"),
        "{err}"
    );
    let mut e = exp();
    e.refusals[0].target = "cryptography".into();
    let err = specs(&e, &trees(), &tools(), &ts).unwrap_err().to_string();
    assert!(err.contains("must be `kind: setuptools`"), "{err}");
}

/// Every backend of the repository's experiment.yaml has a real target among the stacks, and
/// the graph for all of them comes from the YAML files alone: a wheel step per target, built
/// on the builder's environment, tested on every interpreter.
#[test]
fn the_repositorys_targets_cover_every_backend() {
    let e = exp();
    let patches = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../patches");
    let mut ts = Vec::new();
    for entry in std::fs::read_dir(&patches).unwrap() {
        let dir = entry.unwrap().path();
        let file = dir.join("stack.yaml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let stack = crate::manifest::parse(&file.display().to_string(), &text).unwrap();
        if let Some(target) = stack.build.and_then(|b| b.target) {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            ts.push(TargetInfo {
                tree: format!("tree-{name}"),
                name,
                target,
            });
        }
    }
    ts.sort_by(|a, b| a.name.cmp(&b.name));
    for b in &e.backends {
        assert!(
            ts.iter().any(|t| t.target.kind == b.name),
            "no target uses the backend `{}`",
            b.name
        );
    }
    let g = graph_of(&e, &trees(), &ts);
    for target in &ts {
        let wheel = g.spec(&StepId::Wheel(target.name.clone())).unwrap();
        assert_eq!(wheel.deps, vec![StepId::Env(e.builder().name.clone())]);
        for i in e.tested() {
            assert!(
                g.spec(&StepId::Test(target.name.clone(), i.name.clone()))
                    .is_some(),
                "{} on {}",
                target.name,
                i.name
            );
        }
    }
}
