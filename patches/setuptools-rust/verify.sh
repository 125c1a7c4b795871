#!/usr/bin/env bash
# setuptools-rust's own tests (its nox `test` session: `pytest setuptools_rust tests`, the
# doctests included), on one interpreter built by build-all:
#   bash $STACK/verify.sh PYTHON NAME
# Run by `cargo xtask verify setuptools-rust` from the checkout. tests/test_abi3t.py and the
# doctests of `_binding_features` cover this stack; the unpatched base fails them.
set -euo pipefail
python=$1
name=$2
venv=$XTASK_WORK/venv-$name
if ! "$venv/bin/python" -c 'import pytest, semantic_version, setuptools' 2>/dev/null \
    || [ "$(readlink -f "$venv/bin/python")" != "$(readlink -f "$python")" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$XTASK_CONSTRAINTS" pytest semantic_version setuptools==84.2.1
fi
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q setuptools_rust tests
