"""Stores on real backends: a directory, a moto S3 server and a docker-registry, on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from tests.secrets._secrets_support import new_canary
from tests.services import Service, start_moto, start_registry
from tests.storage._oci_auth import Pki, TokenServer, htpasswd, make_pki
from tests.storage._support import KeyPair, StoreSpec, new_keypair

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_moto(tmp_path_factory.mktemp("moto"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_registry(tmp_path_factory.mktemp("registry"))
    yield service
    service.stop()


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials only; no profile, config file or endpoint from the outside environment."""
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    for k, v in FAKE_AWS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def _s3_spec(moto: Service) -> StoreSpec:
    bucket = f"llmcc-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client("s3", endpoint_url=moto.url).create_bucket(Bucket=bucket)
    return StoreSpec(kind="s3", bucket=bucket, prefix="bundles", endpoint_url=moto.url)


def _oci_spec(registry: Service, tmp_path: Path) -> StoreSpec:
    return StoreSpec(
        kind="oci",
        registry=registry.host,
        repository=f"llmcc/test-{uuid.uuid4().hex[:12]}",
        lock_dir=str(tmp_path / "locks"),
    )


@pytest.fixture(params=["file", "s3", "oci"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    """An empty store on each backend in turn."""
    if request.param == "file":
        (tmp_path / "store").mkdir()  # empty, like the bucket and the repository (a missing one is no store)
        return StoreSpec(kind="file", path=str(tmp_path / "store"))
    if request.param == "s3":
        request.getfixturevalue("fake_aws")
        return _s3_spec(request.getfixturevalue("moto_server"))
    return _oci_spec(request.getfixturevalue("registry"), tmp_path)


@pytest.fixture
def s3_spec(fake_aws: None, moto_server: Service) -> StoreSpec:
    return _s3_spec(moto_server)


@pytest.fixture
def oci_spec(registry: Service, tmp_path: Path) -> StoreSpec:
    return _oci_spec(registry, tmp_path)


@pytest.fixture(scope="session")
def keypair() -> KeyPair:
    return new_keypair()


@pytest.fixture(scope="session")
def other_keypair() -> KeyPair:
    return new_keypair()


# --- registries that need auth (issue 13 §5): TLS with a private CA, htpasswd, a token service ---


@dataclass(frozen=True)
class AuthRegistry:
    """A registry behind TLS signed by ``pki.ca`` that accepts ``user``/``password`` (a canary)."""

    service: Service
    pki: Pki
    user: str
    password: str = field(repr=False)
    token_server: TokenServer | None = None
    refresh_token: str = field(default="", repr=False)

    def store_url(self) -> str:
        return f"oci://{self.service.host}/llmcc/auth-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[AuthRegistry]:
    """docker-registry with htpasswd auth and TLS."""
    tmp = tmp_path_factory.mktemp("basic-registry")
    password = new_canary()
    users = htpasswd(tmp / "htpasswd", {"ada": password})
    auth = f"  htpasswd:\n    realm: llmcc-test\n    path: {users}\n"
    service = start_registry(tmp, tls=(pki.cert, pki.key), auth=auth)
    yield AuthRegistry(service, pki, "ada", password)
    service.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[AuthRegistry]:
    """docker-registry with ``auth: token`` trusting a test token service, and TLS."""
    tmp = tmp_path_factory.mktemp("token-registry")
    password, refresh = new_canary(), new_canary()
    tokens = TokenServer(users={"ada": password}, refresh_tokens={refresh: "ada"}, pki=pki)
    tokens.start()
    root = tokens.write_root(tmp / "root.pem")
    service = start_registry(tmp, tls=(pki.cert, pki.key), auth=tokens.registry_auth(root))
    yield AuthRegistry(service, pki, "ada", password, tokens, refresh)
    service.stop()
    tokens.stop()


@pytest.fixture
def docker_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pki: Pki) -> Iterator[Path]:
    """An empty DOCKER_CONFIG directory, the test CA trusted; its files are removed afterwards (canaries)."""
    home = tmp_path / "docker"
    home.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(home))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("LLMCC_OCI_CA_FILE", str(pki.ca))
    yield home
    for path in home.rglob("*"):
        if path.is_file():
            path.unlink()
