#!/usr/bin/env bash
# The e2e workflow's cache key and target list, from build-all's own plan (it syncs first):
#   bash .github/scripts/plan.sh <runner os>
# key: the toolchain steps' names and build-all keys (cpython/*, env/*, maturin), hashed, so
# the cache is reused exactly when build-all would reuse those steps. targets: every
# `<target>/wheel` step, as a JSON list for the job matrix.
set -euo pipefail
os=$1
plan=$(cargo xtask build-all --plan)
toolchain=$(printf '%s\n' "$plan" | awk '$1 ~ /^(cpython\/|env\/|maturin$)/ {print $1, $2}')
if [ -z "$toolchain" ]; then
    echo "build-all --plan listed no toolchain step" >&2
    exit 1
fi
digest=$(printf '%s\n' "$toolchain" | sha256sum | cut -c1-16)
targets=$(printf '%s\n' "$plan" | awk '$1 ~ /\/wheel$/ && $1 !~ /\/abi3-wheel$/ {sub(/\/wheel$/, "", $1); print $1}' \
    | jq -R -s -c 'split("\n") | map(select(length > 0))')
echo "key=build-all-toolchain-$os-$digest" >> "$GITHUB_OUTPUT"
echo "targets=$targets" >> "$GITHUB_OUTPUT"
printf 'toolchain steps:\n%s\ntargets: %s\n' "$toolchain" "$targets"
