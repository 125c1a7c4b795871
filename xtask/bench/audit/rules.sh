#!/usr/bin/env bash
# rules.sh OUT_DIR PY_GIL PY_FT [STABLE_ABI_TOML]
#
# Shows each abi3t rule of `cargo xtask audit` firing on demo.c compiled for the abi3 layout
# and staying quiet on the abi3t build (docs/audit.md, "Evidence"): build.sh compiles the
# variants, each is packed into a `cp315-abi3.abi3t` wheel as `demo.abi3t.so` (so the suffix
# rule does not hide the others), and the audit runs on them all.
#
#   STABLE_ABI_TOML  CPython's Misc/stable_abi.toml (default: the one of the `cpython` checkout)
set -euo pipefail
out=$1 py_gil=$2 py_ft=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
list=${4:-$root/checkouts/cpython/Misc/stable_abi.toml}
bash "$here/build.sh" "$out" "$py_gil" "$py_ft" > "$out.build.log"
mkdir -p "$out/wheels"
rm -f "$out"/wheels/*.whl
"$py_gil" - "$out" <<'PY'
import sys, zipfile, pathlib
out = pathlib.Path(sys.argv[1])
for variant in ["a", "a-ndebug", "b", "c", "d"]:
    so = next((out / variant).glob("demo.*.so"))
    name = "demo_" + variant.replace("-", "_")
    with zipfile.ZipFile(out / "wheels" / f"{name}-1.0-cp315-abi3.abi3t-linux_x86_64.whl", "w") as z:
        z.write(so, "demo.abi3t.so")
        z.writestr(f"{name}-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
                   "Tag: cp315-abi3-linux_x86_64\nTag: cp315-abi3t-linux_x86_64\n")
PY
cargo run -q --manifest-path "$root/Cargo.toml" -p xtask -- audit "$out/wheels" --stable-abi "$list" || true
