//! `verify`: a stack's own checks on its patched checkout, with the stack's variables.

use crate::harness::*;

/// Stack `demo` whose patch adds `needs.txt`, with a check script in the stack's folder
/// that fails when a file named there is missing from the checkout.
fn verify_world(name: &str, verify: &str) -> World {
    let (w, _) = world_with_three_patches(name);
    w.write(
        &w.stack_dir("demo"),
        "check.sh",
        "for f in \"$@\"; do test -f \"$f\" || { echo \"missing $f\"; exit 1; }; done\necho \"work=$XTASK_WORK\"\n",
    );
    let path = w.stack_dir("demo").join("stack.yaml");
    std::fs::write(&path, w.read_stack("demo") + verify).unwrap();
    w
}

#[test]
fn runs_the_commands_in_the_patched_checkout() {
    let w = verify_world(
        "verify-ok",
        "verify:\n  - sh $STACK/check.sh NEWS docs/guide.txt\n  - test -d $WORK\n",
    );
    let run = w.ok(&["verify", "demo"]);
    assert!(
        run.stdout
            .contains("demo: passed sh $STACK/check.sh NEWS docs/guide.txt"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("demo: passed test -d $WORK"),
        "{}",
        run.stdout
    );
    // $WORK is exported too, and is the stack's own folder under target/.
    let work = w.root.join("target/xtask/verify/demo");
    assert!(
        run.stdout
            .contains(&format!("work={}", work.canonicalize().unwrap().display())),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failing_command_fails_the_run_and_shows_its_output() {
    let w = verify_world(
        "verify-fail",
        "verify:\n  - sh $STACK/check.sh NEWS absent.txt\n  - test -d $WORK\n",
    );
    let run = w.fails(&["verify", "demo"], 1);
    assert!(run.stdout.contains("missing absent.txt"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("demo: FAILED sh $STACK/check.sh NEWS absent.txt"),
        "{}",
        run.stdout
    );
    // Stops at the first failure.
    assert!(!run.stdout.contains("test -d"), "{}", run.stdout);
    assert!(
        run.stderr.contains("verification failed for demo"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_variables_and_unavailable_interpreters_are_explained() {
    let w = verify_world("verify-vars", "verify:\n  - echo $HOME\n");
    let run = w.fails(&["verify", "demo"], 1);
    assert!(
        run.stderr
            .contains("unknown variable `$HOME` in `echo $HOME`"),
        "{}",
        run.stderr
    );

    // The old names say what replaced them, and why no interpreter is available.
    let w = verify_world("verify-python", "verify:\n  - $PYTHON_DEFAULT -c pass\n");
    let run = w.fails(&["verify", "demo"], 1);
    assert!(
        run.stderr.contains(
            "`$PYTHON_DEFAULT` was replaced by one variable per interpreter of experiment.yaml"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("there is no experiment.yaml"),
        "{}",
        run.stderr
    );
    for command in ["$PYTHON_3_15T -c pass", "$PYTHON -c pass"] {
        let w = verify_world("verify-python", &format!("verify:\n  - {command}\n"));
        let run = w.fails(&["verify", "demo"], 1);
        assert!(
            run.stderr.contains("there is no experiment.yaml"),
            "{}",
            run.stderr
        );
    }
}
