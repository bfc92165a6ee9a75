#!/usr/bin/env python3
"""Start-up benchmark (issue 14 §1): whole-process wall time of light commands, median of --runs.

Goals: `llmcc --version` and `llmcc --help` <= 60 ms; `llmcc validate` of the example
repository without an identity <= 0.25 s; `llmcc hook validate FILE` after a one-file
change <= 0.3 s (issue 14 §2; the change: one value in `environments/dev.yaml`, staged as
pre-commit passes it). `validate` is timed with its result cache warm (the warm-up run
fills `.llmcc/cache/`, as a developer's earlier run would) and with `--no-cache` (a fresh
CI checkout without a restored cache). Each command runs as a fresh process, the way a shell or a
pre-commit hook starts it (the console script `llmcc` next to this Python, else
`python -m compiler`); stdout and stderr are discarded. A warm-up run first, so the
figures are not those of a cold page cache. Before each `hook validate` the result cache is
put back as a validate of the commit before the change left it (else every run after the
first read the changed targets' findings from the cache its own last run filled).

Writes its section of bench/NOTES.md (bench/run.py copies NOTES.md into RESULTS.md) and
refreshes the same section of bench/RESULTS.md when it is there.

    .venv/bin/python bench/startup.py [--runs 15] [--print-only]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from _sections import write_section  # bench/_sections.py (scripts run with bench/ on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEGIN, END = "<!-- startup:begin -->", "<!-- startup:end -->"
EXAMPLE_FILES = ("llmcc.yaml", ".sops.yaml", "environments", "templates", "schemas", "policies", "keys")


def llmcc() -> list[str]:
    script = Path(sys.executable).with_name("llmcc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "compiler"]


def example_copy(dest: Path) -> Path:
    """The example repository without its private demo keys, in a git repository of its own."""
    dest.mkdir(parents=True)
    for name in EXAMPLE_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("*.agekey", "*.pem"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
    env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "example"]):
        subprocess.run(["git", *args], cwd=dest, check=True, env=env)
    return dest


def one_file_change(repo: Path) -> str:
    """Change one value of the example's ``environments/dev.yaml`` and stage it; the file, as pre-commit passes it."""
    layer = repo / "environments/dev.yaml"
    text = layer.read_text()
    changed = text.replace("replicas: 1", "replicas: 2", 1)
    if changed == text:
        raise SystemExit(f"{layer}: no 'replicas: 1' to change (the example changed: update bench/startup.py)")
    layer.write_text(changed)
    subprocess.run(["git", "add", "environments/dev.yaml"], cwd=repo, check=True)
    return "environments/dev.yaml"


def cache_before_change(repo: Path, env: dict[str, str]) -> Callable[[], None]:
    """Fill ``repo``'s result cache with a validate of its commit; the returned function puts it back so."""
    subprocess.run([*llmcc(), "-C", str(repo), "validate"], env=env, capture_output=True, check=False)
    kept = repo.parent / f"{repo.name}.llmcc-before"
    shutil.copytree(repo / ".llmcc", kept)

    def restore() -> None:
        shutil.rmtree(repo / ".llmcc", ignore_errors=True)
        shutil.copytree(kept, repo / ".llmcc")

    return restore


def median_times(
    cmd: Sequence[str],
    runs: int,
    env: dict[str, str],
    cwd: Path | None = None,
    before_each: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (user + system) of ``runs`` fresh processes, after one warm-up.

    ``before_each`` runs, untimed, before every run (the warm-up's too).
    CPU time is what a busy machine inflates least; wall time is the bar.
    """
    walls, cpus = [], []
    for n in range(runs + 1):
        if before_each is not None:
            before_each()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        took = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
        if n:
            walls.append(took)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def modules_imported(cmd: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> int:
    """How many modules the command imports (``python -X importtime``: one stderr line each); load-independent."""
    if Path(cmd[0]).name == "llmcc":
        cmd = [sys.executable, "-m", "compiler", *cmd[1:]]
    argv = [cmd[0], "-X", "importtime", *cmd[1:]]
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    return sum(1 for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line) - 1


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--print-only", action="store_true", help="print, leave NOTES.md untouched")
    a = ap.parse_args(argv)
    # no identity: validate reads SOPS files as ciphertext, as a hook without keys does
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_AGE_")}
    # as installed: bytecode cached (a sandbox's PYTHONDONTWRITEBYTECODE=1 recompiles every module, ~0.1 s)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="llmcc-bench-config-")  # no sops keys.txt either
    base = llmcc()
    with tempfile.TemporaryDirectory(prefix="llmcc-bench-startup-") as tmp:
        repo = example_copy(Path(tmp) / "example")
        changed = example_copy(Path(tmp) / "changed")
        restore = cache_before_change(changed, env)
        hook = [*base, "hook", "validate", one_file_change(changed)]
        cases: list[tuple[str, list[str], float | None, Path | None]] = [
            ("`python -c pass` (the interpreter alone, for scale)", [sys.executable, "-c", "pass"], None, None),
            ("`llmcc --version`", [*base, "--version"], 0.060, None),
            ("`llmcc --help`", [*base, "--help"], 0.060, None),
            ("`llmcc validate --help`", [*base, "validate", "--help"], None, None),
            ("`llmcc validate` (example repository, no identity)", [*base, "-C", str(repo), "validate"], 0.25, None),
            (
                "`llmcc validate --no-cache` (the same, result cache skipped)",
                [*base, "-C", str(repo), "validate", "--no-cache"],
                0.25,
                None,
            ),
            ("`llmcc hook validate FILE` (one value changed in dev.yaml)", hook, 0.30, changed),
        ]
        rows = []
        for label, cmd, goal, cwd in cases:
            wall, cpu = median_times(cmd, a.runs, env, cwd, restore if cwd == changed else None)
            count = modules_imported(cmd, env, cwd)
            rows.append((label, wall, cpu, goal, count))
            verdict = "" if goal is None else ("  ok" if wall <= goal else f"  over the {goal * 1000:.0f} ms goal")
            times = f"{wall * 1000:5.0f} ms wall {cpu * 1000:5.0f} ms CPU"
            print(f"{label:62} {times} {count:4} modules{verdict}", flush=True)
    shutil.rmtree(env["XDG_CONFIG_HOME"], ignore_errors=True)
    if not a.print_only:
        write_notes(rows, a.runs)
    return 0


def write_notes(rows: list[tuple[str, float, float, float | None, int]], runs: int) -> None:
    load = os.getloadavg()[0]
    lines = [
        BEGIN,
        "## Start-up (`bench/startup.py`)",
        "",
        f"Whole-process wall time and CPU time (user + system), medians of {runs} runs after a warm-up, on",
        "this machine class (2 cores), and the number of modules the command imports (`-X importtime`:",
        f"the same on any machine). Load average (1 min) when measured: {load:.1f}; on a busy machine the",
        "wall times say little (the CPU times less so). The goals are wall times.",
        "",
        "| command | wall | CPU | goal | modules imported |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {label} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms "
            f"| {'' if goal is None else f'{goal * 1000:.0f} ms'} | {count} |"
            for label, wall, cpu, goal, count in rows
        ),
        END,
    ]
    section = "\n".join(lines)
    write_section(HERE / "NOTES.md", section, BEGIN, END)
    write_section(HERE / "RESULTS.md", section, BEGIN, END, create=False)  # refreshed when it is there


if __name__ == "__main__":
    raise SystemExit(main())
