"""The canary sweep in tests/conftest.py fires: a leaked canary fails the run it leaks in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PROBES = {
    "printed": "def test_probe():\n    print({canary!r})\n",
    "read_with_capsys": "def test_probe(capsys):\n    print({canary!r})\n    capsys.readouterr()\n",
    "in_an_exception": (
        "import pytest\n\ndef test_probe():\n"
        "    with pytest.raises(ValueError):\n        raise ValueError({canary!r})\n"
    ),
    "in_a_file": "def test_probe(tmp_path):\n    (tmp_path / 'dist.json').write_text({canary!r})\n",
}


def _run(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(body)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "--basetemp",
            str(tmp_path / "basetemp"),
            str(tmp_path / "test_probe.py"),
        ],
        cwd=REPO_ROOT,
        # the probe module's bytecode would hold its canary: a fresh machine writes it (the sweep then
        # finds the canary in the probe's __pycache__ and fails the outer run)
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("kind", sorted(PROBES))
def test_a_leaked_canary_fails_the_run(tmp_path: Path, kind: str) -> None:
    canary = f"canary-{uuid.uuid4()}"
    proc = _run(tmp_path, PROBES[kind].format(canary=canary))
    assert proc.returncode == 1, proc.stdout
    assert "canary sweep: 1 plaintext secret leak(s)" in proc.stdout
    # the sweep names the leak; the probe's own temp dir is removed so the outer sweep stays clean
    shutil.rmtree(tmp_path / "basetemp")
    (tmp_path / "test_probe.py").unlink()


def test_a_clean_run_passes(tmp_path: Path) -> None:
    proc = _run(tmp_path, "def test_probe():\n    print('no secrets here')\n")
    assert proc.returncode == 0, proc.stdout
