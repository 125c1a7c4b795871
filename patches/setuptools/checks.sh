#!/usr/bin/env bash
# setuptools' CI checks on one commit, run by export-prs (`conventions.checks`) in a branch's
# worktree, once per commit (`verify_each_commit`):
#   bash $STACK/checks.sh
#   - ruff, as pre-commit runs it (ruff-check, ruff-format) and pytest-ruff in CI: on the
#     Python files the commit changes, refusing findings the commit adds. Not "no findings":
#     upstream's tree already has some under the pinned ruff 0.15.0 (RUF100 on noqa comments).
#   - mypy over the tree with upstream's mypy.ini, as pytest-mypy runs it in CI.
# The tools run on `python3` from PATH (>= 3.10, as in upstream's CI; mypy's compiled wheels
# do not exist for 3.15 yet). Their venv lives under $XTASK_WORK.
set -euo pipefail
python=${SETUPTOOLS_CHECKS_PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "checks.sh: $python is older than 3.10; set SETUPTOOLS_CHECKS_PYTHON to a newer one" >&2
    exit 1
}
venv=$XTASK_WORK/checks-venv
want="$(cat "$XTASK_STACK/check-requirements.txt" "$XTASK_STACK/test-requirements.txt" | sha256sum)"
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$XTASK_STACK/check-requirements.txt" -r "$XTASK_STACK/test-requirements.txt"
    printf '%s' "$want" > "$venv/.requirements"
fi
mapfile -t files < <(git diff --name-only --diff-filter=AMR HEAD^ HEAD -- '*.py')
if [ ${#files[@]} -gt 0 ]; then
    "$venv/bin/ruff" format --check "${files[@]}"
    "$venv/bin/python" - "$venv/bin/ruff" "${files[@]}" <<'PY'
import collections, json, subprocess, sys
ruff, files = sys.argv[1], sys.argv[2:]
def findings(path, text):
    out = subprocess.run([ruff, "check", "--output-format", "json", "--stdin-filename", path, "-"],
                         input=text, capture_output=True, text=True)
    return collections.Counter((f["code"], f["message"]) for f in json.loads(out.stdout or "[]"))
added = []
for path in files:
    new = open(path, encoding="utf-8").read()
    old = subprocess.run(["git", "show", f"HEAD^:{path}"], capture_output=True, text=True).stdout
    for (code, message), n in (findings(path, new) - findings(path, old)).items():
        added.append(f"{path}: {code} {message}" + (f" ({n} times)" if n > 1 else ""))
if added:
    print("ruff: this commit adds findings:\n  " + "\n  ".join(added))
    sys.exit(1)
print(f"ruff: no new findings in {len(files)} changed file(s)")
PY
fi
"$venv/bin/mypy" .
