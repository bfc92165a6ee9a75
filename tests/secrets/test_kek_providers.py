"""Key providers: age (pyrage), awskms (a real moto server), vault-transit (a real OpenBao dev server)."""

from __future__ import annotations

import os

import pytest

from compiler.errors import SecretsError
from compiler.secrets.envelope import SecretValue
from compiler.secrets.identity import Identities, load_identities
from compiler.secrets.kek import PROVIDERS, KekSpec, provider_for, spec_key_id
from compiler.secrets.kek.age import AgeKeyProvider
from compiler.secrets.kek.awskms import AwsKmsKeyProvider, kms_endpoint, kms_region
from compiler.secrets.kek.base import WrappedKey
from compiler.secrets.kek.vault_transit import VaultTransitKeyProvider
from tests.secrets._secrets_support import AgeKeys, Vault, create_transit_key

DEK = os.urandom(32)


def ids(*files: object) -> Identities:
    return load_identities(files[0], {})  # type: ignore[arg-type]


# --- WrappedKey ---------------------------------------------------------------------------------


def test_wrapped_key_json_round_trip() -> None:
    w = WrappedKey.of("age", "age1x", b"\x01\x02")
    assert WrappedKey.from_json(w.to_json()) == w
    assert w.raw() == b"\x01\x02"


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        {"provider": "age", "key_id": "k"},
        {"provider": "age", "key_id": "k", "ciphertext": "AQ==", "extra": 1},
        {"provider": "age", "key_id": 3, "ciphertext": "AQ=="},
        {"provider": "age", "key_id": "k", "ciphertext": "not base64!"},
        {"provider": "age", "key_id": "k", "ciphertext": "="},
    ],
)
def test_wrapped_key_from_bad_json(value: object) -> None:
    with pytest.raises(SecretsError, match=r"^here: "):
        WrappedKey.from_json(value, where="here")  # type: ignore[arg-type]


def test_provider_table_is_explicit() -> None:
    assert sorted(PROVIDERS) == ["age", "awskms", "vault-transit"]
    assert spec_key_id(KekSpec(provider="age", recipients=("b", "a", "b"))) == "a,b"
    assert spec_key_id(KekSpec(provider="awskms", key_id="arn:x")) == "arn:x"


# --- age ------------------------------------------------------------------------------------------


def test_age_round_trip(age_keys: AgeKeys) -> None:
    spec = KekSpec(provider="age", recipients=(age_keys.default.recipient, age_keys.compiler.recipient))
    wrapped = provider_for(spec, None).wrap(DEK)
    assert wrapped.provider == "age"
    assert wrapped.key_id == ",".join(sorted([age_keys.default.recipient, age_keys.compiler.recipient]))
    for key in (age_keys.default, age_keys.compiler):  # any one recipient can unwrap
        assert provider_for(spec, ids(key.file)).unwrap(wrapped) == DEK


def test_age_tenant_isolation(age_keys: AgeKeys) -> None:
    default = KekSpec(provider="age", recipients=(age_keys.default.recipient,))
    acme = KekSpec(provider="age", recipients=(age_keys.acme.recipient,))
    for_default = provider_for(default, None).wrap(DEK)
    for_acme = provider_for(acme, None).wrap(DEK)
    with pytest.raises(SecretsError, match="none of the identities"):
        provider_for(acme, ids(age_keys.acme.file)).unwrap(for_default)
    with pytest.raises(SecretsError, match=age_keys.acme.recipient):
        provider_for(default, ids(age_keys.default.file)).unwrap(for_acme)


def test_age_needs_an_identity_to_unwrap(age_keys: AgeKeys) -> None:
    p = AgeKeyProvider([age_keys.default.recipient])
    wrapped = p.wrap(DEK)
    with pytest.raises(SecretsError, match="no age identity"):
        p.unwrap(wrapped)
    with pytest.raises(SecretsError, match="--identity FILE"):
        AgeKeyProvider([age_keys.default.recipient], Identities()).unwrap(wrapped)


def test_age_refuses_bad_recipients_and_other_providers(age_keys: AgeKeys) -> None:
    with pytest.raises(SecretsError, match="at least one recipient"):
        AgeKeyProvider([])
    with pytest.raises(SecretsError, match="not an age recipient"):
        AgeKeyProvider(["age1nope"])
    with pytest.raises(SecretsError, match="private age identity") as info:
        AgeKeyProvider([age_keys.outsider.identity])
    assert age_keys.outsider.identity not in str(info.value)
    p = AgeKeyProvider([age_keys.default.recipient], ids(age_keys.default.file))
    with pytest.raises(SecretsError, match="wrapped by provider 'awskms'"):
        p.unwrap(WrappedKey.of("awskms", "arn:x", b"x"))
    with pytest.raises(SecretsError):
        p.unwrap(WrappedKey.of("age", p.key_id, b"garbage, not age"))
    assert "AgeKeyProvider" in repr(p)


def test_age_refuses_a_wrapped_value_that_is_not_a_key(age_keys: AgeKeys) -> None:
    import base64

    import pyrage

    raw = pyrage.encrypt(b"short", [pyrage.x25519.Recipient.from_str(age_keys.default.recipient)])
    wrapped = WrappedKey(provider="age", key_id="k", ciphertext=base64.b64encode(raw).decode())
    with pytest.raises(SecretsError, match="not 32 bytes"):
        AgeKeyProvider([age_keys.default.recipient], ids(age_keys.default.file)).unwrap(wrapped)


# --- awskms (real moto server over loopback HTTP) ------------------------------------------------


def test_awskms_round_trip(kms: tuple[str, str]) -> None:
    endpoint, arn = kms
    spec = KekSpec(provider="awskms", key_id=arn, endpoint_url=endpoint)
    wrapped = provider_for(spec, None).wrap(DEK)
    assert (wrapped.provider, wrapped.key_id) == ("awskms", arn)
    assert DEK not in wrapped.raw()
    assert provider_for(spec, None).unwrap(wrapped) == DEK


def test_awskms_endpoint_and_region_from_environment(kms: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, arn = kms
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", endpoint)
    spec = KekSpec(provider="awskms", key_id=arn)
    p = provider_for(spec, None)
    assert isinstance(p, AwsKmsKeyProvider)
    assert (p.endpoint_url, p.region) == (endpoint, "us-east-1")
    assert p.unwrap(p.wrap(DEK)) == DEK
    assert kms_region(None, {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "x"}) == "eu-west-1"
    assert kms_region(None, {}) == "us-east-1"
    assert kms_region("ap-south-1", {"AWS_REGION": "x"}) == "ap-south-1"
    assert kms_endpoint(None, {"AWS_ENDPOINT_URL": "http://a"}) == "http://a"
    assert kms_endpoint(None, {}) is None


def test_awskms_key_isolation(kms: tuple[str, str]) -> None:
    import boto3

    endpoint, arn = kms
    other = boto3.client("kms", region_name="us-east-1", endpoint_url=endpoint).create_key()["KeyMetadata"]["Arn"]
    wrapped = AwsKmsKeyProvider(arn, region="us-east-1", endpoint_url=endpoint).wrap(DEK)
    moved = WrappedKey(provider="awskms", key_id=other, ciphertext=wrapped.ciphertext)
    with pytest.raises(SecretsError, match="cannot unwrap"):
        AwsKmsKeyProvider(other, region="us-east-1", endpoint_url=endpoint).unwrap(moved)


def test_awskms_failures_are_secrets_errors(kms: tuple[str, str]) -> None:
    endpoint, arn = kms
    p = AwsKmsKeyProvider(arn, region="us-east-1", endpoint_url=endpoint)
    with pytest.raises(SecretsError, match="cannot unwrap") as info:
        p.unwrap(WrappedKey.of("awskms", arn, b"not a kms blob"))
    assert info.value.__cause__ is not None
    missing = AwsKmsKeyProvider(
        arn.replace(arn.rsplit("/", 1)[1], "00000000-0000-0000-0000-000000000000"),
        region="us-east-1",
        endpoint_url=endpoint,
    )
    with pytest.raises(SecretsError, match="cannot wrap"):
        missing.wrap(DEK)
    with pytest.raises(SecretsError, match="key_id"):
        AwsKmsKeyProvider("", region="us-east-1", endpoint_url=None)
    assert "AwsKmsKeyProvider" in repr(p)


# --- vault-transit (real OpenBao dev server over loopback HTTP) ----------------------------------


def test_vault_transit_round_trip(vault: Vault) -> None:
    name = create_transit_key(vault, "llmcc-prod")
    spec = KekSpec(provider="vault-transit", key_id=name)
    wrapped = provider_for(spec, None).wrap(DEK)
    assert (wrapped.provider, wrapped.key_id) == ("vault-transit", name)
    assert wrapped.raw().startswith(b"vault:v1:")
    assert provider_for(spec, None).unwrap(wrapped) == DEK


def test_vault_transit_tenant_isolation(vault: Vault) -> None:
    prod = create_transit_key(vault, "prod")
    acme = create_transit_key(vault, "acme", mount="transit-acme")
    token = SecretValue(vault.token.encode())
    p_prod = VaultTransitKeyProvider(prod, address=vault.address, token=token, mount="transit")
    p_acme = VaultTransitKeyProvider(acme, address=vault.address, token=token, mount="transit-acme")
    for_acme = p_acme.wrap(DEK)
    moved = WrappedKey(provider="vault-transit", key_id=prod, ciphertext=for_acme.ciphertext)
    with pytest.raises(SecretsError, match="cannot unwrap"):
        p_prod.unwrap(moved)
    assert p_acme.unwrap(for_acme) == DEK


def test_vault_transit_wrong_token_and_missing_settings(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    name = create_transit_key(vault, "tok")
    wrapped = VaultTransitKeyProvider(
        name, address=vault.address, token=SecretValue(vault.token.encode()), mount="transit"
    ).wrap(DEK)
    bad = VaultTransitKeyProvider(name, address=vault.address, token=SecretValue(b"wrong-token"), mount="transit")
    with pytest.raises(SecretsError, match="cannot unwrap") as info:
        bad.unwrap(wrapped)
    assert vault.token not in str(info.value)
    assert vault.token not in repr(bad)
    with pytest.raises(SecretsError, match="cannot wrap"):
        bad.wrap(DEK)
    monkeypatch.delenv("VAULT_TOKEN")
    with pytest.raises(SecretsError, match="VAULT_TOKEN"):
        provider_for(KekSpec(provider="vault-transit", key_id=name), None).wrap(DEK)
    monkeypatch.delenv("VAULT_ADDR")
    with pytest.raises(SecretsError, match="VAULT_ADDR"):
        provider_for(KekSpec(provider="vault-transit", key_id=name), None).wrap(DEK)
    with pytest.raises(SecretsError, match="key_id"):
        provider_for(KekSpec(provider="vault-transit"), None)
    with pytest.raises(SecretsError, match="not 'vault-transit'"):
        bad.unwrap(WrappedKey.of("age", "x", b"x"))


def test_a_spec_naming_no_known_provider_is_refused() -> None:
    # KekSpec is a plain value (no pydantic Literal in front of it): provider_for checks the name
    with pytest.raises(SecretsError, match=r"^unknown key provider 'gpg'; known: age, awskms, vault-transit$"):
        provider_for(KekSpec(provider="gpg", key_id="x"), None)
