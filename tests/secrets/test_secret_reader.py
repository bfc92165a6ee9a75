"""Sealing a target's secret fields, and decrypting reads of a whole bundle (pull --decrypt, client)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compiler.errors import SecretsError
from compiler.jsontypes import JSONObject
from compiler.project import Target, load_project
from compiler.secrets.envelope import is_enc
from compiler.secrets.identity import load_identities
from compiler.secrets.kek.age import AgeKeyProvider
from compiler.secrets.kek.base import KeyProvider, WrappedKey
from compiler.secrets.keyfile import encryption_block, open_compiler_dek, rotate_target_key
from compiler.secrets.reader import SecretReader, open_secrets, seal_modules, secret_address
from tests.secrets._secrets_support import AgeKeys, new_canary

NOW = datetime(2026, 3, 1, tzinfo=UTC)


class CountingProvider:
    """A real age provider that counts unwraps (to check the key is unwrapped once, lazily)."""

    def __init__(self, inner: AgeKeyProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.key_id = inner.key_id
        self.unwraps = 0

    def wrap(self, dek: bytes) -> WrappedKey:
        return self.inner.wrap(dek)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        self.unwraps += 1
        return self.inner.unwrap(wrapped)


def consumer(keys_file: Path, recipient: str) -> CountingProvider:
    return CountingProvider(AgeKeyProvider([recipient], load_identities(keys_file, {})))


def make_bundle(repo: Path, age_keys: AgeKeys, target: Target, modules: JSONObject, secret_paths) -> JSONObject:  # type: ignore[no-untyped-def]
    project = load_project((repo / "llmcc.yaml").read_bytes())
    kf = rotate_target_key(project, target, identities=None, now=NOW)
    compiler = AgeKeyProvider([age_keys.compiler.recipient], load_identities(age_keys.compiler.file, {}))
    dek = open_compiler_dek(kf, compiler)
    sealed = seal_modules(modules, secret_paths, dek, target.name)
    return {
        "apiVersion": "llmcc/v1",
        "kind": "Bundle",
        "metadata": {"project": "demo", "target": target.name},
        "modules": sealed,
        "encryption": encryption_block(kf),
    }


@pytest.fixture
def plain() -> JSONObject:
    return {
        "data-pipeline": {
            "db": {"host": "db.internal", "password": new_canary(), "port": 5432},
            "tokens": [new_canary(), new_canary()],
            "extra": {"a": new_canary(), "b": {"c": new_canary()}},
        },
        "inference-engine": {"providers": [{"name": "openai", "api_key": new_canary()}], "temperature": 0.7},
    }


SECRETS = [
    ("data-pipeline", ("db", "password")),
    ("data-pipeline", ("tokens",)),
    ("data-pipeline", ("extra",)),
    ("data-pipeline", ("missing", "field")),
    ("inference-engine", ("providers", 0, "api_key")),
    ("inference-engine", ("providers", 5, "api_key")),
    ("absent-module", ("x",)),
]


def test_seal_modules_seals_only_secret_leaves(plain: JSONObject) -> None:
    before = copy.deepcopy(plain)
    sealed = seal_modules(plain, SECRETS, b"\x01" * 32, "prod")
    assert plain == before  # not mutated
    dp = sealed["data-pipeline"]
    assert isinstance(dp, dict)
    assert dp["db"]["host"] == "db.internal"  # type: ignore[index,call-overload]
    assert dp["db"]["port"] == 5432  # type: ignore[index,call-overload]
    assert is_enc(dp["db"]["password"])  # type: ignore[index,call-overload]
    assert all(is_enc(t) for t in dp["tokens"])  # type: ignore[union-attr]
    assert is_enc(dp["extra"]["b"]["c"])  # type: ignore[index,call-overload]
    assert "missing" not in dp
    assert is_enc(sealed["inference-engine"]["providers"][0]["api_key"])  # type: ignore[index,call-overload]
    assert "absent-module" not in sealed
    text = json.dumps(sealed)
    for value in json.dumps(before).split('"'):
        if value.startswith("canary-"):
            assert value not in text
    assert seal_modules(plain, SECRETS, b"\x01" * 32, "prod") == sealed  # deterministic
    # a secret shaped like ciphertext is still plaintext: sealed again, not passed through (issue 10 §7)
    twice = seal_modules(sealed, SECRETS, b"\x01" * 32, "prod")
    assert twice["data-pipeline"]["db"]["password"] != dp["db"]["password"]  # type: ignore[index,call-overload]


def test_open_secrets_round_trip(repo: Path, age_keys: AgeKeys, plain: JSONObject) -> None:
    bundle = make_bundle(repo, age_keys, Target("prod"), plain, SECRETS)
    provider = consumer(age_keys.default.file, age_keys.default.recipient)
    assert open_secrets(bundle, provider) == plain


def test_a_secret_shaped_like_ciphertext_round_trips(repo: Path, age_keys: AgeKeys) -> None:
    lookalike = "ENC[AES256_GCM_SIV,data:AAAA,iv:AAAA,tag:AAAA,type:str]"
    assert is_enc(lookalike)
    plain: JSONObject = {"data-pipeline": {"db": {"password": lookalike}}}
    bundle = make_bundle(repo, age_keys, Target("prod"), plain, [("data-pipeline", ("db", "password"))])
    assert bundle["modules"]["data-pipeline"]["db"]["password"] != lookalike  # type: ignore[index,call-overload]
    provider = consumer(age_keys.default.file, age_keys.default.recipient)
    assert open_secrets(bundle, provider) == plain
    assert provider.unwraps == 1


def test_secret_reader_is_lazy_and_unwraps_once(repo: Path, age_keys: AgeKeys, plain: JSONObject) -> None:
    bundle = make_bundle(repo, age_keys, Target("prod"), plain, SECRETS)
    provider = consumer(age_keys.default.file, age_keys.default.recipient)
    reader = SecretReader(bundle, provider)
    assert provider.unwraps == 0
    assert reader.target == "prod"
    assert reader.secret("data-pipeline.db.password") == plain["data-pipeline"]["db"]["password"]  # type: ignore[index,call-overload]
    assert reader.secret("data-pipeline.tokens.1") == plain["data-pipeline"]["tokens"][1]  # type: ignore[index,call-overload]
    assert (
        reader.secret("inference-engine.providers[0].api_key") == plain["inference-engine"]["providers"][0]["api_key"]
    )  # type: ignore[index,call-overload]
    assert provider.unwraps == 1
    for secret in json.dumps(plain).split('"'):
        if secret.startswith("canary-"):
            assert secret not in repr(reader)


def test_secret_reader_refuses_non_secrets(repo: Path, age_keys: AgeKeys, plain: JSONObject) -> None:
    reader = SecretReader(
        make_bundle(repo, age_keys, Target("prod"), plain, SECRETS),
        consumer(age_keys.default.file, age_keys.default.recipient),
    )
    with pytest.raises(SecretsError, match=r"data-pipeline\$\.db\.host: not an encrypted secret field"):
        reader.secret("data-pipeline.db.host")
    with pytest.raises(SecretsError, match=r"^prod: data-pipeline\$\.db\.nope: no value in the bundle$"):
        reader.secret("data-pipeline.db.nope")
    with pytest.raises(SecretsError, match="unknown module 'nope'; modules: data-pipeline, inference-engine"):
        reader.secret("nope")
    with pytest.raises(SecretsError, match=r"not a path: unexpected '\]'"):
        reader.secret("data-pipeline.db]")


def test_tenant_isolation(repo: Path, age_keys: AgeKeys, plain: JSONObject) -> None:
    acme = make_bundle(repo, age_keys, Target("prod", "acme"), plain, SECRETS)
    prod = make_bundle(repo, age_keys, Target("prod"), plain, SECRETS)
    with pytest.raises(SecretsError, match="none of the identities"):
        open_secrets(acme, consumer(age_keys.default.file, age_keys.default.recipient))
    with pytest.raises(SecretsError, match="none of the identities"):
        open_secrets(prod, consumer(age_keys.acme.file, age_keys.acme.recipient))
    assert open_secrets(acme, consumer(age_keys.acme.file, age_keys.acme.recipient)) == plain


def test_moved_ciphertext_fails_all_or_nothing(repo: Path, age_keys: AgeKeys, plain: JSONObject) -> None:
    bundle = make_bundle(repo, age_keys, Target("prod"), plain, SECRETS)
    moved = copy.deepcopy(bundle)
    dp = moved["modules"]["data-pipeline"]  # type: ignore[index,call-overload]
    dp["tokens"][0], dp["tokens"][1] = dp["tokens"][1], dp["tokens"][0]
    provider = consumer(age_keys.default.file, age_keys.default.recipient)
    with pytest.raises(SecretsError, match=r"data-pipeline\$\.tokens\[0\]: cannot decrypt") as info:
        open_secrets(moved, provider)
    for secret in json.dumps(plain).split('"'):
        if secret.startswith("canary-"):
            assert secret not in str(info.value)


def test_ciphertext_moved_to_another_target_fails(repo: Path, age_keys: AgeKeys, plain: JSONObject) -> None:
    staging = make_bundle(repo, age_keys, Target("staging"), plain, SECRETS)
    prod = make_bundle(repo, age_keys, Target("prod"), plain, SECRETS)
    forged = copy.deepcopy(prod)
    forged["modules"]["data-pipeline"]["db"]["password"] = staging["modules"]["data-pipeline"]["db"]["password"]  # type: ignore[index,call-overload]
    with pytest.raises(SecretsError, match="authentication failed"):
        open_secrets(forged, consumer(age_keys.default.file, age_keys.default.recipient))
    relabeled = copy.deepcopy(staging)
    relabeled["metadata"]["target"] = "prod"  # type: ignore[index,call-overload]
    with pytest.raises(SecretsError, match="authentication failed"):
        open_secrets(relabeled, consumer(age_keys.default.file, age_keys.default.recipient))


def test_substituted_wrapped_key_is_refused_by_the_commitment(repo: Path, age_keys: AgeKeys, plain: JSONObject) -> None:
    a = make_bundle(repo, age_keys, Target("prod"), plain, SECRETS)
    b = make_bundle(repo, age_keys, Target("prod"), plain, SECRETS)
    forged = copy.deepcopy(a)
    forged["encryption"]["wrapped_dek"] = b["encryption"]["wrapped_dek"]  # type: ignore[index,call-overload]
    with pytest.raises(SecretsError, match="does not match its commitment"):
        open_secrets(forged, consumer(age_keys.default.file, age_keys.default.recipient))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b: b.pop("modules"), "no modules"),
        (lambda b: b.pop("metadata"), "no metadata.target"),
        (lambda b: b.pop("encryption"), "no encryption block"),
        (lambda b: b["encryption"].update(alg="AES256_GCM"), "unsupported encryption alg"),
        (lambda b: b["encryption"].pop("commitment"), "commitment is missing"),
        (lambda b: b["encryption"].update(kek={"provider": "age", "key_id": "other"}), "kek does not match"),
        (lambda b: b["encryption"]["wrapped_dek"].pop("ciphertext"), "wrapped_dek: ciphertext"),
    ],
)
def test_malformed_bundles(repo: Path, age_keys: AgeKeys, plain: JSONObject, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    bundle = make_bundle(repo, age_keys, Target("prod"), plain, SECRETS)
    edit(bundle)
    with pytest.raises(SecretsError, match=message):
        SecretReader(bundle, consumer(age_keys.default.file, age_keys.default.recipient))


def test_secret_address() -> None:
    assert secret_address("inference-engine", ("providers", 0, "api_key")) == "inference-engine$.providers[0].api_key"
    assert secret_address("m", ("we ird",)) == "m$['we ird']"


def test_counting_provider_is_a_key_provider(age_keys: AgeKeys) -> None:
    p: KeyProvider = consumer(age_keys.default.file, age_keys.default.recipient)
    assert p.unwrap(p.wrap(b"\x00" * 32)) == b"\x00" * 32
