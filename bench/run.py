#!/usr/bin/env python3
"""Compile benchmark: llmcc on the benchmark workload generator's large and xlarge workloads.

Generates each workload with bench/workload/gen_workload.py (secrets 0), commits it
in a fresh git repository, times `llmcc compile` end to end as a subprocess (wall
time; peak RSS summed over the process tree, sampled every 20 ms), checks every
bundle against the generator's expected/ files with bench/workload/check_outputs.py,
and writes bench/RESULTS.md. Kapitan's figures are the measured baselines of
bench/BASELINES.md (same machine class); we compare ratios. Then runs the delta
benchmark (bench/delta_bench.py: bytes and time, full version vs delta), whose
section of bench/NOTES.md goes into RESULTS.md with the rest of NOTES.md.

    .venv/bin/python bench/run.py [--sizes large,xlarge] [--runs 3]
    .venv/bin/python bench/run.py --quick    # small workload, one run, RESULTS.md untouched
    .venv/bin/python bench/run.py --agent-only   # only the sidecar benchmark (bench/agent.py)

Then runs the runtime client benchmark (bench/client.py) and the sidecar benchmark
(bench/agent.py), whose sections of bench/NOTES.md are copied into RESULTS.md with the
rest (``--no-client`` and ``--no-agent`` skip them).
Start-up figures come from bench/startup.py (run first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import incremental  # bench/incremental.py, next to this script
import startup  # bench/startup.py, next to this script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKLOAD_TOOLS = HERE / "workload"
WORK = HERE / "workloads"
LLMCC = [sys.executable, "-m", "compiler"]
SIZES = {
    "small": ["--modules", "8", "--keys", "100"],
    "medium": ["--modules", "20", "--keys", "500"],
    "large": ["--modules", "20", "--keys", "500", "--tenants", "25"],
    "xlarge": ["--modules", "20", "--keys", "500", "--tenants", "100"],
}
# bench/BASELINES.md: Kapitan 0.36.3 on this machine class (wall seconds, peak RSS MiB).
KAPITAN = {"small": (2.0, None), "medium": (3.7, None), "large": (22.0, None), "xlarge": (77.0, 438.0)}


def generate(size: str) -> Path:
    out = WORK / size
    if not (out / "ours" / ".git").is_dir():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                str(WORKLOAD_TOOLS / "gen_workload.py"),
                "--out",
                str(out),
                *SIZES[size],
                "--secrets",
                "0",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
        env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", f"{size} workload"]):
            subprocess.run(["git", *args], cwd=out / "ours", check=True, env=env)
    return out


def _tree_rss_kib(pid: int) -> int:
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as f:
                pids += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB, process tree) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            time.sleep(0.02)

    t = threading.Thread(target=sample)
    t.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, peak / 1024


def check(workload: Path, out: Path) -> str:
    modules_dir = out.parent / (out.name + "-modules")
    shutil.rmtree(modules_dir, ignore_errors=True)
    modules_dir.mkdir()
    for bundle in out.glob("*.bundle.json"):
        doc = json.loads(bundle.read_bytes())
        target = bundle.name.removesuffix(".bundle.json")
        (modules_dir / f"{target}.json").write_text(json.dumps(doc["modules"]))
    res = subprocess.run(
        [sys.executable, str(WORKLOAD_TOOLS / "check_outputs.py"), "bundles", str(workload), str(modules_dir)],
        capture_output=True,
        text=True,
    )
    last = res.stdout.strip().splitlines()[-1]
    if res.returncode != 0:
        raise SystemExit(f"output check failed: {res.stdout[-3000:]}")
    return last


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="large,xlarge")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small workload, one run; print only, RESULTS.md untouched")
    ap.add_argument("--no-client", action="store_true", help="skip the runtime client benchmark (bench/client.py)")
    ap.add_argument("--no-agent", action="store_true", help="skip the sidecar benchmark (bench/agent.py)")
    ap.add_argument("--agent-only", action="store_true", help="only bench/agent.py (the sidecar)")
    a = ap.parse_args()
    if a.agent_only:
        return subprocess.run([sys.executable, str(HERE / "agent.py")], check=False).returncode
    if a.quick:
        a.sizes, a.runs = "small", 1
    # start-up first (issue 14 §1): a few seconds; its section of NOTES.md is copied into RESULTS.md below
    startup.main(["--runs", "3", "--print-only"] if a.quick else [])
    # incremental compile (issue 14 §2): the xlarge workload after small changes, cache warm
    incremental.main(["--runs", "1", "--print-only"] if a.quick else [])
    rows = []
    for size in a.sizes.split(","):
        wl = generate(size)
        ours = wl / "ours"
        out = WORK / f"{size}-dist"
        n_targets = len(json.loads((wl / "expected" / "index.json").read_text())["targets"])
        for label, extra in (("parallel (2 cores)", []), ("one process", ["-j", "1"])):
            best = None
            for _ in range(a.runs):
                shutil.rmtree(out, ignore_errors=True)
                wall, rss = timed([*LLMCC, "-C", str(ours), "compile", "-q", "--out", str(out), *extra], ROOT)
                best = (wall, rss) if best is None or wall < best[0] else best
            assert best is not None
            verdict = check(wl, out)
            k_wall, k_rss = KAPITAN[size]
            rows.append((size, n_targets, label, best[0], best[1], k_wall / best[0], k_rss, verdict))
            print(
                f"{size:7} {n_targets:4} targets  {label:18}  {best[0]:6.2f} s  {best[1]:6.0f} MiB  "
                f"{_versus(k_wall / best[0])}  [{verdict}]",
                flush=True,
            )
    if not a.no_client:
        subprocess.run([sys.executable, str(HERE / "client.py"), *(["--quick"] if a.quick else [])], check=True)
    if not a.no_agent:
        agent = [sys.executable, str(HERE / "agent.py"), *(["--seconds", "3", "--no-write"] if a.quick else [])]
        subprocess.run(agent, check=True)

    import delta_bench  # bench/ is on sys.path[0] when this script runs

    section = delta_bench.measure(5 if a.quick else 50)
    print("\n".join(section), flush=True)
    if not a.quick:
        delta_bench.write_notes(section)
        write_results(rows)
    return 0


def _versus(ratio: float) -> str:
    """``3.2x faster than Kapitan``, or ``1.4x slower than Kapitan`` when it is."""
    return f"{ratio:5.1f}x faster than Kapitan" if ratio >= 1 else f"{1 / ratio:5.1f}x slower than Kapitan"


def write_results(rows: list[tuple]) -> None:
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`bench/run.py`); do not edit by hand.",
        "",
        "Workloads from `bench/workload/gen_workload.py --modules 20 --keys 500 --secrets 0`",
        "(`--tenants 25`: large, `--tenants 100`: xlarge), each committed in a fresh git repository.",
        "Time is the wall time of the whole `llmcc compile` process (best of the runs, full schema",
        "validation, bundles written); memory is the peak RSS summed over the process tree.",
        "Every bundle is checked against the generator's expected output (`check_outputs.py`).",
        "Kapitan figures: `bench/BASELINES.md`, Kapitan 0.36.3 on the same machine class.",
        "",
        "| workload | targets | mode | llmcc wall | llmcc peak RSS | Kapitan wall | speed-up | output |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for size, n, label, wall, rss, ratio, k_rss, verdict in rows:
        lines.append(
            f"| {size} | {n} | {label} | {wall:.2f} s | {rss:.0f} MiB | {KAPITAN[size][0]:.0f} s"
            f"{f' / {k_rss:.0f} MiB' if k_rss else ''} | {ratio:.1f}x | {verdict} |"
        )
    extra = HERE / "NOTES.md"
    if extra.exists():
        lines += ["", extra.read_text().strip()]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
