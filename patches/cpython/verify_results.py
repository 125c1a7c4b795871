"""Count what `python -m test --junit-xml FILE` ran, and fail unless the Stable ABI tests ran.

    python verify_results.py JUNIT_XML

Run by verify.sh with the interpreter under test, which says whether it is free-threaded.
regrtest exits 0 when a test is skipped (a missing `-u cpu`, no `_testcapi`, no venv), so
its exit status alone does not show that anything was checked.
"""

import sys
import sysconfig
import xml.etree.ElementTree as ET

# Each must have run and passed. On a free-threaded build the plain limited-API builds are
# skipped by CPython itself (`requires_gil_enabled`): there, Py_LIMITED_API means abi3t,
# which `test_build_abi3t` covers on both flavours.
REQUIRED = [
    "test.test_stable_abi_ctypes.TestStableABIAvailability.test_available_symbols",
    "test.test_stable_abi_ctypes.TestStableABIAvailability.test_feature_macros",
    "test.test_cext.TestPublicCAPI.test_build",
    "test.test_cext.TestPublicCAPI.test_build_abi3t",
    "test.test_cext.TestInteralCAPI.test_build",
    "test.test_cppext.TestPublicCAPI.test_build",
    "test.test_cppext.TestInteralCAPI.test_build",
]
REQUIRED_WITH_GIL = [
    "test.test_cext.TestPublicCAPI.test_build_limited",
    "test.test_cext.TestPublicCAPI.test_build_limited_c11",
    "test.test_cppext.TestPublicCAPI.test_build_limited",
    "test.test_cppext.TestPublicCAPI.test_build_limited_cpp03",
]
# Skips that say nothing about this platform's Stable ABI; any other skip fails the run.
ALLOWED_SKIPS = ["Windows specific test", "need Windows"]
ALLOWED_SKIPS_FREETHREADED = ["Free Threading"]


def outcomes(path):
    """Map each test id to (outcome, detail): passed, skipped, failed or error."""
    result = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        sys.exit(f"verify_results.py: no test results in {path}: {err}")
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        for kind in ("error", "failure", "skipped"):
            child = case.find(kind)
            if child is not None:
                detail = child.text or child.get("message") or ""
                result[name] = ("failed" if kind == "failure" else kind, detail.strip())
                break
        else:
            result[name] = ("passed", "")
    return result


def main():
    (path,) = sys.argv[1:]
    freethreaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    results = outcomes(path)
    allowed = ALLOWED_SKIPS + (ALLOWED_SKIPS_FREETHREADED if freethreaded else [])
    required = REQUIRED + ([] if freethreaded else REQUIRED_WITH_GIL)

    modules = sorted({name.rsplit(".", 2)[0] for name in results})
    for module in modules:
        mine = [o for n, (o, _) in results.items() if n.startswith(module + ".")]
        print(
            f"{module}: {mine.count('passed')} passed, {mine.count('skipped')} skipped, "
            f"{mine.count('failed') + mine.count('error')} failed"
        )
    total = [o for o, _ in results.values()]
    print(
        f"total: {len(total)} tests, {total.count('passed')} passed, "
        f"{total.count('skipped')} skipped, {total.count('failed') + total.count('error')} failed"
    )

    problems = {}
    for name, (outcome, detail) in sorted(results.items()):
        if outcome == "skipped":
            if any(a in detail for a in allowed):
                print(f"  skipped as expected: {name} ({detail})")
            else:
                problems[name] = f"was skipped: {detail}"
        elif outcome != "passed":
            problems[name] = outcome
    for name in required:
        if name not in results:
            problems[name] = "did not run"
        elif results[name][0] != "passed":
            problems.setdefault(name, results[name][0])
    if problems:
        print("the Stable ABI tests did not all run and pass:", file=sys.stderr)
        for name, problem in problems.items():
            print(f"  {name} {problem}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
