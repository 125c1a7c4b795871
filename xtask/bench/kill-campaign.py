#!/usr/bin/env python3
"""Kill campaign: interrupt `sync`, `sync --update` and `save` on the real CPython stack at
random moments (SIGKILL to the process group, as a crash or `kill -9 -PGID` does; SIGINT to
the process group, as Ctrl-C does), then recover with a plain rerun or the one command the
tool names, and check that nothing was lost.

Needs the CPython upstream (a mirror, see README) and a release build of xtask. Works in a
scratch root under `target/xtask/kill/`. Not part of CI: it needs the real upstream.

usage: python3 xtask/bench/kill-campaign.py [--kills N] [--ints N] [--seed S]
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRATCH = ROOT / "target" / "xtask" / "kill"
XTASK = ROOT / "target" / "release" / "xtask"
CPYTHON = ROOT / "checkouts" / "cpython"
# The CPython mirror lacks two blobs; its placeholders never hash to their ids (see README).
PLACEHOLDERS = ["Misc/svnmap.txt", "Doc/library/tachyon-live-mode-1.gif"]
ENV = dict(os.environ, LC_ALL="C", TZ="UTC", GIT_TERMINAL_PROMPT="0")


def git(repo, *args, check=True):
    out = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=ENV
    )
    if check and out.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} in {repo}: {out.stderr.strip()}")
    return out.stdout.strip()


def xtask(root, *args):
    return subprocess.run(
        [str(XTASK), "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=ENV,
        stdin=subprocess.DEVNULL,
    )


def hide_placeholders(co):
    """Marks the mirror's placeholder files unchanged, as the README says to."""
    if not (co / ".git").is_dir():
        return
    present = [p for p in PLACEHOLDERS if git(co, "ls-files", "--", p, check=False)]
    if present:
        git(co, "update-index", "--assume-unchanged", "--", *present, check=False)


def porcelain(co):
    hide_placeholders(co)
    lines = git(co, "status", "--porcelain", "--untracked-files=no").splitlines()
    return [l for l in lines if not any(l.endswith(p) for p in PLACEHOLDERS)]


def make_templates(work):
    """Stack S0: base B0 = tip~12, three upstream commits exported (absorbed by an update to
    the tip) and one patch of our own (survives the update). B_old = tip~400 for the long
    checkout of the rebase scenario."""
    tip = git(CPYTHON, "rev-parse", "HEAD")
    b0 = git(CPYTHON, "rev-parse", f"{tip}~12")
    b_old = git(CPYTHON, "rev-parse", f"{tip}~400")
    upstream = [git(CPYTHON, "rev-parse", f"{tip}~{n}") for n in (11, 10, 9)]
    s0 = work / "S0"
    shutil.rmtree(s0, ignore_errors=True)
    s0.mkdir(parents=True)
    names = []
    for i, commit in enumerate(upstream):
        text = subprocess.run(
            ["git", "-C", str(CPYTHON), "format-patch", "--stdout", "--zero-commit",
             "--no-signature", "--full-index", "-1", commit],
            capture_output=True, text=True, env=ENV, check=True,
        ).stdout
        text = text.replace(
            "\n---\n",
            "\n\nUpstream-Status: Accepted https://github.com/python/cpython\n---\n",
            1,
        )
        name = f"upstream-{i + 1}.patch"
        (s0 / name).write_text(text)
        names.append(name)
    own = (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Kill Campaign <kill@example.org>\n"
        "Date: Sat, 3 Feb 2001 04:05:06 +0000\n"
        "Subject: [PATCH] Say hello in the README\n\n"
        "A change of our own, so an update has something to replay.\n\n"
        "Upstream-Status: Inappropriate [test]\n---\n"
    )
    readme = subprocess.run(
        ["git", "-C", str(CPYTHON), "show", f"{b0}:README.rst"],
        capture_output=True, text=True, env=ENV, check=True,
    ).stdout.splitlines(keepends=True)
    # A one-line change at the end of README.rst, as a unified diff made by git itself.
    tmp = work / "own"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["git", "init", "-q", str(tmp)], check=True, env=ENV)
    (tmp / "README.rst").write_text("".join(readme))
    git(tmp, "add", "README.rst")
    (tmp / "README.rst").write_text("".join(readme) + "Hello from the kill campaign.\n")
    diff = subprocess.run(
        ["git", "-C", str(tmp), "diff", "--full-index", "README.rst"],
        capture_output=True, text=True, env=ENV, check=True,
    ).stdout
    own += diff
    (s0 / "own.patch").write_text(own)
    names.append("own.patch")
    series = "".join(f"  - {n}\n" for n in names)
    (s0 / "stack.yaml").write_text(
        "upstream: https://github.com/python/cpython\n"
        f'track: "3.15"\nbase: {b0}\nversion: 1\nseries:\n{series}'
    )
    return tip, b0, b_old, names


def put_stack(root, template, base=None):
    dest = root / "patches" / "cpython"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(template, dest)
    if base:
        y = dest / "stack.yaml"
        y.write_text(re.sub(r"^base: .*$", f"base: {base}", y.read_text(), flags=re.M))


def snapshot(root):
    d = root / "patches" / "cpython"
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def synced(root, co, expect):
    """The checkout is on `patched`, clean, with the expected subjects over refs/xtask/base."""
    problems = []
    if porcelain(co):
        problems.append(f"uncommitted: {porcelain(co)[:3]}")
    subjects = git(co, "log", "--reverse", "--format=%s", "refs/xtask/base..HEAD", check=False)
    if subjects.splitlines() != expect:
        problems.append(f"subjects {subjects.splitlines()} != {expect}")
    st = xtask(root, "status", "--json", "cpython")
    if st.returncode != 0:
        problems.append(f"status failed: {st.stderr.strip()[:200]}")
    return problems


def named_command(text):
    m = re.search(r"`cargo xtask ([^`]+)`", text)
    return m.group(1).split() if m else None


SIGINT_DEFAULT = True


def interrupt(root, args, delay, sig):
    p = subprocess.Popen(
        [str(XTASK), "--root", str(root), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        stdin=subprocess.DEVNULL, start_new_session=True,
        # A terminal's Ctrl-C finds SIGINT at its default; a shell's background job (this
        # script under `nohup ... &`) would pass it on ignored.
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        if SIGINT_DEFAULT else None,
    )
    time.sleep(delay)
    finished = p.poll() is not None
    if not finished:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            finished = True
    out, err = p.communicate()
    return finished, p.returncode, err


def recover(root, co, plain):
    """A plain rerun; if it fails and names a command, that command once. Returns the
    commands run and the last result."""
    ran = []
    hide_placeholders(co)
    r = xtask(root, *plain)
    ran.append(" ".join(plain))
    if r.returncode != 0:
        cmd = named_command(r.stderr)
        if cmd:
            hide_placeholders(co)
            r = xtask(root, *cmd)
            ran.append(" ".join(cmd))
    return ran, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=3, help="SIGKILL trials per scenario")
    ap.add_argument("--ints", type=int, default=2, help="SIGINT trials per scenario")
    ap.add_argument("--seed", type=int, default=803)
    ap.add_argument("--only", help="run one scenario")
    ap.add_argument("--inherit-sigint", action="store_true",
                    help="leave SIGINT as this script got it (ignored under `nohup ... &`)")
    a = ap.parse_args()
    global SIGINT_DEFAULT
    SIGINT_DEFAULT = not a.inherit_sigint
    rnd = random.Random(a.seed)
    if not XTASK.exists():
        raise SystemExit("build it first: cargo build --release -p xtask")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    root = SCRATCH / "root"
    shutil.rmtree(root, ignore_errors=True)
    (root / "patches").mkdir(parents=True)
    tip, b0, b_old, names = make_templates(SCRATCH)
    s0 = SCRATCH / "S0"
    co = root / "checkouts" / "cpython"
    own_only = ["Say hello in the README"]
    s0_subjects = None

    def fresh():
        put_stack(root, s0)
        shutil.rmtree(co, ignore_errors=True)

    def synced_s0():
        put_stack(root, s0)
        hide_placeholders(co)
        r = xtask(root, "sync", "--force", "cpython")
        if r.returncode != 0:
            r = xtask(root, "sync", "--abort", "cpython")
            r = xtask(root, "sync", "--force", "cpython")
        if r.returncode != 0:
            raise SystemExit(f"cannot prepare: {r.stderr}")
        hide_placeholders(co)

    # Reference runs: the expected end states and how long each command takes.
    fresh()
    t = time.monotonic()
    r = xtask(root, "sync", "cpython")
    assert r.returncode == 0, r.stderr
    durations = {"sync (fresh clone)": time.monotonic() - t}
    hide_placeholders(co)
    s0_subjects = git(co, "log", "--reverse", "--format=%s", "refs/xtask/base..HEAD").splitlines()

    scenarios = {}

    def sc_fresh():
        fresh()
        return ["sync", "cpython"], ["sync", "cpython"], lambda: synced(root, co, s0_subjects)

    def sc_rebase():
        synced_s0()
        put_stack(root, s0, base=b_old)
        # Only our own patch applies on the old base.
        y = root / "patches" / "cpython" / "stack.yaml"
        y.write_text(re.sub(r"series:\n(.|\n)*", "series:\n  - own.patch\n", y.read_text()))
        for n in names[:-1]:
            (root / "patches" / "cpython" / n).unlink()
        return ["sync", "cpython"], ["sync", "cpython"], lambda: synced(root, co, own_only)

    def sc_update():
        synced_s0()
        before = snapshot(root)

        def check():
            after = snapshot(root)
            text = after.get("stack.yaml", b"").decode()
            if f"base: {tip}" in text:
                p = synced(root, co, own_only)
                if "version: 2" not in text:
                    p.append("version not bumped")
                if b"CHANGELOG.md" not in b"".join(k.encode() for k in after):
                    p.append("no CHANGELOG.md")
                return p
            if after == before:
                return synced(root, co, s0_subjects) + ["(update aborted, stack unchanged)"]
            return ["stack files changed but base not moved"]

        return ["sync", "--update", "--to", tip, "cpython"], ["sync", "cpython"], check

    def sc_save():
        synced_s0()
        for i in (1, 2):
            (co / f"KILL-{i}.txt").write_text(f"work {i}\n")
            git(co, "add", f"KILL-{i}.txt")
            git(
                co, "-c", "user.name=K", "-c", "user.email=k@example.org", "commit", "-q",
                "-m", f"Add kill file {i}\n\nUpstream-Status: Inappropriate [test]",
            )
        want = s0_subjects + ["Add kill file 1", "Add kill file 2"]

        def check():
            p = synced(root, co, want)
            text = (root / "patches" / "cpython" / "stack.yaml").read_text()
            if "Add-kill-file-2.patch" not in text:
                p.append("series lacks the new patches")
            return p

        return ["save", "cpython"], ["save", "cpython"], check

    for name, fn in [("sync-fresh", sc_fresh), ("sync-rebase", sc_rebase),
                     ("update", sc_update), ("save", sc_save)]:
        args, _, _ = fn()
        t = time.monotonic()
        r = xtask(root, *args)
        durations[name] = time.monotonic() - t
        if r.returncode != 0:
            raise SystemExit(f"{name}: the uninterrupted run failed:\n{r.stderr}")
        scenarios[name] = fn

    rows = []
    for name, fn in scenarios.items():
        if a.only and name != a.only:
            continue
        for sig, n in ((signal.SIGKILL, a.kills), (signal.SIGINT, a.ints)):
            hit = 0
            # A trial counts only if the signal arrived while the command was running; the
            # delay shrinks after a command finishes first (the machine's load varies).
            span = durations[name] * 0.9
            for _ in range(4 * n):
                if hit == n:
                    break
                args, plain, check = fn()
                delay = rnd.uniform(0.05, max(0.1, span))
                finished, code, err = interrupt(root, args, delay, sig)
                last = err.strip().splitlines()[-1] if err.strip() else ""
                ran, r = recover(root, co, plain)
                problems = check()
                if finished:
                    span = max(0.2, delay * 0.8)
                else:
                    hit += 1
                rows.append({
                    "scenario": name, "signal": sig.name, "delay_s": round(delay, 2),
                    "finished_first": finished, "exit": code, "last_line": last[:160],
                    "recovery": ran, "recovery_exit": r.returncode,
                    "recovery_error": r.stderr.strip()[-300:] if r.returncode else "",
                    "problems": problems,
                })
                ok = "ok" if not problems and r.returncode == 0 else "FAIL"
                print(f"{ok:4} {name:12} {sig.name:7} at {delay:5.2f}s "
                      f"{'(finished first, exit ' + str(code) + ') ' if finished else ''}"
                      f"-> {' ; '.join(ran)} {problems}  [{last[:80]}]",
                      flush=True)
    (SCRATCH / "campaign.json").write_text(json.dumps(
        {"durations_s": durations, "rows": rows}, indent=2))
    print("durations:", {k: round(v, 2) for k, v in durations.items()})
    bad = [r for r in rows if r["problems"] or r["recovery_exit"]]
    hits = [r for r in rows if not r["finished_first"]]
    for sig in ("SIGKILL", "SIGINT"):
        n = sum(r["signal"] == sig for r in hits)
        print(f"{sig}: {n} interrupted runs")
    print(f"{len(rows) - len(bad)}/{len(rows)} trials recovered ({len(hits)} interrupted); "
          f"table in {SCRATCH / 'campaign.json'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
