"""The templates' install step, run as written against a tagged local copy of this repository.

No package index serves ``llm-config-compiler``: every template installs the
commit ``$LLMCC_COMMIT`` (the one tag ``v$LLMCC_VERSION`` names; a tag can be
moved) of the llmcc git repository at ``$LLMCC_GIT`` with pip, then checks
``llmcc --version`` is ``$LLMCC_VERSION``.
``tagged_remote`` makes ``LLMCC_GIT``: a bare clone of a repository's HEAD,
tagged as the templates pin (whatever tags the repository itself has: a
release tag ``v0.1.0`` on an older commit must not make the step install that
commit instead of the code under test). ``install_release`` runs the step in a
fresh virtual environment (pip's cache and the machine's wheel sources make it
take seconds, not minutes); the session fixture ``llmcc_release`` (re-exported
by tests/conftest.py) does it once for every test that needs a "runner".
"""

from __future__ import annotations

import os
import subprocess
import venv
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from compiler import __version__
from tests.ci._runner import VERSION_CHECK, is_install

# what every template's install step says (tests/ci/test_install.py checks all seven)
STEP = f'python -m pip install "llm-config-compiler[cli] @ git+${{LLMCC_GIT}}@${{LLMCC_COMMIT}}"\n{VERSION_CHECK}\n'


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def tagged_remote(source: Path, dest: Path, version: str = __version__) -> Path:
    """A bare clone of ``source`` with ``v<version>`` on ``source``'s HEAD, and no other tag."""
    head = _git(source, "rev-parse", "HEAD")
    subprocess.run(["git", "clone", "-q", "--bare", "--no-tags", str(source), str(dest)], check=True)
    _git(dest, "tag", f"v{version}", head)
    return dest


def git_url(remote: Path) -> str:
    """``LLMCC_GIT`` for a local bare repository."""
    # file://localhost/...: pip's URL parser wants a host in a git+file URL; git ignores it
    return f"file://localhost{remote}"


@dataclass(frozen=True)
class Release:
    """llmcc as a runner has it after the install step: ``bin`` goes first on PATH."""

    remote: Path  # LLMCC_GIT's repository
    commit: str  # LLMCC_COMMIT: the commit under test, tagged v<version> in ``remote``
    env_dir: Path  # the fresh virtual environment the step installed into
    step: subprocess.CompletedProcess[str]  # the install step's run

    @property
    def bin(self) -> Path:
        return self.env_dir / "bin"

    def env(self) -> dict[str, str]:
        """os.environ with the step's variables and this environment first on PATH."""
        env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "LLMCC_GIT": git_url(self.remote),
            "LLMCC_VERSION": __version__,
            "LLMCC_COMMIT": self.commit,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        env.pop("VIRTUAL_ENV", None)
        return env


def install_release(source: Path, base: Path, command: str = STEP) -> Release:
    """Run the install step ``command`` (bash, as a runner does): LLMCC_GIT a tagged clone of ``source``,
    LLMCC_COMMIT its HEAD (what the templates name, for the release they pin)."""
    assert is_install(command), command
    remote = tagged_remote(source, base / "llmcc.git")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    release = Release(remote, _git(source, "rev-parse", "HEAD"), env_dir, subprocess.CompletedProcess([], 0))
    return replace(release, step=_run(command, release.env()))


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", command], env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="session")
def llmcc_release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """This repository's HEAD, installed once per session by the templates' install step."""
    from tests.conftest import REPO_ROOT

    return install_release(REPO_ROOT, tmp_path_factory.mktemp("release"))
