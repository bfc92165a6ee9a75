#!/usr/bin/env python3
"""Diff and history benchmark on the large workload (issue 5, "Speed").

1. Generates bench/workload/gen_workload.py --modules 20 --keys 500 --tenants 25
   --secrets 0 into bench/workloads/diff-history/ and commits it.
2. Times one full, cold `llmcc compile --no-cache` (best of --runs; without --no-cache
   every run after the first would time result-cache hits, not a compile).
3. For each of three one-file changes (a tenant file, an environment file that
   prod and every staging/prod tenant inherit, and base.yaml, which every target
   inherits), commits the change and times `llmcc diff HEAD~1 HEAD` (best of --runs):
   the budget is 2.5x one full compile.
4. Adds commits up to --commits commits that touch the prod@t001 layer stack
   (and some that do not), and times `llmcc history prod@t001 MODULE.PATH`.
5. Writes the figures to its section of bench/NOTES.md (bench/run.py copies
   NOTES.md into RESULTS.md).

    .venv/bin/python bench/diff_history.py [--runs 3] [--commits 50]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _sections import write_section  # bench/_sections.py (scripts run with bench/ on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKLOAD_TOOLS = HERE / "workload"
WORK = HERE / "workloads" / "diff-history"
WORKLOAD = ["--modules", "20", "--keys", "500", "--tenants", "25", "--secrets", "0"]
BEGIN, END = "<!-- diff_history:begin -->", "<!-- diff_history:end -->"
# Runs a command module directly while `diff`/`history` are not in the command table yet.
SHIM = """
import argparse, importlib, sys
from pathlib import Path
from compiler.cli import Context, error_boundary
from compiler.cli import _commands
name, root, *rest = sys.argv[1:]
if name in _commands.COMMANDS:
    from compiler.cli import main
    sys.exit(main(["-C", root, name, *rest]))
mod = importlib.import_module("compiler.cli." + name)
p = argparse.ArgumentParser(prog="llmcc " + name)
mod.add_arguments(p)
args = p.parse_args(rest)
with error_boundary(debug=False) as result:
    result.code = mod.run(args, Context(root=Path(root).resolve(), quiet=True, debug=False))
sys.exit(result.code)
"""
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, env=ENV, capture_output=True, text=True).stdout


def generate() -> Path:
    shutil.rmtree(WORK, ignore_errors=True)
    subprocess.run(
        [sys.executable, str(WORKLOAD_TOOLS / "gen_workload.py"), "--out", str(WORK), *WORKLOAD],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    repo = WORK / "ours"
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "large workload")
    return repo


def timed(cmd: list[str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, cwd=ROOT)
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
        best = min(best, wall)
    return best


def llmcc(name: str, repo: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", SHIM, name, str(repo), *args]


def bump(path: Path, var: str, step: int = 1) -> None:
    """Add ``step`` to the first integer variable ``var:`` in a layer file."""
    text = path.read_text()
    new, n = re.subn(rf"(\n  {var}: )(\d+)", lambda m: f"{m.group(1)}{int(m.group(2)) + step}", text, count=1)
    if n == 0:
        new = (
            text.replace("vars:\n", f"vars:\n  {var}: {step}\n", 1)
            if "vars:\n" in text
            else f"vars:\n  {var}: {step}\n" + text
        )
    path.write_text(new)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--commits", type=int, default=50)
    a = ap.parse_args()
    repo = generate()
    out = WORK / "dist"
    shutil.rmtree(repo / ".llmcc", ignore_errors=True)
    compile_s = timed(llmcc("compile", repo, "-q", "--no-cache", "--out", str(out)), a.runs)
    print(f"compile (all 53 targets):         {compile_s:6.2f} s", flush=True)
    env = repo / "environments"
    cases = [
        ("tenant file (tenants/t001.yaml)", env / "tenants" / "t001.yaml", "bench_knob"),
        ("environment file (staging.yaml)", env / "staging.yaml", "timeout_s"),
        ("shared base layer (base.yaml)", env / "base.yaml", "timeout_s"),
    ]
    rows = []
    for label, path, var in cases:
        bump(path, var)
        git(repo, "commit", "-q", "-am", f"change {path.name}")
        wall = timed(llmcc("diff", repo, "HEAD~1", "HEAD", "--format", "json"), a.runs)
        rows.append((label, wall, wall / compile_s))
        print(f"diff HEAD~1 HEAD, {label:34} {wall:6.2f} s  {wall / compile_s:4.2f}x compile", flush=True)
    # History: commits that touch prod@t001's stack, half of them changing the asked value.
    targets = [env / "staging.yaml", env / "prod.yaml", env / "tenants" / "t001.yaml", env / "tenants" / "t002.yaml"]
    have = int(git(repo, "rev-list", "--count", "HEAD").strip())
    for i in range(have, a.commits):
        path = targets[i % len(targets)]
        bump(path, "timeout_s" if i % 2 else "bench_knob")
        git(repo, "commit", "-q", "-am", f"history commit {i}")
    total = int(git(repo, "rev-list", "--count", "HEAD").strip())
    address = "audit-log.cache.primary.owner_3"  # a template value of the variable the prod.yaml commits bump
    history_s = timed(llmcc("history", repo, "prod@t001", address, "--format", "json"), a.runs)
    print(f"history prod@t001 {address} over {total} commits: {history_s:6.2f} s", flush=True)
    write_notes(compile_s, rows, total, address, history_s)
    return 0


def write_notes(
    compile_s: float, rows: list[tuple[str, float, float]], commits: int, address: str, hist: float
) -> None:
    lines = [
        BEGIN,
        "## diff and history (`bench/diff_history.py`)",
        "",
        "Large workload (53 targets, 20 modules, 500 keys), best of the runs, whole process wall time.",
        f"One full, cold `llmcc compile --no-cache`: {compile_s:.2f} s. Budget for `diff`: 2.5x compile.",
        "",
        "| `llmcc diff HEAD~1 HEAD` after one commit that changes | wall | vs compile |",
        "|---|---:|---:|",
        *(f"| {label} | {wall:.2f} s | {ratio:.2f}x |" for label, wall, ratio in rows),
        "",
        f"`llmcc history prod@t001 {address}` over {commits} commits: {hist:.2f} s",
        "(only the asked module is merged, once per commit that touched the target's files).",
        END,
    ]
    write_section(HERE / "NOTES.md", "\n".join(lines), BEGIN, END)


if __name__ == "__main__":
    raise SystemExit(main())
