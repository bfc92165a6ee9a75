"""The full-compile benchmark times a cold compile, not result-cache hits (issue 14 §3).

``llmcc compile`` without ``--no-cache`` reads ``.llmcc/cache/``: from its second
run on, bench/run.py timed cache hits (a large workload "0.26 s, 65x Kapitan"
where the compile takes about 1 s). These run the benchmark's own functions on a
small repository; no timing is asserted.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT
from tests.core._repos import mini_repo

BENCH = REPO_ROOT / "bench"


@pytest.fixture
def bench_run() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))  # the scripts import their neighbours (bench/ is sys.path[0] when run)
    try:
        yield importlib.import_module("run")
    finally:
        sys.path.remove(str(BENCH))


def test_every_timed_compile_is_cold_and_leaves_no_result_cache(tmp_path: Path, bench_run: ModuleType) -> None:
    root = mini_repo(tmp_path / "repo")
    (root / ".llmcc" / "cache").mkdir(parents=True)
    (root / ".llmcc" / "cache" / "left-over").write_text("from an earlier command")
    for _ in range(2):  # the second run is where cache hits used to be timed
        run = bench_run.cold_compile(root, tmp_path / "out", [])
        assert not (root / ".llmcc").exists()  # neither read (removed first) nor filled (--no-cache)
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
            "dev.bundle.json",
            "prod.bundle.json",
            "prod@acme.bundle.json",
            "staging.bundle.json",
            "staging@acme.bundle.json",
        ]
        assert run.cpu > 0
        assert run.wall > 0
    assert "--no-cache" in bench_run.compile_command(root, tmp_path / "out", ["-j", "1"])


def test_the_diff_benchmark_compares_with_a_cold_compile() -> None:
    text = (BENCH / "diff_history.py").read_text()
    assert 'llmcc("compile", repo, "-q", "--no-cache"' in text


@pytest.fixture
def bench_startup() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("startup")
    finally:
        sys.path.remove(str(BENCH))


def test_the_startup_bench_validates_without_the_cache_and_hooks_after_a_change(
    tmp_path: Path, bench_startup: ModuleType
) -> None:
    """``validate`` (bar: no cache) is timed with ``--no-cache``; each ``hook validate`` after a one-file
    change starts from the cache of the commit before it, not from the one its own last run filled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_AGE_")}
    repo = bench_startup.example_copy(tmp_path / "example")
    bench_startup.median_times([*bench_startup.llmcc(), "-C", str(repo), "validate", "--no-cache"], 1, env)
    assert not (repo / ".llmcc").exists()
    assert '"validate", "--no-cache"]' in (BENCH / "startup.py").read_text()
    changed = bench_startup.example_copy(tmp_path / "changed")
    restore = bench_startup.cache_before_change(changed, env)
    before = sorted(p.relative_to(changed) for p in (changed / ".llmcc").rglob("*"))
    assert before
    bench_startup.one_file_change(changed)
    hook = [*bench_startup.llmcc(), "hook", "validate", "environments/dev.yaml"]
    bench_startup.median_times(hook, 1, env, changed, restore)
    assert sorted(p.relative_to(changed) for p in (changed / ".llmcc").rglob("*")) != before  # the run stored
    restore()
    assert sorted(p.relative_to(changed) for p in (changed / ".llmcc").rglob("*")) == before
