#!/usr/bin/env python3
"""Sharding benchmark (issue 14 §4): one runner against four shards on ~1,000 targets.

1. Generates ``gen_workload.py --modules 20 --keys 500 --secrets 0 --tenants 500``
   (dev, staging and prod; 500 tenants in staging and prod: 1,003 targets) and
   commits it in a fresh git repository.
2. Times the full ``llmcc compile --no-cache`` on one runner, then ``llmcc compile --shard I/4``
   for I = 1..4 one after another, each as a whole process (wall time), every
   command with the same default workers (one per core).
3. Checks that the four shards wrote disjoint sets of bundles that together are
   every target, and every bundle against the generator's expected output
   (``check_outputs.py``), for the single runner and for the shards.
4. Prints the largest shard's time as a share of the single-runner time (medians
   over the runs) against the goal of at most 30 %, and writes its section of
   bench/NOTES.md (bench/run.py copies NOTES.md into RESULTS.md) and bench/RESULTS.md.

    .venv/bin/python bench/shards.py [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _sections import write_section  # bench/_sections.py (scripts run with bench/ on sys.path)
from run import LLMCC, WORK, WORKLOAD_TOOLS, check, timed  # bench/run.py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEGIN, END = "<!-- shards:begin -->", "<!-- shards:end -->"
SHARDS = 4
GOAL = 0.30  # the largest shard's wall time as a share of one runner's (issue 14 §4)
WORKLOAD = ["--modules", "20", "--keys", "500", "--secrets", "0"]


def generate(tenants: int) -> Path:
    """The workload committed in a fresh git repository (kept across runs, like bench/run.py's)."""
    out = WORK / f"shards-{tenants}"
    if not (out / "ours" / ".git").is_dir():
        shutil.rmtree(out, ignore_errors=True)
        gen = [sys.executable, str(WORKLOAD_TOOLS / "gen_workload.py"), "--out", str(out), *WORKLOAD]
        subprocess.run([*gen, "--tenants", str(tenants)], check=True, stdout=subprocess.DEVNULL)
        env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
        env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "shards workload"]):
            subprocess.run(["git", *args], cwd=out / "ours", check=True, env=env)
    return out


def compile_once(ours: Path, out: Path, shard: str | None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB, the tree's sum) of one ``llmcc compile`` into a fresh ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(ours / ".llmcc", ignore_errors=True)  # nothing an earlier command left is read
    extra = ["--shard", shard] if shard else []
    # --no-cache: full compiles on both sides (the result cache would serve the shards what the
    # single runner compiled a moment before, in the same repository)
    run = timed([*LLMCC, "-C", str(ours), "compile", "-q", "--no-cache", "--out", str(out), *extra], ROOT)
    return run.wall, run.tree_rss


def bundles(out: Path) -> set[str]:
    return {p.name for p in out.glob("*.bundle.json")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="100 tenants, one run; print only, NOTES.md untouched")
    a = ap.parse_args(argv)
    tenants, runs = (100, 1) if a.quick else (500, a.runs)
    wl = generate(tenants)
    ours = wl / "ours"
    single_out = WORK / f"shards-{tenants}-single"
    shard_outs = [WORK / f"shards-{tenants}-shard{i}" for i in range(1, SHARDS + 1)]
    load_before = os.getloadavg()[0]
    single: list[float] = []
    per_shard: list[list[float]] = [[] for _ in range(SHARDS)]
    rss: list[float] = []
    for _ in range(runs):  # interleaved, so a slow moment of the machine hits both sides
        wall, peak = compile_once(ours, single_out, None)
        single.append(wall)
        rss.append(peak)
        for i, out in enumerate(shard_outs):
            per_shard[i].append(compile_once(ours, out, f"{i + 1}/{SHARDS}")[0])
    load = (load_before, os.getloadavg()[0])
    verdict = check(wl, single_out)
    parts = [bundles(out) for out in shard_outs]
    everything = bundles(single_out)
    if sum(map(len, parts)) != len(everything) or set().union(*parts) != everything:
        raise SystemExit(f"the shards' bundles are not every target exactly once: {[len(p) for p in parts]}")
    merged = WORK / f"shards-{tenants}-merged"
    shutil.rmtree(merged, ignore_errors=True)
    merged.mkdir()
    for out in shard_outs:
        for name in bundles(out):
            os.link(out / name, merged / name)
    shard_verdict = check(wl, merged)
    one = statistics.median(single)
    medians = [statistics.median(times) for times in per_shard]
    largest = max(medians)
    share = largest / one
    met = "met" if share <= GOAL else "NOT met"
    print(
        f"shards   {len(everything)} targets  one runner {one:.2f} s [{verdict}]; "
        f"{SHARDS} shards {' '.join(f'{m:.2f}' for m in medians)} s ({'/'.join(str(len(p)) for p in parts)} targets) "
        f"[{shard_verdict}]; largest {largest:.2f} s = {share:.0%} of one runner (goal <= {GOAL:.0%}: {met})",
        flush=True,
    )
    if not a.quick:
        write_notes(len(everything), tenants, runs, one, statistics.median(rss), medians, parts, share, verdict, load)
    return 0


def write_notes(
    targets: int,
    tenants: int,
    runs: int,
    one: float,
    rss: float,
    medians: list[float],
    parts: list[set[str]],
    share: float,
    verdict: str,
    load: tuple[float, float],
) -> None:
    rows = [
        f"| shard {i}/{SHARDS} | {len(part)} | {m:.2f} s | {m / one:.0%} |"
        for i, (m, part) in enumerate(zip(medians, parts, strict=True), 1)
    ]
    lines = [
        BEGIN,
        "## Sharding across CI runners (`bench/shards.py`)",
        "",
        f"`gen_workload.py {' '.join(WORKLOAD)} --tenants {tenants}`: {targets} targets (dev, staging and prod;",
        f"{tenants} tenants in staging and prod). Whole-process wall time of `llmcc compile`, median of {runs} runs",
        "(one per core, 2 cores); the four shards run one after another here, as four CI runners would run",
        f"them side by side. Every bundle of both sides matches the generator's expected output ({verdict}).",
        "",
        "| run | targets | wall | share of one runner |",
        "|---|---:|---:|---:|",
        f"| one runner | {targets} | {one:.2f} s ({rss:.0f} MiB peak RSS) | 100 % |",
        *rows,
        "",
        f"Largest shard: {max(medians):.2f} s, **{share:.0%}** of one runner (goal: at most {GOAL:.0%}:"
        f" {'met' if share <= GOAL else 'NOT met'}).",
        "What a shard cannot divide: the process start-up, reading the manifest, schemas and templates,",
        "and each of its environments' shared base (computed once per shard).",
        f"Load average (1 min) when the runs started and ended: {load[0]:.1f} and {load[1]:.1f} on 2 cores",
        "(other processes share this machine; the figures scale with it, the share less so).",
        END,
    ]
    for name in ("NOTES.md", "RESULTS.md"):
        write_section(HERE / name, "\n".join(lines), BEGIN, END)


if __name__ == "__main__":
    raise SystemExit(main())
