#!/usr/bin/env bash
# Cython's own tests for the abi3t mode (tests/run/abi3t_*.pyx), compiled for abi3t
# (`runtests.py --abi3t`: Py_TARGET_ABI3T, Limited API 3.15) and as ordinary modules,
# on one interpreter built by build-all:
#   bash $STACK/verify.sh PYTHON NAME
# Run by `cargo xtask verify cython` from the checkout. The unpatched base fails the abi3t
# runs: its modules do not compile (static PyModuleDef, no PyModExport_).
set -euo pipefail
python=$1
name=$2
venv=$XTASK_WORK/venv-$name
if ! "$venv/bin/python" -c 'import setuptools' 2>/dev/null \
    || [ "$(readlink -f "$venv/bin/python")" != "$(readlink -f "$python")" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$XTASK_CONSTRAINTS" setuptools==84.2.1
fi
work=$XTASK_WORK/tmp-$name
rm -rf "$work"
# --no-pyregr/--no-unit/--no-doctest: only the file-based tests selected by the pattern.
common=(--no-cpp --no-pyregr --no-unit --no-doctest --work-dir "$work" -v)
# Fail on the "NO TESTS RAN" of a pattern that matches nothing, not only on failures.
run() {
    local log
    log=$(mktemp)
    if ! nice -n 19 "$venv/bin/python" runtests.py "${common[@]}" "$@" abi3t_ 2>&1 | tee "$log" | grep -E '^(Ran|OK|FAILED|ERROR|FAIL)'; then
        :
    fi
    local rc=1
    if grep -q '^OK' "$log" && grep -qE '^Ran [1-9][0-9]* tests' "$log"; then rc=0; fi
    [ $rc -eq 0 ] || tail -n 60 "$log"
    ran=$(grep -E '^Ran [0-9]+ tests' "$log" | tail -n 1 | cut -d' ' -f2)
    rm -f "$log"
    return $rc
}
echo "== $name: abi3t (--abi3t)"
run --abi3t
abi3t=$ran
echo "== $name: regular build"
run
# Last, because verify shows a passing command's last lines: both builds' counts.
echo "$name: $abi3t tests passed in abi3t mode (--abi3t), $ran as regular modules"
rm -rf "$work"
