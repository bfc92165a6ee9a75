"""Running a real ``llmcc agent`` process in tests, and a published example store to point it at."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT

SIGNING_KEY = REPO_ROOT / "keys" / "demo-signing.pem"
TRUSTED_KEY = REPO_ROOT / "keys" / "demo-signing.pub"


def llmcc_argv(*args: str) -> list[str]:
    """``python -m compiler ARGS``; under coverage, run so that the child's lines count too."""
    with contextlib.suppress(ImportError):
        import coverage

        if coverage.Coverage.current() is not None:
            return [
                sys.executable, "-m", "coverage", "run", f"--rcfile={REPO_ROOT / 'pyproject.toml'}",
                "-m", "compiler", *args,
            ]  # fmt: skip
    return [sys.executable, "-m", "compiler", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "LLMCC_"))}
    env["COVERAGE_FILE"] = str(REPO_ROOT / ".coverage")
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_tokens(path: Path, *, secrets_scope: bool = True) -> tuple[str, str]:
    """A token file (0600) with a read token and a secrets token; both tokens."""
    read, full = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    path.write_text(f"# test tokens\n{read}\n{full}{' secrets' if secrets_scope else ''}\n")
    path.chmod(0o600)
    return read, full


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path
    transport: httpx.HTTPTransport | None = None

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, transport=self.transport, timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=30)


def start_agent(
    cwd: Path, log: Path, *args: str, socket_path: Path | None = None, env: dict[str, str] | None = None
) -> Agent:
    """Start ``llmcc agent ARGS`` in ``cwd`` and wait until /healthz answers (any status)."""
    port = None
    if socket_path is None and not any(a.startswith("--listen") for a in args):
        port = free_port()
        args = (*args, "--listen", f"127.0.0.1:{port}")
    where = ("--socket", str(socket_path)) if socket_path is not None else ()
    out = log.open("ab")
    proc = subprocess.Popen(llmcc_argv("agent", *args, *where), cwd=cwd, stdout=out, stderr=out, env=env or child_env())
    out.close()
    transport = httpx.HTTPTransport(uds=str(socket_path)) if socket_path is not None else None
    base = "http://agent" if socket_path is not None else f"http://127.0.0.1:{port}"
    agent = Agent(proc, base, log, transport)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return agent
        try:
            with agent.client(None) as c:
                c.get("/healthz")
            return agent
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the agent did not start: {agent.log_text()}")


@contextlib.contextmanager
def running(agent: Agent) -> Iterator[Agent]:
    try:
        yield agent
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()
