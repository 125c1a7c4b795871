#!/usr/bin/env bash
# Measures the no-op path right after a sync wrote a checkout (issue 10, item 21): a
# synthetic upstream of a few thousand files in a temp dir, no network, release binary.
#   1. `xtask status` and `xtask sync` straight after the sync that wrote the checkout;
#   2. the same after the index is settled (what `git::Checkout::settle_index` does:
#      `git update-index -q --refresh --force-write-index` once the clock has left the second
#      of the newest file).
# Usage: bash xtask/bench/settle.sh [files] [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
files=${1:-4000}
runs=${2:-20}
cargo build --release --quiet -p xtask
xtask=$PWD/target/release/xtask
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@a GIT_COMMITTER_NAME=a \
  GIT_COMMITTER_EMAIL=a@a HOME=$scratch/home
mkdir -p "$scratch/home" "$scratch/up" "$scratch/root/patches/demo"
git init --quiet --initial-branch=main "$scratch/up"
python3 - "$scratch/up" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"dir{i % 50}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i}.c"), "w") as f:
        f.write(f"/* file {i} */\n" + "int x;\n" * 40)
PY
git -C "$scratch/up" add --all
git -C "$scratch/up" commit --quiet -m "synthetic upstream"
base=$(git -C "$scratch/up" rev-parse HEAD)
printf 'upstream: file://%s\ntrack: main\nbase: %s\nversion: 1\nseries: []\n' "$scratch/up" "$base" \
  > "$scratch/root/patches/demo/stack.yaml"
"$xtask" --root "$scratch/root" sync
co=$scratch/root/checkouts/demo
racy() {
  python3 - "$co/.git/index" <<'PY'
import os, subprocess, sys
index = sys.argv[1]
written = int(os.stat(index).st_mtime)
out = subprocess.run(["git", "-C", os.path.dirname(os.path.dirname(index)), "ls-files", "--debug"],
                     capture_output=True, text=True).stdout
mtimes = [int(l.split()[1].split(":")[0]) for l in out.splitlines() if l.strip().startswith("mtime:")]
print(f"{sum(m >= written for m in mtimes)} of {len(mtimes)} entries racily clean")
PY
}
echo "== straight after the sync: $(racy)"
hyperfine --runs "$runs" --warmup 2 --export-json "$scratch/before.json" \
  -n "status (unsettled)" "$xtask --root $scratch/root status" \
  -n "sync (unsettled)" "$xtask --root $scratch/root sync"
python3 -c 'import time; time.sleep(1.1)'
git -C "$co" update-index -q --refresh --force-write-index
echo "== settled: $(racy)"
hyperfine --runs "$runs" --warmup 2 --export-json "$scratch/after.json" \
  -n "status (settled)" "$xtask --root $scratch/root status" \
  -n "sync (settled)" "$xtask --root $scratch/root sync"
echo "== medians"
python3 - "$scratch/before.json" "$scratch/after.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        print(f"{r['command']:24s} median {r['median'] * 1000:7.1f} ms")
PY
