#!/usr/bin/env bash
# setuptools' own tests for this stack's changes, on one interpreter built by build-all:
#   bash $STACK/verify.sh PYTHON NAME
# Run by `cargo xtask verify setuptools` from the checkout (the tests import setuptools
# from it). The venv lives under $XTASK_WORK and is made again when its interpreter moved.
set -euo pipefail
python=$1
name=$2
venv=$XTASK_WORK/venv-$name
if ! "$venv/bin/python" -c 'import pytest' 2>/dev/null \
    || [ "$(readlink -f "$venv/bin/python")" != "$(readlink -f "$python")" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$XTASK_STACK/test-requirements.txt"
# Not the checkout's own `setuptools` dist-info: the tests import the source tree.
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q \
    setuptools/tests/test_build_ext.py setuptools/tests/test_bdist_wheel.py
