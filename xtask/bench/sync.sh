#!/usr/bin/env bash
# Measures `cargo xtask sync` against plain git on real upstreams (issue 2's budget):
#   0. a no-op sync in a fresh clone of this repository, straight after the sync that made its
#      checkouts (no `git status` has settled their indexes; issue 10, item 21);
#   1. a no-op sync of every stack, against `git status` in every checkout;
#   2. applying a 20-patch series (the last 20 commits of CPython's tracked branch, exported)
#      to the CPython checkout, against `git am -3` of the same files.
# Needs: hyperfine, a synced repository (mirrors configured, see README), and a release build.
# Not part of CI: it needs the real upstreams. Usage: bash xtask/bench/sync.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20}
root=$PWD
cargo build --release --quiet -p xtask
xtask=$root/target/release/xtask
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "== fresh clone: no-op sync right after the sync that made the checkouts"
git clone --quiet "$root" "$scratch/fresh"
"$xtask" --root "$scratch/fresh" sync >/dev/null
# The CPython mirror lacks two blobs and holds placeholders that never hash to their ids
# (README); on the real upstream this line does nothing.
git -C "$scratch/fresh/checkouts/cpython" update-index --assume-unchanged -- \
  Misc/svnmap.txt Doc/library/tachyon-live-mode-1.gif 2>/dev/null || true
hyperfine --runs "$runs" --warmup 0 --export-json target/xtask/bench-fresh.json \
  -n "xtask sync (no-op, fresh clone)" "$xtask --root $scratch/fresh sync"
rm -rf "$scratch/fresh"

"$xtask" sync >/dev/null

echo "== no-op sync, all stacks"
checkouts=$(ls -d checkouts/*/ | tr '\n' ' ')
hyperfine --runs "$runs" --warmup 3 --export-json target/xtask/bench-noop.json \
  -n "xtask sync (no-op)" "$xtask sync" \
  -n "git status in every checkout" "for c in $checkouts; do git -C \$c status --porcelain >/dev/null; done" \
  -n "git status (cpython only)" "git -C checkouts/cpython status --porcelain"

echo "== 20-patch series on CPython"
tip=$(sed -n 's/^base: //p' patches/cpython/stack.yaml)
base=$(git -C checkouts/cpython rev-parse "$tip~20")
mkdir -p "$scratch/root/patches/cpython" "$scratch/series"
git -C checkouts/cpython format-patch --quiet --zero-commit --no-signature --full-index \
  -o "$scratch/series" "$base..$tip"
series=""
for f in "$scratch"/series/*.patch; do
  name=$(basename "$f" | sed 's/^[0-9]*-//')
  # Add the trailer the stack format requires, as the last line before `---`.
  awk 'BEGIN{done=0} /^---$/ && !done {print "\nUpstream-Status: Accepted https://github.com/python/cpython"; done=1} {print}' "$f" \
    > "$scratch/root/patches/cpython/$name"
  series="$series  - $name"$'\n'
done
printf 'upstream: https://github.com/python/cpython\ntrack: "3.15"\nbase: %s\nversion: 1\nseries:\n%s' "$base" "$series" \
  > "$scratch/root/patches/cpython/stack.yaml"
mkdir -p "$scratch/root/checkouts"
git clone --quiet --shared --no-checkout checkouts/cpython "$scratch/root/checkouts/cpython"
co=$scratch/root/checkouts/cpython
git -C "$co" checkout --quiet -B patched "$base"
# A fresh checkout has no changes, except on mirrors with placeholder blobs (CPython's local
# mirror lacks two large ones): those files never hash to their ids. Hide them from status.
git -C "$co" diff --name-only -z | xargs -0 -r git -C "$co" update-index --assume-unchanged
"$xtask" --root "$scratch/root" sync cpython
ordered=$(sed -n 's/^  - //p' "$scratch/root/patches/cpython/stack.yaml" | sed "s|^|$scratch/root/patches/cpython/|" | tr '\n' ' ')
hyperfine --runs "$runs" --warmup 2 --export-json target/xtask/bench-apply.json \
  -n "xtask sync (20 patches)" \
  --prepare "git -C $co checkout --quiet --force -B patched $base && rm -f $co/.git/xtask-state.json" \
  "$xtask --root $scratch/root sync cpython" \
  -n "git am -3 (20 patches)" \
  --prepare "git -C $co checkout --quiet --force -B patched $base" \
  "git -C $co -c user.name=b -c user.email=b@b am --quiet -3 $ordered"

echo "== medians"
python3 - <<'PY'
import json
for f in ["target/xtask/bench-fresh.json", "target/xtask/bench-noop.json", "target/xtask/bench-apply.json"]:
    results = json.load(open(f))["results"]
    for r in results:
        print(f"{r['command']:36s} median {r['median'] * 1000:7.1f} ms")
    if len(results) > 1:
        print(f"ratio {results[0]['command']!r} / {results[1]['command']!r}: {results[0]['median'] / results[1]['median']:.2f}")
PY
