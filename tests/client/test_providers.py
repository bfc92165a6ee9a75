"""KMS and Vault transit readers (issue 11 §5): the provider the bundle names, built from the environment.

A bundle sealed for a ``vault-transit`` key (a real OpenBao dev server),
published by the real CLI; the service passes ``identity=FROM_ENVIRONMENT``
and holds only ``VAULT_ADDR`` and ``VAULT_TOKEN``, as ``pull --decrypt`` does.
``identity=None`` stays "no secrets": such a client never calls Vault.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main
from compiler.client import FROM_ENVIRONMENT, ConfigClient
from compiler.errors import SecretsError
from tests.client.conftest import SIGNING, TRUSTED
from tests.conftest import GIT_ENV, GitRepo
from tests.secrets._secrets_support import AgeKeys, Vault, create_transit_key, new_canary
from tests.secrets.conftest import age_keys, vault, vault_server  # noqa: F401 - fixtures
from tests.secrets.test_bundle_providers import put_secret, write_config

PASSWORD = "data-pipeline.db.password"


@pytest.fixture
def vault_store(
    tmp_path: Path,
    age_keys: AgeKeys,  # noqa: F811 - the fixture
    vault: Vault,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, str]:
    """A file store holding prod version 1, sealed for a transit key; (store URL, the canary in it)."""
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    name = create_transit_key(vault, "llmcc-client-prod")
    root = write_config(tmp_path / "repo", age_keys, f"{{provider: vault-transit, key_id: {name}}}")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys.compiler.file))
    canary = new_canary()
    put_secret(root, canary)
    assert main(["-C", str(root), "-q", "keys", "rotate", "prod"]) == 0
    repo = GitRepo(root)
    repo.git("init", "-q", "-b", "main")
    repo.commit("vault-sealed platform")
    store = f"file://{tmp_path / 'store'}"
    publish = ["publish", "-q", "--signing-key", str(SIGNING), "--trusted-key", str(TRUSTED), "--store", store]
    assert main(["-C", str(root), *publish, "-t", "prod"]) == 0
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")  # the service holds no age key: Vault opens it
    return store, canary


def test_a_vault_sealed_secret_opens_with_the_environment(vault_store: tuple[str, str]) -> None:
    store, canary = vault_store
    client = ConfigClient(store, "prod", [TRUSTED], identity=FROM_ENVIRONMENT)
    assert client.refresh() is True  # the data key is unwrapped by Vault before the swap
    assert client.secret(PASSWORD).reveal() == canary
    assert canary not in repr(client.get(PASSWORD))
    assert repr(FROM_ENVIRONMENT) == "FROM_ENVIRONMENT"


def test_without_an_identity_vault_is_not_called(vault_store: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = vault_store
    monkeypatch.setenv("VAULT_TOKEN", "not-a-token")  # a call to Vault would fail the refresh
    client = ConfigClient(store, "prod", [TRUSTED], identity=None)
    assert client.refresh() is True
    assert client.get("data-pipeline.db.username") == "app"
    with pytest.raises(SecretsError, match="no identity for secrets"):
        client.secret(PASSWORD)


def test_a_vault_token_that_cannot_unwrap_refuses_the_version(
    vault_store: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, canary = vault_store
    monkeypatch.setenv("VAULT_TOKEN", "not-a-token")
    client = ConfigClient(store, "prod", [TRUSTED], identity=FROM_ENVIRONMENT)
    with pytest.raises(SecretsError) as info:
        client.refresh()
    assert canary not in str(info.value)
    assert client.version is None
    assert client.metrics().refusals == {"secrets": 1}
