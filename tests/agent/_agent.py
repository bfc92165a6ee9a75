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
    uds: Path | None = None

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.HTTPTransport(uds=str(self.uds)) if self.uds is not None else None
        return httpx.Client(base_url=self.base, headers=headers, transport=transport, timeout=10)

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
    listen = f"127.0.0.1:{free_port()}"
    if "--listen" in args:
        listen = args[args.index("--listen") + 1]
    elif socket_path is None:
        args = (*args, "--listen", listen)
    where = ("--socket", str(socket_path)) if socket_path is not None else ()
    out = log.open("ab")
    proc = subprocess.Popen(llmcc_argv("agent", *args, *where), cwd=cwd, stdout=out, stderr=out, env=env or child_env())
    out.close()
    base = "http://agent" if socket_path is not None else f"http://{listen}"
    agent = Agent(proc, base, log, socket_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return agent
        if _answers(agent):
            return agent
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the agent did not start: {agent.log_text()}")


def _answers(agent: Agent) -> bool:
    # probed with a plain socket first: httpcore leaks the socket of a failed unix-socket connect
    family, address = (socket.AF_UNIX, str(agent.uds)) if agent.uds else (socket.AF_INET, _host_port(agent.base))
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(address)
            probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
            return probe.recv(16).startswith(b"HTTP/1.1 ")
        except OSError:
            return False


def _host_port(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").rpartition(":")
    return host, int(port)


def status(agent: Agent, token: str, path: str = "/healthz") -> int:
    with agent.client(token) as c:
        return c.get(path).status_code


@contextlib.contextmanager
def running(agent: Agent) -> Iterator[Agent]:
    try:
        yield agent
    finally:
        if agent.proc.poll() is None:
            agent.proc.terminate()  # SIGTERM: the agent exits and its coverage data is saved
            try:
                agent.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                agent.proc.kill()
                agent.proc.wait()
