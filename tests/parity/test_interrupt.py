"""Ctrl-C during a parallel compile: one line, exit 130, and no bundle of the run left (issue 10 §7).

A real ``llmcc`` process, a real SIGINT sent to its whole process group (as a
terminal's Ctrl-C does), sent once the first bundle of the run exists on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.distdir import STAGING_PREFIX
from tests.core._repos import many_targets_repo


def _llmcc(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "compiler", "-C", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, like a job in a terminal
    )


def _first_staged_bundle(out: Path, proc: subprocess.Popen[bytes]) -> bool:
    """Wait until a bundle of this run is on disk; False if the process ended first."""
    while proc.poll() is None:
        if any(out.glob(f"{STAGING_PREFIX}*/*.bundle.json")):
            return True
        os.sched_yield()
    return False


@pytest.mark.parametrize("jobs", ["2", "1"])
def test_sigint_leaves_no_bundle_of_the_run(tmp_path: Path, jobs: str) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=99)
    out = root / "dist"
    first = subprocess.run(
        [sys.executable, "-m", "compiler", "-C", str(root), "compile", "-q"], capture_output=True, check=False
    )
    assert first.returncode == 0, first.stderr
    before = sorted(p.name for p in out.iterdir())
    assert len(before) == 201
    (root / "environments/dev.yaml").write_text("vars:\n  model: other\n")

    # --no-cache: every target is built again, so the run is still going when its first bundle lands
    # (with the cache only dev's target is, and a fast run could end before the signal arrives)
    proc = _llmcc(root, "compile", "--no-cache", "-j", jobs)
    assert _first_staged_bundle(out, proc), "the compile ended before a bundle was written"
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate()

    assert proc.returncode == 130
    assert stderr.decode().splitlines()[-1:] == ["llmcc: interrupted"]
    assert b"Traceback" not in stderr
    assert stdout == b""
    # Neither the old bundles nor any new one: nothing a later step could take for this run's output.
    assert list(out.iterdir()) == []
