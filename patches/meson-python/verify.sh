#!/usr/bin/env bash
# meson-python's tag tests (tests/test_tags.py: the new WHEEL-file test and the abi3t tags),
# on one interpreter built by build-all:
#   bash $STACK/verify.sh PYTHON NAME
# Run by `cargo xtask verify meson-python` from the checkout (the tests import mesonpy from
# it). meson and ninja come pinned by the constraints file.
set -euo pipefail
python=$1
name=$2
venv=$XTASK_WORK/venv-$name
if ! "$venv/bin/python" -c 'import pytest, pytest_mock, pyproject_metadata' 2>/dev/null \
    || [ "$(readlink -f "$venv/bin/python")" != "$(readlink -f "$python")" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$XTASK_CONSTRAINTS" pytest pytest-mock meson ninja pyproject-metadata packaging
fi
PATH=$venv/bin:$PATH exec "$venv/bin/python" -m pytest -p no:cacheprovider -q tests/test_tags.py
