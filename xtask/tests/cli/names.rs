//! Patch file names that `save` makes from commit subjects: always valid, so a save never
//! stops half-way on a subject.

use crate::harness::*;

#[test]
fn a_subject_starting_with_a_number_is_saved() {
    let (w, _) = world_with_three_patches("digit-subject");
    w.commit_in_checkout("demo", "y2038.txt", "wraps\n", "2038 problem: time_t wraps");
    w.commit_in_checkout("demo", "y2038.txt", "wraps\nfixed\n", "2038");
    w.commit_in_checkout("demo", "y2038.txt", "wraps\nfixed\nagain\n", "2038");
    w.ok(&["save", "demo"]);
    let names: Vec<String> = w.snapshot("demo").into_iter().map(|(n, _)| n).collect();
    for want in [
        "2038_problem-time_t-wraps.patch",
        "2038.patch",
        "2038_2.patch",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    w.ok(&["check"]);
    // A second save of the same commits changes nothing.
    let before = w.snapshot("demo");
    w.ok(&["save", "demo"]);
    assert_eq!(w.snapshot("demo"), before);
}
