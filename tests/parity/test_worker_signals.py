"""A -j compile whose parent is killed (SIGKILL) or terminated (SIGTERM) mid-run (issue 14, fail-closed leftovers).

Before: after SIGKILL of the parent each busy worker finished its task, found
the result pipe closed and printed a ``BrokenPipeError`` traceback; SIGTERM
ended the parent with no word and left the workers compiling. Now the workers
die with their parent, quietly, and SIGTERM is exit 143 with one line.

A real ``llmcc`` process in its own process group; the signal is sent once the
first bundle of the run is on disk. ``communicate`` returns when every process
holding the stderr pipe (the workers too) has ended, so the stderr read is the
whole group's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.distdir import STAGING_PREFIX
from tests.core._repos import many_targets_repo

_HANG_GUARD_S = 120  # not a timing assertion: a group that never ends fails instead of hanging the suite


def _compile(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "compiler", "-C", str(root), "compile", "--no-cache", "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _busy(out: Path, proc: subprocess.Popen[bytes]) -> bool:
    while proc.poll() is None:
        if any(out.glob(f"{STAGING_PREFIX}*/*.bundle.json")):
            return True
        os.sched_yield()
    return False


def _group_gone(pgid: int) -> bool:
    deadline = time.monotonic() + _HANG_GUARD_S
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)
    return False


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return many_targets_repo(tmp_path_factory.mktemp("signals") / "repo", tenants=99)


@pytest.mark.parametrize(
    ("sig", "whole_group"),
    [(signal.SIGKILL, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["kill-parent", "term-parent", "term-group"],
)
def test_workers_end_quietly_with_their_parent(repo: Path, sig: signal.Signals, whole_group: bool) -> None:
    shutil.rmtree(repo / "dist", ignore_errors=True)  # no staging directory left by the run before
    proc = _compile(repo)
    assert _busy(repo / "dist", proc), "the compile ended before a bundle was written"
    (os.killpg if whole_group else os.kill)(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=_HANG_GUARD_S)
    assert _group_gone(proc.pid), "a worker of the killed compile is still running"
    err = stderr.decode()
    assert "Traceback" not in err, err
    assert "Error" not in err, err
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        assert err == ""
    else:
        assert proc.returncode == 143
        assert err.splitlines() == ["llmcc: terminated"]
        assert list((repo / "dist").glob("*")) == []  # as after Ctrl-C: no bundle of the run, no staging
    assert stdout == b""
