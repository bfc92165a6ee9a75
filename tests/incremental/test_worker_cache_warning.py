"""A cache write that fails inside a ``-j`` worker is warned about once, as in a serial run.

The workers parse the tenant files and keep them in the result cache; the
parent writes the targets' entries after them. Only the worker's write fails
here: the directory its entry goes into is read-only for real (``chmod``, or
``chattr +i`` for root, whom modes do not stop), and every directory the parent
writes into is not (found by a first run on a copy of the cache). Before, the
worker's failure died with the worker: exit 0 and no word of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from compiler.incremental.parsed import document_key
from compiler.incremental.store import CACHE_DIR
from tests.core._repos import many_targets_repo

TENANT = "environments/tenants/t00.yaml"


def llmcc(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LLMCC_NO_CACHE"}
    return subprocess.run(
        [sys.executable, "-m", "compiler", "-C", str(root), *argv], capture_output=True, text=True, env=env, check=False
    )


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` made read-only for this user, for real; restored afterwards."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(0o700)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(directory)], check=False).returncode:
        pytest.skip("running as root without chattr +i: no directory is read-only for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_a_cache_write_that_fails_in_a_worker_warns_once(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=4)  # 11 targets: -j 4 forks workers
    assert llmcc(root, "compile", "-q", "-j", "4").returncode == 0
    cache = root / CACHE_DIR
    kept = tmp_path / "cache-before"
    shutil.copytree(cache, kept)
    base = (root / TENANT).read_text()
    for attempt in range(50):
        # the edited tenant file, parsed by a worker, goes to the directory named by its key
        text = f"{base}# edit {attempt}\n"
        (root / TENANT).write_text(text)
        key = document_key(text.encode(), path=TENANT, layer="tenants/t00", rev=None, quote_values=True)
        worker_dir = cache / "v1" / key[:2]
        # where the parent writes in this run: every new file but the worker's entry
        before = files_under(cache)
        assert llmcc(root, "compile", "-q", "-j", "4").returncode == 0
        written = files_under(cache) - before
        assert worker_dir / f"{key}.json" in written  # the worker kept the parsed file
        shutil.rmtree(cache)
        shutil.copytree(kept, cache)
        if not any(p.parent == worker_dir for p in written - {worker_dir / f"{key}.json"}):
            break
    else:  # pragma: no cover - 50 draws of a 1-in-256 directory
        pytest.fail("the parent wrote into the worker's directory every time")
    worker_dir.mkdir(mode=0o700, exist_ok=True)
    with read_only(worker_dir):
        done = llmcc(root, "compile", "-j", "4")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"llmcc: warning: {cache}: {os.strerror(13 if os.geteuid() else 1)}: results of this run were not all kept "
        "in the result cache"
    ]
    assert "Traceback" not in done.stderr
    assert len(list((root / "dist").glob("*.bundle.json"))) == 11
    assert not (worker_dir / f"{key}.json").exists()
