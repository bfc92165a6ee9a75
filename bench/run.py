#!/usr/bin/env python3
"""Compile benchmark: llmcc and Kapitan on the workload generator's large and xlarge workloads.

Generates each workload with bench/workload/gen_workload.py (secrets 0), commits it
in a fresh git repository, and times, in the same run and interleaved round by round, a cold full
compile -- `llmcc compile --no-cache` with no `.llmcc/cache` in the workload, so every target
is rendered, validated and written (two workers and one process) -- and `kapitan compile` on the generator's
equivalent Kapitan project (Kapitan 0.36.3 from PyPI, installed on first use into the
git-ignored bench/.kapitan-venv). Each figure is the median of the runs; wall time of the
whole process, and CPU time (user + system of the process and the workers it waited for,
``wait4``); memory is the peak RSS of the largest single process (``wait4``) and the
peak of the process tree's sum (sampled every 20 ms). Every llmcc bundle and every Kapitan
output is checked against the generator's expected/ files (bench/workload/check_outputs.py).
The ratios come from figures of one run: on a shared machine only they mean something.
When Kapitan cannot be installed or run, the fixed figures of bench/BASELINES.md stand
in, and the output says so. Results and the bars of issue 14 §3 go to bench/RESULTS.md.
Then runs the delta benchmark (bench/delta_bench.py: bytes and time, full version vs
delta), whose section of bench/NOTES.md goes into RESULTS.md with the rest of NOTES.md.

    .venv/bin/python bench/run.py [--sizes large,xlarge] [--runs 5] [--kapitan-runs 3]
    .venv/bin/python bench/run.py --no-kapitan  # fixed Kapitan figures (bench/BASELINES.md)
    .venv/bin/python bench/run.py --quick    # small workload, one run, RESULTS.md untouched
    .venv/bin/python bench/run.py --agent-only   # only the sidecar benchmark (bench/agent.py)

Then runs the sharding benchmark (bench/shards.py: four shards of ~1,000 targets against one
runner), the runtime client benchmark (bench/client.py) and the sidecar benchmark
(bench/agent.py), whose sections of bench/NOTES.md are copied into RESULTS.md with the
rest (``--no-client`` and ``--no-agent`` skip them).
Start-up figures come from bench/startup.py (run first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
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
# bench/BASELINES.md: Kapitan 0.36.3 on this machine class (wall seconds, peak RSS MiB); used
# only when Kapitan cannot be installed or run here.
KAPITAN = {"small": (2.0, None), "medium": (3.7, None), "large": (22.0, None), "xlarge": (77.0, 438.0)}
KAPITAN_VERSION = "0.36.3"
KAPITAN_VENV = HERE / ".kapitan-venv"  # git-ignored
# issue 14 §3: speed-up over Kapitan of the default compile (two workers), and memory on xlarge
BARS = {"large": 30.0, "xlarge": 50.0}
RSS_BAR_MIB = 100.0


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


@dataclass(frozen=True)
class Run:
    wall: float  # seconds, whole process
    cpu: float  # seconds, user + system of the process and the descendants it waited for (wait4)
    rss: float  # MiB, the largest single process of the tree (wait4's ru_maxrss)
    tree_rss: float  # MiB, the peak of the tree's sum (sampled)


def timed(cmd: list[str], cwd: Path) -> Run:
    """Wall and CPU seconds and peak RSS (largest process; tree sum) of one command."""
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
    assert proc.stderr is not None
    with proc.stderr:
        err = proc.stderr.read()
    # wait4: ru_maxrss is the peak of the largest process among the child and the
    # descendants it waited for (a worker pool's workers), in KiB.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime  # wait4: the child and the descendants it waited for
    return Run(wall=wall, cpu=cpu, rss=usage.ru_maxrss / 1024, tree_rss=peak / 1024)


def median(runs: list[Run]) -> Run:
    """The median of each measure (memory: the largest seen, since a peak is a bound)."""
    return Run(
        wall=statistics.median(r.wall for r in runs),
        cpu=statistics.median(r.cpu for r in runs),
        rss=max(r.rss for r in runs),
        tree_rss=max(r.tree_rss for r in runs),
    )


def compile_command(ours: Path, out: Path, extra: list[str]) -> list[str]:
    """``llmcc compile`` as the full-compile bar means it (issue 14 §3): cold, every target built.

    ``--no-cache`` neither reads nor fills the result cache ``.llmcc/cache/``; without it every
    run after the first would time cache hits, not a compile. ``cold_compile`` also removes
    ``.llmcc/`` before each run, so nothing a previous command left there is read.
    """
    return [*LLMCC, "-C", str(ours), "compile", "-q", "--no-cache", "--out", str(out), *extra]


def cold_compile(ours: Path, out: Path, extra: list[str]) -> Run:
    """One timed cold compile of the workload ``ours`` into a fresh ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(ours / ".llmcc", ignore_errors=True)
    return timed(compile_command(ours, out, extra), ROOT)


def kapitan_command() -> tuple[list[str] | None, str]:
    """``kapitan`` from bench/.kapitan-venv (made on first use), or None and why not."""
    exe = KAPITAN_VENV / "bin" / "kapitan"
    if not exe.exists():
        print(f"installing kapitan=={KAPITAN_VERSION} into {KAPITAN_VENV} (once; a few minutes)", flush=True)
        shutil.rmtree(KAPITAN_VENV, ignore_errors=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(KAPITAN_VENV)], capture_output=True, text=True)
        pip = [str(KAPITAN_VENV / "bin" / "pip"), "install", "-q", f"kapitan=={KAPITAN_VERSION}"]
        res = made if made.returncode else subprocess.run(pip, capture_output=True, text=True)
        if res.returncode != 0 or not exe.exists():
            shutil.rmtree(KAPITAN_VENV, ignore_errors=True)
            return None, f"pip install kapitan=={KAPITAN_VERSION} failed: {res.stderr.strip()[-300:]}"
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    if version.returncode != 0 or version.stdout.strip() != KAPITAN_VERSION:
        return None, f"{exe} --version: {(version.stdout + version.stderr).strip()[-300:]}"
    return [str(exe), "compile"], ""


def kapitan_run(cmd: list[str], workload: Path) -> Run:
    shutil.rmtree(workload / "kapitan" / "compiled", ignore_errors=True)
    return timed(cmd, workload / "kapitan")


def check_kapitan(workload: Path) -> str:
    res = subprocess.run(
        [sys.executable, str(WORKLOAD_TOOLS / "check_outputs.py"), "kapitan", str(workload)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise SystemExit(f"Kapitan's output check failed: {res.stdout[-3000:]}")
    return res.stdout.strip().splitlines()[-1]


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
    ap.add_argument("--runs", type=int, default=5, help="llmcc runs per mode (the median is reported)")
    ap.add_argument("--kapitan-runs", type=int, default=3, help="Kapitan runs per workload (median)")
    ap.add_argument("--no-kapitan", action="store_true", help="fixed Kapitan figures (bench/BASELINES.md)")
    ap.add_argument("--quick", action="store_true", help="small workload, one run; print only, RESULTS.md untouched")
    ap.add_argument("--no-client", action="store_true", help="skip the runtime client benchmark (bench/client.py)")
    ap.add_argument("--no-agent", action="store_true", help="skip the sidecar benchmark (bench/agent.py)")
    ap.add_argument("--no-shards", action="store_true", help="skip the sharding benchmark (bench/shards.py)")
    ap.add_argument("--agent-only", action="store_true", help="only bench/agent.py (the sidecar)")
    a = ap.parse_args()
    if a.agent_only:
        return subprocess.run([sys.executable, str(HERE / "agent.py")], check=False).returncode
    if a.quick:
        a.sizes, a.runs, a.kapitan_runs = "small", 1, 1
    # start-up first (issue 14 §1): a few seconds; its section of NOTES.md is copied into RESULTS.md below
    startup.main(["--runs", "3", "--print-only"] if a.quick else [])
    # incremental compile (issue 14 §2): the xlarge workload after small changes, cache warm
    incremental.main(["--runs", "1", "--print-only"] if a.quick else [])
    kapitan, why = (None, "--no-kapitan") if a.no_kapitan else kapitan_command()
    if kapitan is None:
        print(f"Kapitan cannot run here ({why}): using the fixed figures of bench/BASELINES.md", flush=True)
    rows = []
    for size in a.sizes.split(","):
        wl = generate(size)
        ours = wl / "ours"
        out = WORK / f"{size}-dist"
        n_targets = len(json.loads((wl / "expected" / "index.json").read_text())["targets"])
        modes = (("parallel (2 cores)", []), ("one process", ["-j", "1"]))
        ours_runs: dict[str, list[Run]] = {label: [] for label, _ in modes}
        kap_runs: list[Run] = []
        verdicts: dict[str, str] = {}
        # Round by round, so that a busy spell of the shared machine falls on both tools.
        for i in range(max(a.runs, a.kapitan_runs if kapitan else 0)):
            if kapitan and i < a.kapitan_runs:
                kap_runs.append(kapitan_run(kapitan, wl))
                if i == 0:
                    verdicts["kapitan"] = check_kapitan(wl)
            if i < a.runs:
                for label, extra in modes:
                    ours_runs[label].append(cold_compile(ours, out, extra))
                    if i == 0:
                        verdicts[label] = check(wl, out)
        kap = median(kap_runs) if kap_runs else None
        k_wall = kap.wall if kap else KAPITAN[size][0]
        for label, _ in modes:
            mine = median(ours_runs[label])
            row = Row(size, n_targets, label, mine, kap, k_wall, verdicts[label], verdicts.get("kapitan"))
            rows.append(row)
            print(row.line(), flush=True)
    if not a.no_shards:  # issue 14 §4: four shards of ~1,000 targets against one runner
        subprocess.run([sys.executable, str(HERE / "shards.py"), *(["--quick"] if a.quick else [])], check=True)
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
        write_results(rows, why)
    return 0


def _versus(ratio: float) -> str:
    """``3.2x faster than Kapitan``, or ``1.4x slower than Kapitan`` when it is."""
    return f"{ratio:5.1f}x faster than Kapitan" if ratio >= 1 else f"{1 / ratio:5.1f}x slower than Kapitan"


@dataclass(frozen=True)
class Row:
    size: str
    targets: int
    mode: str
    ours: Run
    kapitan: Run | None  # None: Kapitan did not run, k_wall is the fixed figure
    k_wall: float
    verdict: str
    k_verdict: str | None

    @property
    def ratio(self) -> float:
        return self.k_wall / self.ours.wall

    def line(self) -> str:
        k = self.kapitan
        kap = f"Kapitan {k.wall:6.2f} s {k.rss:4.0f} MiB/proc" if k else f"Kapitan {self.k_wall:6.2f} s (fixed figure)"
        return (
            f"{self.size:7} {self.targets:4} targets  {self.mode:18}  llmcc {self.ours.wall:6.2f} s "
            f"(CPU {self.ours.cpu:5.2f} s) "
            f"{self.ours.rss:4.0f} MiB/proc {self.ours.tree_rss:4.0f} MiB tree  {kap}  {_versus(self.ratio)}  "
            f"[{self.verdict}]"
        )


def _bar_lines(rows: list[Row]) -> list[str]:
    """The bars of issue 14 §3 for the default compile (two workers), met or not."""
    out = ["| bar (issue 14 §3, cold full compile, default: two workers) | measured | |", "|---|---:|---|"]
    for row in rows:
        if row.mode != "parallel (2 cores)":
            continue
        if row.size in BARS:
            met = "met" if row.ratio >= BARS[row.size] else "**not met**"
            fixed = "" if row.kapitan else " (fixed Kapitan figure)"
            out.append(f"| {row.size}: >= {BARS[row.size]:.0f}x Kapitan | {row.ratio:.1f}x{fixed} | {met} |")
        if row.size == "xlarge":
            met = "met" if row.ours.rss <= RSS_BAR_MIB else "**not met**"
            out.append(f"| xlarge: peak RSS per process <= {RSS_BAR_MIB:.0f} MiB | {row.ours.rss:.0f} MiB | {met} |")
    return out if len(out) > 2 else []


def write_results(rows: list[Row], why_fixed: str = "") -> None:
    kapitan_note = (
        f"Kapitan {KAPITAN_VERSION} (PyPI, bench/.kapitan-venv) timed in the same run on the generator's "
        "Kapitan project, round by round with llmcc, its output checked the same way."
        if not why_fixed
        else f"Kapitan could not run ({why_fixed}): its figures are the fixed ones of `bench/BASELINES.md`."
    )
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`bench/run.py`); do not edit by hand.",
        "",
        "Workloads from `bench/workload/gen_workload.py --modules 20 --keys 500 --secrets 0`",
        "(`--tenants 25`: large, `--tenants 100`: xlarge), each committed in a fresh git repository.",
        "Every llmcc run is a cold, full compile: `llmcc compile --no-cache` with no `.llmcc/` in",
        "the workload, so every target is rendered, validated and written and no result cache is",
        "read (the cache's figures are in the incremental section below).",
        "Time is the wall time of the whole process (median of the runs, full schema validation,",
        "bundles written) and its CPU time (user + system of the process and its workers);",
        "memory is the peak RSS of the largest single process (per process) and",
        "the peak of the process tree's sum (tree). Every llmcc bundle and every Kapitan output is",
        "checked against the generator's expected output (`check_outputs.py`).",
        kapitan_note,
        f"Machine: {os.cpu_count()} cores, shared; load average (1 min) at the end: {os.getloadavg()[0]:.1f}.",
        "",
        *_bar_lines(rows),
        "",
        "| workload | targets | mode | llmcc wall | llmcc CPU | llmcc RSS per process / tree | Kapitan wall "
        "| Kapitan CPU | Kapitan RSS per process / tree | speed-up | output |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        k = r.kapitan
        k_wall = f"{k.wall:.2f} s" if k else f"{r.k_wall:.0f} s (fixed)"
        k_cpu = f"{k.cpu:.2f} s" if k else "-"
        k_rss = f"{k.rss:.0f} / {k.tree_rss:.0f} MiB" if k else "-"
        out = r.verdict if r.k_verdict is None else f"llmcc {r.verdict}; Kapitan {r.k_verdict}"
        lines.append(
            f"| {r.size} | {r.targets} | {r.mode} | {r.ours.wall:.2f} s | {r.ours.cpu:.2f} s "
            f"| {r.ours.rss:.0f} / {r.ours.tree_rss:.0f} MiB | {k_wall} | {k_cpu} | {k_rss} | {r.ratio:.1f}x | {out} |"
        )
    extra = HERE / "NOTES.md"
    if extra.exists():
        lines += ["", extra.read_text().strip()]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
