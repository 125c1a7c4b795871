#!/usr/bin/env bash
# CPython's own Stable ABI checks on one interpreter built by build-all from this checkout:
#   bash $STACK/verify.sh PYTHON NAME
# Run by `cargo xtask verify cpython` (and cpython-main) from the checkout, once per
# interpreter of the stack. Two parts, the quick one first:
#   1. Tools/build/stable_abi.py --all: Misc/stable_abi.toml against the generated files,
#      the checkout's headers (with the interpreter's pyconfig.h) and its libpython.
#   2. python -m test test_stable_abi_ctypes test_cext test_cppext, with `-u cpu` (without
#      it the extension builds are skipped and regrtest still says SUCCESS), then
#      verify_results.py fails the run if a test that matters was skipped.
# Scratch files live under $XTASK_WORK/<NAME>, made again on every run.
set -euo pipefail
python=$1
name=$2
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(pwd)
work=$XTASK_WORK/$name

for tool in nm gcc g++; do
    command -v "$tool" >/dev/null || { echo "verify.sh: needs \`$tool\` on PATH" >&2; exit 1; }
done
[ -f "$checkout/Tools/build/stable_abi.py" ] \
    || { echo "verify.sh: run from a CPython checkout (no Tools/build/stable_abi.py in $checkout)" >&2; exit 1; }

# The headers come from the checkout, pyconfig.h and libpython from the interpreter: they
# must be the same CPython, or every difference between two versions looks like a break.
ours=$(sed -n 's/^#define PY_VERSION[[:space:]]*"\([0-9]*\.[0-9]*\).*/\1/p' "$checkout/Include/patchlevel.h")
theirs=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$ours" = "$theirs" ] \
    || { echo "verify.sh: $name is CPython $theirs but the checkout is $ours" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
start=$SECONDS

# stable_abi.py works in a build tree: it runs the preprocessor with `-I. -I./Include` on
# `Include/Python.h` and runs nm on `$(LIBRARY)` and `$(LDLIBRARY)`, all relative to the
# current folder. An install has no build tree, so lay one out from links: the checkout's
# Include/, the installed pyconfig.h (Py_GIL_DISABLED and friends) and libpython.
tree=$work/stable-abi-tree
mkdir -p "$tree"
ln -s "$checkout/Include" "$tree/Include"
"$python" - "$tree" <<'EOF'
import os, sys, sysconfig
tree = sys.argv[1]
var = sysconfig.get_config_var
os.symlink(os.path.join(var("INCLUDEPY"), "pyconfig.h"), os.path.join(tree, "pyconfig.h"))
for name in sorted({var("LIBRARY"), var("LDLIBRARY")}):
    found = [os.path.join(d, name) for d in (var("LIBPL"), var("LIBDIR"))
             if os.path.exists(os.path.join(d, name))]
    if not found:
        sys.exit(f"verify.sh: {name} is not installed in {var('LIBPL')} or {var('LIBDIR')}")
    os.symlink(found[0], os.path.join(tree, name))
EOF
echo "== $name: Tools/build/stable_abi.py --all (Misc/stable_abi.toml against files, headers, libpython)"
(cd "$tree" && "$python" "$checkout/Tools/build/stable_abi.py" --all)
echo "== $name: stable_abi.py passed ($((SECONDS - start)) s)"

echo "== $name: python -m test -u cpu test_stable_abi_ctypes test_cext test_cppext"
junit=$work/junit.xml
status=0
# From $work, so nothing in the checkout shadows the installed `test` package.
(cd "$work" && "$python" -m test -u cpu --junit-xml "$junit" \
    test_stable_abi_ctypes test_cext test_cppext) || status=$?
"$python" "$here/verify_results.py" "$junit"
[ "$status" = 0 ] || { echo "verify.sh: python -m test exited with $status" >&2; exit "$status"; }
echo "== $name: Stable ABI checks passed ($((SECONDS - start)) s)"
