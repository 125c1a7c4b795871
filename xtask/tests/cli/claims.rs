//! What the docs promise about whole runs, checked end to end (docs/architecture.md, "sync").

use crate::harness::*;

#[test]
fn a_failed_stack_does_not_stop_the_others_and_the_run_fails_at_the_end() {
    let w = World::new("goes-on");
    let base = w.git(&w.upstream, &["rev-parse", "HEAD"]);
    // `a-broken` sorts first, so a run that stopped at the first failure would never reach `demo`.
    w.write_stack("demo", &base, &[]);
    w.write_stack("a-broken", &base, &[]);
    let stack = w.stack_dir("a-broken").join("stack.yaml");
    let missing = format!("file://{}", w.tmp.join("no-such-upstream").display());
    let text = std::fs::read_to_string(&stack)
        .unwrap()
        .replace(&w.upstream_url(), &missing);
    std::fs::write(&stack, text).unwrap();

    let run = w.fails(&["sync"], 1);
    assert!(run.stderr.contains("a-broken: error:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 of 2 stack(s) failed: a-broken"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("demo: synced 0 patches onto"),
        "{}",
        run.stdout
    );
    assert_eq!(w.head("demo"), base);
}
