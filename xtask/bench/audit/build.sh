#!/usr/bin/env bash
# build.sh OUT_DIR PY_GIL PY_FT
#
# Evidence for the abi3t rules of `cargo xtask audit` (issue 12): compiles the
# one module demo.c for the abi3 layout and for abi3t, then shows what in the
# binary tells them apart, and what each interpreter does with each object.
#
#   PY_GIL  a GIL-enabled CPython 3.15 (its headers build a, b, d)
#   PY_FT   a free-threaded CPython 3.15t (its headers build c)
#
# Objects (named as a wheel would name them):
#   a/demo.abi3.so    abi3-cp38:   -DPy_LIMITED_API=0x03080000, GIL headers
#   b/demo.abi3.so    abi3-cp315:  -DPy_LIMITED_API=0x030f0000, GIL headers
#   c/demo.abi3t.so   abi3t-cp315: -DPy_TARGET_ABI3T=0x030f0000
#                                  -DPy_LIMITED_API=0x030f0000, 3.15t headers
#   c-gilhdr/demo.abi3t.so  the same as c against the GIL headers (compared)
#   d/demo.abi3.so    extra: b plus -DDEMO_MODEXPORT (abi3 layout, PEP 793 hook)
#   a-ndebug/demo.abi3.so   extra: a plus -DNDEBUG (as setuptools builds)
#
# For each object: the Py* symbols it imports (nm -D --undefined-only), what it
# exports (nm -D --defined-only), DT_NEEDED (readelf -d), the PyABIInfo found
# in its data (flags: 1 stable, 2 GIL, 4 free-threaded) and any statically
# allocated object header (the immortal refcount of PyObject_HEAD_INIT, which
# abi3t cannot contain). Then it imports each object on both interpreters from
# a temporary directory and exercises it; if the interpreter does not know the
# file's suffix it also forces the load with ExtensionFileLoader (in a child
# process, so a crash is reported, not fatal).
#
# Run:  xtask/bench/audit/build.sh OUT_DIR "$PY_GIL" "$PY_FT" | tee log
# Needs cc, nm, readelf (binutils). No libpython is linked.
set -euo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: $0 OUT_DIR PY_GIL PY_FT" >&2
    exit 2
fi
OUT=$1
PY_GIL=$2
PY_FT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/demo.c
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

inc() { "$1" -c "import sysconfig; print(sysconfig.get_paths()['include'])"; }
INC_GIL=$(inc "$PY_GIL")
INC_FT=$(inc "$PY_FT")

CC=${CC:-cc}
CFLAGS=(-shared -fPIC -O2 -Wall)

build() { # NAME FILE INCLUDE FLAGS...
    local name=$1 file=$2 incdir=$3
    shift 3
    mkdir -p "$OUT/$name"
    echo "+ $CC ${CFLAGS[*]} -I\$INCLUDE $* demo.c -o $name/$file"
    "$CC" "${CFLAGS[@]}" -I"$incdir" "$@" "$SRC" -o "$OUT/$name/$file"
}

echo "### compile"
build a demo.abi3.so "$INC_GIL" -DPy_LIMITED_API=0x03080000
build b demo.abi3.so "$INC_GIL" -DPy_LIMITED_API=0x030f0000
build c demo.abi3t.so "$INC_FT" -DPy_TARGET_ABI3T=0x030f0000 -DPy_LIMITED_API=0x030f0000
build c-gilhdr demo.abi3t.so "$INC_GIL" -DPy_TARGET_ABI3T=0x030f0000 -DPy_LIMITED_API=0x030f0000
build d demo.abi3.so "$INC_GIL" -DPy_LIMITED_API=0x030f0000 -DDEMO_MODEXPORT
build a-ndebug demo.abi3.so "$INC_GIL" -DPy_LIMITED_API=0x03080000 -DNDEBUG
if cmp -s "$OUT/c/demo.abi3t.so" "$OUT/c-gilhdr/demo.abi3t.so"; then
    echo "c (3.15t headers) and c-gilhdr (3.15 headers): byte-identical"
else
    echo "c (3.15t headers) and c-gilhdr (3.15 headers): DIFFER"
fi

echo
echo "### what the headers do with a plain Py_LIMITED_API on the free-threaded build"
for v in 0x030f0000 0x03080000; do
    mkdir -p "$OUT/ft-limited-$v"
    if "$CC" "${CFLAGS[@]}" -I"$INC_FT" -DPy_LIMITED_API=$v "$SRC" \
        -o "$OUT/ft-limited-$v/demo.so" 2>"$OUT/ft-limited-$v/cc.err"; then
        if cmp -s "$OUT/ft-limited-$v/demo.so" "$OUT/c/demo.abi3t.so"; then
            echo "-DPy_LIMITED_API=$v, 3.15t headers: compiles, identical to c (abi3t)"
        else
            echo "-DPy_LIMITED_API=$v, 3.15t headers: compiles, differs from c"
        fi
    else
        echo "-DPy_LIMITED_API=$v, 3.15t headers: refused: $(grep -m1 -o 'error: .*' "$OUT/ft-limited-$v/cc.err")"
    fi
done

# The PyABIInfo struct and static object headers, found by their bytes in the
# file's data sections (works on a stripped object: no symbols needed).
SCAN='
import struct, sys
path = sys.argv[1]
b = open(path, "rb").read()
shoff, = struct.unpack_from("<Q", b, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", b, 0x3a)
secs = []
for i in range(shnum):
    name, typ, flags, addr, off, size = struct.unpack_from("<IIQQQQ", b, shoff + i * shentsize)
    secs.append((name, typ, addr, off, size))
stroff = secs[shstrndx][3]
def sname(n):
    return b[stroff + n:b.index(b"\0", stroff + n)].decode()
IMMORTAL = 0x00050000c0000000   # _Py_STATIC_IMMORTAL_INITIAL_REFCNT (3.15, 64-bit GIL)
found_info = found_head = 0
for name, typ, addr, off, size in secs:
    n = sname(name)
    if typ != 1 or not (n.startswith(".data") or n.startswith(".rodata")):
        continue
    for o in range(off, off + size - 11, 4):
        major, minor, flags, build, abi = struct.unpack_from("<BBHII", b, o)
        if (major, minor) == (1, 0) and flags and not flags & ~0xF \
                and build >> 24 == 3 and abi >> 24 == 3 and abi & 0xFFFF == 0:
            found_info += 1
            nm = "|".join(k for k, v in (("STABLE", 1), ("GIL", 2), ("FREETHREADED", 4), ("INTERNAL", 8)) if flags & v)
            print(f"  PyABIInfo at {n}+{o - off:#x}: flags={flags:#06x} ({nm}) "
                  f"build_version={build:#010x} abi_version={abi:#010x}")
    for o in range(off, off + size - 7, 8):
        v, = struct.unpack_from("<Q", b, o)
        if v == IMMORTAL:
            found_head += 1
            print(f"  static PyObject_HEAD_INIT (ob_refcnt={v:#x}) at {n}+{o - off:#x} "
                  f"(vaddr {addr + o - off:#x})")
if not found_info:
    print("  PyABIInfo: none")
if not found_head:
    print("  static PyObject_HEAD_INIT: none")
'

describe() { # NAME FILE
    local so=$OUT/$1/$2
    echo
    echo "### $1/$2  ($(wc -c <"$so") bytes)"
    echo "imports (nm -D --undefined-only, Py*):"
    nm -D --undefined-only "$so" | awk '{print $NF}' | grep -E '^_?Py' | sed 's/^/  /' || true
    echo "exports (nm -D --defined-only):"
    nm -D --defined-only "$so" | awk '{print "  " $2 " " $3}'
    echo "NEEDED (readelf -d):"
    readelf -d "$so" | grep NEEDED | sed 's/^ */  /' || echo "  (none)"
    echo "local data symbols (nm, unstripped):"
    nm "$so" | awk '$2 ~ /^[dDbB]$/ && $3 ~ /^(demo|counter)/ {print "  " $3}'
    echo "data scan:"
    "$PY_GIL" -c "$SCAN" "$so"
}

echo
echo "### objects"
for spec in a:demo.abi3.so b:demo.abi3.so c:demo.abi3t.so d:demo.abi3.so a-ndebug:demo.abi3.so; do
    describe "${spec%%:*}" "${spec#*:}"
done
echo
echo "a vs a-ndebug imports (lines only in a):"
comm -23 <(nm -D --undefined-only "$OUT/a/demo.abi3.so" | awk '{print $NF}' | sort) \
         <(nm -D --undefined-only "$OUT/a-ndebug/demo.abi3.so" | awk '{print $NF}' | sort) |
    sed 's/^/  /'

EXERCISE='
import sys
r = demo.describe((1, 2, 3))
assert r == (tuple, 3, (1, 2, 3)), r
assert demo.describe([1]) == (list, -1, [1])
c = demo.Counter()
c.bump()
assert c.bump() == 2
gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
print("ok (GIL enabled after import: %s)" % gil)
'
IMPORT="import demo$EXERCISE"
FORCE='
import importlib.machinery, importlib.util, sys
path = sys.argv[1]
loader = importlib.machinery.ExtensionFileLoader("demo", path)
spec = importlib.util.spec_from_file_location("demo", path, loader=loader)
demo = importlib.util.module_from_spec(spec)
sys.modules["demo"] = demo
spec.loader.exec_module(demo)
'"$EXERCISE"

run() { # LABEL PY ARGS... ; prints ok, the last error line or the signal
    local label=$1 py=$2 rc=0 out
    shift 2
    out=$(cd "$TMPD" && timeout 30 "$py" -W always "$@" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "  $label: $(echo "$out" | tail -n 1)"
        echo "$out" | grep -i warning | sed 's/^/      /' || true
    elif [ "$rc" -gt 128 ]; then
        echo "  $label: CRASH: killed by signal $((rc - 128)) ($(kill -l $((rc - 128)))); output: $(echo "$out" | tail -n 1)"
    else
        echo "  $label: FAILED (exit $rc): $(echo "$out" | grep -v '^ ' | tail -n 1)"
    fi
}

echo
echo "### import on both interpreters"
for spec in a:demo.abi3.so b:demo.abi3.so c:demo.abi3t.so d:demo.abi3.so; do
    name=${spec%%:*}
    file=${spec#*:}
    echo "$name/$file:"
    for pyname in PY_GIL PY_FT; do
        py=${!pyname}
        TMPD=$(mktemp -d)
        cp "$OUT/$name/$file" "$TMPD/"
        run "\$$pyname import demo" "$py" -c "$IMPORT"
        suffixes=$("$py" -c 'import importlib.machinery as m; print(" ".join(m.EXTENSION_SUFFIXES))')
        case " $suffixes " in
            *" .${file#demo.} "*) ;;
            *) run "\$$pyname forced ExtensionFileLoader" "$py" -c "$FORCE" "$TMPD/$file" ;;
        esac
        rm -rf "$TMPD"
    done
done
