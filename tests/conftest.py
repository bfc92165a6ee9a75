"""Suite-wide fixtures: real git repositories in temp dirs, no outside network, the example repo."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from _pytest._code import ExceptionInfo
from _pytest.capture import CaptureFixture

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_FILES = [".sops.yaml", "llmcc.yaml", "schemas", "templates", "environments", "keys", "policies"]
DEMO_IDENTITY = REPO_ROOT / "keys" / "demo.agekey"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Author",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Author",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    home = tmp_path_factory.getbasetemp() / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))  # pull's high-water marks
    for var in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "LLMCC_SIGNING_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)


# CI markers: publish refuses a store inside the work tree on a CI runner (compiler/cli/_store.py
# in_ci), and `.ci/run` runs the suite with CI=true. Cleared for the whole session, before any
# fixture of any scope runs (a module-scoped fixture runs before a function-scoped autouse one);
# tests that mean CI set it themselves.
for _var in ("CI", "TF_BUILD", "JENKINS_URL"):
    os.environ.pop(_var, None)


_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else address
    inet = self.family in (socket.AF_INET, socket.AF_INET6)
    if inet and isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")):
        raise OSError(f"tests may not reach the network: {host}")
    return _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside network is blocked; loopback stays open for the servers tests start."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@dataclass
class GitRepo:
    path: Path

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **(env or {})},
        )
        return proc.stdout

    def write(self, rel: str, text: str) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        return p

    def commit(self, message: str, *, author: str | None = None, date: str | None = None) -> str:
        self.git("add", "-A")
        env = {}
        if author:
            name, _, email = author.partition(" <")
            env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email.rstrip(">"))
        if date:
            env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        self.git("commit", "-q", "-m", message, env=env)
        return self.git("rev-parse", "HEAD").strip()


def init_repo(path: Path) -> GitRepo:
    path.mkdir(parents=True, exist_ok=True)
    repo = GitRepo(path)
    repo.git("init", "-q", "-b", "main")
    return repo


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """An empty git repository with a fixed author."""
    return init_repo(tmp_path / "repo")


def copy_example(dest: Path) -> Path:
    """A copy of this project's example config repository (no compiler/, no tests/)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLE_FILES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def replace_placeholder(root: Path, identity: Path) -> None:
    """Set a generated API key where ``llmcc init`` left its placeholder (an error in prod)."""
    from compiler.cli import main

    rotate = ["secrets", "rotate", "assistant.api_key", "--target", "prod", "--generate", "40"]
    assert main(["-q", "-C", str(root), *rotate, "--identity", str(identity)]) == 0


@pytest.fixture
def example_repo(tmp_path: Path) -> GitRepo:
    """The example config repository, committed once in a fresh git repository."""
    repo = init_repo(tmp_path / "example")
    copy_example(repo.path)
    repo.commit("Example platform config")
    return repo


@pytest.fixture
def demo_identity(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_IDENTITY))
    return DEMO_IDENTITY


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)


# --- the canary sweep (issue 3) -----------------------------------------------------------------
# Every secret a test plants is a canary: "canary-" + a uuid4 (tests/secrets/_secrets_support.py,
# tests/diff, tests/audit). After the whole suite none may appear in any file under pytest's temp
# dirs (dist/, stores, repos), in captured stdout/stderr/logs, in output a test read with
# capsys/capfd, or in an exception message -- unless a test is marked `reveals_secrets` (it asked
# for plaintext on purpose, e.g. `pull --decrypt`): its captured output is then not swept.

CANARY = re.compile(r"canary-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
CANARY_BYTES = re.compile(CANARY.pattern.encode())
LEAKS: list[str] = []
_REVEALING: list[bool] = [False]


def _scan(text: object, where: str) -> None:
    if _REVEALING[0]:
        return
    for m in CANARY.finditer(str(text)):
        LEAKS.append(f"{where}: {m.group(0)}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reveals_secrets: the test prints plaintext secrets on purpose")
    original_readouterr = CaptureFixture.readouterr

    def readouterr(self: CaptureFixture[str]) -> object:
        result = original_readouterr(self)
        _scan(f"{result.out}{result.err}", "output read with capsys/capfd")
        return result

    CaptureFixture.readouterr = readouterr  # type: ignore[method-assign,assignment]
    original_fill = ExceptionInfo.fill_unfilled

    def fill_unfilled(self: ExceptionInfo[BaseException], exc_info: tuple) -> None:  # type: ignore[type-arg]
        original_fill(self, exc_info)
        _scan(exc_info[1], "exception message")

    ExceptionInfo.fill_unfilled = fill_unfilled  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    _REVEALING[0] = item.get_closest_marker("reveals_secrets") is not None
    try:
        return (yield)
    finally:
        _REVEALING[0] = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if item.get_closest_marker("reveals_secrets") is None:
        for name, content in report.sections:
            _scan(content, f"{item.nodeid} {name}")
        if report.longrepr is not None:
            _scan(report.longrepr, f"{item.nodeid} failure report")
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = factory.getbasetemp() if factory is not None else None
    if base is not None and base.exists():
        for path in base.rglob("*"):
            if path.is_file() and not path.is_symlink():
                for m in CANARY_BYTES.finditer(path.read_bytes()):
                    LEAKS.append(f"{path}: {m.group(0).decode()}")
    if LEAKS:
        unique = sorted(set(LEAKS))
        print(f"\ncanary sweep: {len(unique)} plaintext secret leak(s):", *unique[:20], sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# llmcc installed by the CI templates' install step from a tagged local copy of this repository,
# once per session (tests/ci/test_install.py, tests/e2e/).
from tests.ci._install import llmcc_release  # noqa: E402

__all__ = ["llmcc_release"]
