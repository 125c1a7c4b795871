#!/usr/bin/env bash
# Measures build-all on the experiment experiment.yaml describes (issue 11's budget):
#   cold      a cold build-all in ROOT (its cache and work folders emptied first): wall time
#             against the steps' core-seconds divided by the cores (the core budget's goal:
#             within 10%), from target/xtask/report.json;
#   rebuild   a one-line change to a .c file of the `cpython` stack (a comment in
#             Objects/longobject.c, saved as a patch of the stack), then both interpreters of
#             that stack rebuilt and reinstalled; then the same for a header in Include/;
#             each against the cold time of the same steps; the patch is dropped afterwards;
#   noop      a no-op build-all (release binary) against `git status` in every checkout, with
#             hyperfine in the same run.
# ROOT is a clone of this repository whose checkouts are synced (mirrors configured, see
# README); it is modified (cache, a patch that is removed again). Not part of CI.
# Usage: bash xtask/bench/experiment.sh ROOT [cold] [rebuild] [noop]   (default: all three)
set -euo pipefail
root=$(cd "$1" && pwd)
shift
what=${*:-cold rebuild noop}
here=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release --quiet -p xtask --manifest-path "$here/Cargo.toml"
xtask=$here/target/release/xtask
cores=$(nproc)
report=$root/target/xtask/report.json

# Sum of seconds of the steps whose name starts with $1 and that were built, from report.json.
steps_seconds() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(sum(s["seconds"] for s in r["steps"] if s["step"].startswith(sys.argv[2]) and s["status"].lower()=="built"),1))' "$report" "$1"
}

if [[ $what == *cold* ]]; then
  echo "== cold build-all ($cores cores)"
  rm -rf "$root/target/xtask/cache" "$root/target/xtask/work"
  /usr/bin/time -f "%e s wall, %M KB max RSS" "$xtask" --root "$root" build-all --keep-going -q || true
  # Later runs overwrite the report: keep the cold one, with its timeline.
  cp "$report" "$root/target/xtask/report-cold.json"
  python3 - "$report" "$cores" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); cores = int(sys.argv[2])
wall = r["wall_seconds"]
core_s = r.get("core_seconds") or r["step_seconds"]
ideal = core_s / cores
print(f"wall {wall:.0f} s; steps' core-seconds {core_s:.0f} / {cores} cores = {ideal:.0f} s; "
      f"wall / ideal = {wall / ideal:.3f}")
for s in r["steps"]:
    if s["step"].startswith("cpython/"):
        print(f"  {s['step']}: {s['seconds']:.0f} s ({s['status']})")
# Where cores sat idle: sweep the timeline of granted cores (report version 2 with `started`).
ran = [s for s in r["steps"] if s["cores"] and "started" in s]
if ran:
    points = sorted({0.0, wall} | {s["started"] for s in ran} | {s["started"] + s["seconds"] for s in ran})
    idle, spans = 0.0, []
    for a, b in zip(points, points[1:]):
        mid = (a + b) / 2
        running = [s for s in ran if s["started"] <= mid < s["started"] + s["seconds"]]
        free = cores - sum(s["cores"] for s in running)
        if free > 0 and b > a:
            idle += free * (b - a)
            spans.append((free * (b - a), a, b, free, [s["step"] for s in running]))
    print(f"idle core-seconds {idle:.0f}; the largest idle spans:")
    for cs, a, b, free, names in sorted(spans, reverse=True)[:8]:
        print(f"  {a:6.0f}-{b:6.0f} s: {free} core(s) idle while {', '.join(names) or 'nothing'} ran ({cs:.0f} core-s)")
EOF
fi

if [[ $what == *rebuild* ]]; then
  co=$root/checkouts/cpython
  only=(--only cpython/3.15 --only cpython/3.15t)
  cold=$(steps_seconds cpython/3.15)
  for file in Objects/longobject.c Include/longobject.h; do
    echo "== rebuild after a one-line change to $file (cold: $cold s for both)"
    printf '\n/* xtask bench: one line */\n' >> "$co/$file"
    git -C "$co" commit --quiet -am "bench: touch $file" -m "Upstream-Status: Inappropriate [a benchmark]"
    "$xtask" --root "$root" save cpython >/dev/null
    start=$(date +%s.%N)
    "$xtask" --root "$root" build-all -q "${only[@]}"
    end=$(date +%s.%N)
    echo "  wall $(python3 -c "print(round($end - $start, 1))") s; steps: $(steps_seconds cpython/3.15) s"
    for i in 3.15 3.15t; do
      grep -E "^# |ccache|compiler cache" "$root/target/xtask/logs/cpython-$i.log" | head -3 || true
    done
    # Drop the bench patch again: back to the stack as it was.
    git -C "$co" reset --quiet --hard HEAD~1
    "$xtask" --root "$root" save cpython >/dev/null
  done
  echo "== back at the stack's own tree: cached again"
  "$xtask" --root "$root" build-all -q "${only[@]}" --plan | grep cpython/
fi

if [[ $what == *noop* ]]; then
  echo "== no-op build-all against git status in every checkout"
  "$xtask" --root "$root" build-all -q >/dev/null || true
  statuses=""
  for d in "$root"/checkouts/*/; do
    [ -d "$d/.git" ] && statuses+="git -C $d status --porcelain >/dev/null; "
  done
  hyperfine --warmup 2 --runs 20 -i \
    -n "xtask build-all (no-op)" "$xtask --root $root build-all -q" \
    -n "git status in every checkout" "bash -c '$statuses'"
fi
