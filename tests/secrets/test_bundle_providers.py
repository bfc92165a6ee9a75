"""Round trip per key provider through the real CLI: keys rotate -> compile -> bundle -> decrypting read (issue 3).

For ``awskms`` (a real moto server) and ``vault-transit`` (a real OpenBao dev
server): a small config repository whose one secret field comes from a SOPS
file, ``llmcc keys rotate prod`` and ``llmcc compile`` through ``main()``, then
``dist/prod.bundle.json`` holds only ``ENC[...]`` for it and opens with the
target's own provider, and not with the compiler's age key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.errors import SecretsError
from compiler.project import KeySpec
from compiler.secrets.envelope import is_enc
from compiler.secrets.identity import load_identities
from compiler.secrets.kek import provider_for
from compiler.secrets.reader import SecretReader, open_secrets
from compiler.secrets.sops import encrypt_sops
from tests.secrets._secrets_support import AgeKeys, Vault, create_transit_key, new_canary

SECRETS = "environments/prod.secrets.sops.yaml"


def write_config(root: Path, age_keys: AgeKeys, prod_key: str) -> Path:
    """llmcc.yaml (compiler key: age; prod's key: ``prod_key``), .sops.yaml, one schema, one plain layer."""
    root.mkdir(parents=True)
    (root / "llmcc.yaml").write_text(
        "project: demo\n"
        "environments:\n  prod: {}\n"
        "unpaired: {schemas: [data-pipeline]}\n"
        "keys:\n"
        f"  compiler: {{provider: age, recipients: [{age_keys.compiler.recipient}]}}\n"
        f"  targets:\n    prod: {prod_key}\n"
    )
    (root / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: environments/.*\\.sops\\.yaml$\n    age: {age_keys.compiler.recipient}\n"
    )
    (root / "schemas").mkdir()
    (root / "schemas" / "data-pipeline.schema.json").write_text(
        '{"type": "object", "properties": {"db": {"type": "object", "properties": {'
        '"password": {"type": "string", "x-secret": true}, "username": {"type": "string"}}}}}\n'
    )
    (root / "environments").mkdir()
    (root / "environments" / "prod.yaml").write_text("modules:\n  data-pipeline:\n    db:\n      username: app\n")
    return root


def put_secret(root: Path, value: str) -> None:
    """The SOPS file, encrypted by the real sops from plaintext on stdin (never on disk)."""
    plain = json.dumps({"modules": {"data-pipeline": {"db": {"password": value}}}}).encode()
    (root / SECRETS).write_bytes(encrypt_sops(plain, path=SECRETS, cwd=root))


def compile_and_check(
    root: Path, spec: KeySpec, age_keys: AgeKeys, canary: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keys rotate + compile through main(); the bundle is sealed, opens with ``spec``'s provider only."""
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_keys.compiler.file))
    put_secret(root, canary)
    assert main(["-C", str(root), "-q", "keys", "rotate", "prod"]) == 0
    key_file = (root / "keys" / "targets" / "prod.yaml").read_text()
    assert spec.provider in key_file
    assert main(["-C", str(root), "-q", "compile"]) == 0

    raw = (root / "dist" / "prod.bundle.json").read_bytes()
    assert canary.encode() not in raw
    bundle = json.loads(raw)
    sealed = bundle["modules"]["data-pipeline"]["db"]
    assert sealed["username"] == "app"
    assert is_enc(sealed["password"])
    assert sealed["password"].startswith("ENC[")
    assert bundle["encryption"]["kek"] == {"provider": spec.provider, "key_id": spec.key_id}

    provider = provider_for(spec.kek(), None)
    opened = open_secrets(bundle, provider)
    assert opened["data-pipeline"]["db"]["password"] == canary  # type: ignore[index,call-overload]
    assert opened["data-pipeline"]["db"]["username"] == "app"  # type: ignore[index,call-overload]
    assert SecretReader(bundle, provider).secret("data-pipeline.db.password") == canary

    # the consumer's wrapped key is for the target's KMS/transit key: the compiler's age key cannot open it
    compiler_spec = KeySpec(provider="age", recipients=[age_keys.compiler.recipient])
    age = provider_for(compiler_spec.kek(), load_identities(age_keys.compiler.file, {}))
    with pytest.raises(SecretsError, match=f"wrapped by provider '{spec.provider}'") as info:
        open_secrets(bundle, age)
    assert canary not in str(info.value)


def test_awskms_bundle_round_trip(
    tmp_path: Path, age_keys: AgeKeys, kms: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, arn = kms
    spec = KeySpec(provider="awskms", key_id=arn, region="us-east-1", endpoint_url=endpoint)
    prod_key = f"{{provider: awskms, key_id: '{arn}', region: us-east-1, endpoint_url: '{endpoint}'}}"
    root = write_config(tmp_path / "repo", age_keys, prod_key)
    compile_and_check(root, spec, age_keys, new_canary(), monkeypatch)


def test_vault_transit_bundle_round_trip(
    tmp_path: Path, age_keys: AgeKeys, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = create_transit_key(vault, "llmcc-bundle-prod")
    monkeypatch.delenv("VAULT_ADDR")  # the address comes from llmcc.yaml; the token from VAULT_TOKEN
    spec = KeySpec(provider="vault-transit", key_id=name, address=vault.address)
    prod_key = f"{{provider: vault-transit, key_id: {name}, address: '{vault.address}'}}"
    root = write_config(tmp_path / "repo", age_keys, prod_key)
    compile_and_check(root, spec, age_keys, new_canary(), monkeypatch)
