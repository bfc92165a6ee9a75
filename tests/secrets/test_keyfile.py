"""keys/targets/<target>.yaml: rotate, update, read/dump, and opening the compiler's copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compiler.errors import InputError, SecretsError
from compiler.project import Project, Target, load_project
from compiler.secrets.envelope import dek_commitment
from compiler.secrets.identity import load_identities
from compiler.secrets.kek import provider_for
from compiler.secrets.kek.age import AgeKeyProvider
from compiler.secrets.keyfile import (
    TargetKeyFile,
    dump_target_key,
    encryption_block,
    key_file_path,
    missing_key_error,
    open_compiler_dek,
    read_target_key,
    rotate_target_key,
    update_target_key,
)
from tests.secrets._secrets_support import AgeKeys, write_repo

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PROD = Target("prod")
ACME = Target("prod", "acme")


def project_of(text: str) -> Project:
    return load_project(text.encode())


def manifest(keys: AgeKeys, *, compiler: list[str], default: list[str], acme: list[str] | None = None) -> str:
    lines = [
        "project: demo",
        "environments: {prod: {}}",
        "tenants: {acme: {environments: [prod]}}",
        "keys:",
        f"  compiler: {{provider: age, recipients: [{', '.join(compiler)}]}}",
        "  targets:",
        f'    "*": {{provider: age, recipients: [{", ".join(default)}]}}',
    ]
    if acme:
        lines.append(f'    "prod@acme": {{provider: age, recipients: [{", ".join(acme)}]}}')
    return "\n".join(lines) + "\n"


def unwrap(kf: TargetKeyFile, role: str, key_file: Path) -> bytes:
    wrapped = kf.consumer if role == "consumer" else kf.compiler
    return AgeKeyProvider(wrapped.key_id.split(","), load_identities(key_file, {})).unwrap(wrapped)


def rng(byte: int):  # type: ignore[no-untyped-def]
    return lambda n: bytes([byte]) * n


def test_rotate_wraps_one_key_twice(repo: Path, age_keys: AgeKeys) -> None:
    project = load_project((repo / "llmcc.yaml").read_bytes())
    kf = rotate_target_key(project, PROD, identities=None, now=NOW)
    assert kf.target == "prod"
    assert kf.created_at == "2026-03-01T12:00:00Z"
    assert kf.consumer.key_id == age_keys.default.recipient
    assert kf.compiler.key_id == age_keys.compiler.recipient
    dek = unwrap(kf, "consumer", age_keys.default.file)
    assert unwrap(kf, "compiler", age_keys.compiler.file) == dek
    assert kf.commitment == dek_commitment(dek)
    compiler = provider_for(project.manifest.keys.compiler.kek(), load_identities(age_keys.compiler.file, {}))  # type: ignore[union-attr]
    assert open_compiler_dek(kf, compiler) == dek


def test_rotate_uses_injected_rng_and_gives_a_new_key(repo: Path, age_keys: AgeKeys) -> None:
    project = load_project((repo / "llmcc.yaml").read_bytes())
    a = rotate_target_key(project, PROD, identities=None, now=NOW, rng=rng(1))
    b = rotate_target_key(project, PROD, identities=None, now=NOW, rng=rng(2))
    assert a.commitment == dek_commitment(b"\x01" * 32)
    assert a.commitment != b.commitment


def test_tenant_isolation(repo: Path, age_keys: AgeKeys) -> None:
    project = load_project((repo / "llmcc.yaml").read_bytes())
    prod = rotate_target_key(project, PROD, identities=None, now=NOW)
    acme = rotate_target_key(project, ACME, identities=None, now=NOW)
    assert acme.consumer.key_id == age_keys.acme.recipient
    unwrap(acme, "consumer", age_keys.acme.file)
    with pytest.raises(SecretsError):
        unwrap(acme, "consumer", age_keys.default.file)  # the default consumer cannot open prod@acme
    with pytest.raises(SecretsError):
        unwrap(prod, "consumer", age_keys.acme.file)  # the tenant cannot open prod


def test_dump_read_round_trip_and_format(repo: Path, age_keys: AgeKeys) -> None:
    project = load_project((repo / "llmcc.yaml").read_bytes())
    kf = rotate_target_key(project, ACME, identities=None, now=NOW)
    data = dump_target_key(kf)
    assert read_target_key(data, path=key_file_path("prod@acme")) == kf
    assert dump_target_key(kf) == data
    lines = data.decode().splitlines()
    assert lines[0].startswith("# llmcc data key of target prod@acme")
    assert lines[1:6] == [
        'apiVersion: "llmcc/v1"',
        'kind: "TargetKey"',
        'target: "prod@acme"',
        'created_at: "2026-03-01T12:00:00Z"',
        f'commitment: "{kf.commitment}"',
    ]
    assert lines[6] == "consumer:"
    assert lines[7] == '  provider: "age"'
    assert lines[8] == f'  key_id: "{age_keys.acme.recipient}"'
    assert lines[10] == "compiler:"
    assert key_file_path("prod@acme") == "keys/targets/prod@acme.yaml"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('kind: "TargetKey"', 'kind: "Other"'), "not an llmcc key file"),
        (
            lambda t: t.replace('created_at: "2026-03-01T12:00:00Z"', 'created_at: "yesterday"'),
            ":5:1: created_at",
        ),
        (lambda t: t + "extra: 1\n", "prod.yaml:15:1: unknown field 'extra'"),
        (lambda t: t.replace("commitment:", "# commitment:"), "commitment must be a non-empty string"),
        (lambda t: t.replace('  provider: "age"', '  provider: ""', 1), "consumer: provider must be"),
        (lambda t: "- a list\n", "must be a mapping"),
        (lambda t: "a: [\n", "invalid YAML"),
    ],
)
def test_read_refuses_malformed_files(repo: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    project = load_project((repo / "llmcc.yaml").read_bytes())
    text = dump_target_key(rotate_target_key(project, PROD, identities=None, now=NOW)).decode()
    with pytest.raises(InputError, match=message):
        read_target_key(edit(text).encode(), path="keys/targets/prod.yaml")


def test_update_unchanged(age_keys: AgeKeys) -> None:
    p = project_of(manifest(age_keys, compiler=[age_keys.compiler.recipient], default=[age_keys.default.recipient]))
    kf = rotate_target_key(p, PROD, identities=None, now=NOW)
    result = update_target_key(p, PROD, kf, identities=None, now=NOW + timedelta(days=1))
    assert result.action == "unchanged"
    assert result.keyfile is kf


def test_update_adding_a_recipient_rewraps_the_same_key(age_keys: AgeKeys) -> None:
    before = project_of(
        manifest(age_keys, compiler=[age_keys.compiler.recipient], default=[age_keys.default.recipient])
    )
    kf = rotate_target_key(before, PROD, identities=None, now=NOW)
    after = project_of(
        manifest(
            age_keys,
            compiler=[age_keys.compiler.recipient],
            default=[age_keys.default.recipient, age_keys.outsider.recipient],
        )
    )
    ids = load_identities(age_keys.compiler.file, {})
    result = update_target_key(after, PROD, kf, identities=ids, now=NOW + timedelta(days=1))
    assert result.action == "rewrapped"
    new = result.keyfile
    assert (new.commitment, new.created_at, new.compiler) == (kf.commitment, kf.created_at, kf.compiler)
    assert unwrap(new, "consumer", age_keys.outsider.file) == unwrap(kf, "consumer", age_keys.default.file)


def test_update_rewrap_needs_the_compiler_identity(age_keys: AgeKeys) -> None:
    before = project_of(
        manifest(age_keys, compiler=[age_keys.compiler.recipient], default=[age_keys.default.recipient])
    )
    kf = rotate_target_key(before, PROD, identities=None, now=NOW)
    after = project_of(
        manifest(
            age_keys,
            compiler=[age_keys.compiler.recipient, age_keys.acme.recipient],
            default=[age_keys.default.recipient],
        )
    )
    with pytest.raises(SecretsError, match="none of the identities"):
        update_target_key(after, PROD, kf, identities=load_identities(age_keys.outsider.file, {}), now=NOW)
    result = update_target_key(after, PROD, kf, identities=load_identities(age_keys.compiler.file, {}), now=NOW)
    assert result.action == "rewrapped"
    assert result.keyfile.consumer == kf.consumer
    assert unwrap(result.keyfile, "compiler", age_keys.acme.file) == unwrap(kf, "compiler", age_keys.compiler.file)


@pytest.mark.parametrize("role", ["consumer", "compiler"])
def test_update_removing_a_recipient_rotates(age_keys: AgeKeys, role: str) -> None:
    both = [age_keys.default.recipient, age_keys.outsider.recipient]
    comp = [age_keys.compiler.recipient, age_keys.outsider.recipient]
    before = project_of(manifest(age_keys, compiler=comp, default=both))
    kf = rotate_target_key(before, PROD, identities=None, now=NOW, rng=rng(1))
    if role == "consumer":
        after = manifest(age_keys, compiler=comp, default=[age_keys.default.recipient])
    else:
        after = manifest(age_keys, compiler=[age_keys.compiler.recipient], default=both)
    later = NOW + timedelta(days=30)
    result = update_target_key(project_of(after), PROD, kf, identities=None, now=later, rng=rng(2))
    assert result.action == "rotated"
    assert age_keys.outsider.recipient in result.reason
    assert result.keyfile.commitment != kf.commitment
    assert result.keyfile.created_at == "2026-03-31T12:00:00Z"
    if role == "consumer":
        with pytest.raises(SecretsError):
            unwrap(result.keyfile, "consumer", age_keys.outsider.file)


def test_update_to_another_provider_rotates(age_keys: AgeKeys) -> None:
    before = project_of(
        manifest(age_keys, compiler=[age_keys.compiler.recipient], default=[age_keys.default.recipient])
    )
    kf = rotate_target_key(before, PROD, identities=None, now=NOW)
    text = manifest(age_keys, compiler=[age_keys.compiler.recipient], default=[age_keys.default.recipient])
    text = text.replace(
        f'"*": {{provider: age, recipients: [{age_keys.default.recipient}]}}',
        '"*": {provider: age, recipients: [' + age_keys.acme.recipient + "]}",
    )
    result = update_target_key(project_of(text), PROD, kf, identities=None, now=NOW)
    assert result.action == "rotated"


def test_open_compiler_dek_checks_the_commitment(repo: Path, age_keys: AgeKeys) -> None:
    project = load_project((repo / "llmcc.yaml").read_bytes())
    a = rotate_target_key(project, PROD, identities=None, now=NOW, rng=rng(1))
    b = rotate_target_key(project, PROD, identities=None, now=NOW, rng=rng(2))
    substituted = TargetKeyFile(
        target="prod",
        created_at=a.created_at,
        commitment=a.commitment,
        consumer=a.consumer,
        compiler=b.compiler,
    )
    provider = AgeKeyProvider([age_keys.compiler.recipient], load_identities(age_keys.compiler.file, {}))
    assert open_compiler_dek(a, provider) == b"\x01" * 32
    with pytest.raises(SecretsError, match=r"keys/targets/prod\.yaml: the unwrapped data key does not match"):
        open_compiler_dek(substituted, provider)


def test_missing_specs_and_missing_key_file(tmp_path: Path, age_keys: AgeKeys) -> None:
    no_compiler = project_of(
        "project: demo\nenvironments: {prod: {}}\nkeys:\n  targets:\n"
        f'    "*": {{recipients: [{age_keys.default.recipient}]}}\n'
    )
    with pytest.raises(SecretsError, match=r"keys\.compiler is not set"):
        rotate_target_key(no_compiler, PROD, identities=None, now=NOW)
    no_target = project_of(
        "project: demo\nenvironments: {prod: {}}\nkeys:\n"
        f"  compiler: {{recipients: [{age_keys.default.recipient}]}}\n"
    )
    with pytest.raises(SecretsError, match="no key for target prod"):
        rotate_target_key(no_target, PROD, identities=None, now=NOW)
    err = missing_key_error("prod@acme")
    assert str(err) == (
        "keys/targets/prod@acme.yaml: target prod@acme has secret fields but no data key; "
        "run: llmcc keys rotate prod@acme"
    )
    assert err.exit_code == 2
    with pytest.raises(ValueError, match="timezone-aware"):
        rotate_target_key(
            load_project(write_repo(tmp_path / "r", age_keys).joinpath("llmcc.yaml").read_bytes()),
            PROD,
            identities=None,
            now=datetime(2026, 1, 1),  # noqa: DTZ001 - the point of the test
        )


def test_encryption_block(repo: Path, age_keys: AgeKeys) -> None:
    project = load_project((repo / "llmcc.yaml").read_bytes())
    kf = rotate_target_key(project, ACME, identities=None, now=NOW)
    assert encryption_block(kf) == {
        "alg": "AES256_GCM_SIV",
        "kek": {"provider": "age", "key_id": age_keys.acme.recipient},
        "wrapped_dek": kf.consumer.to_json(),
        "commitment": kf.commitment,
    }


def test_update_with_kms_keys(kms: tuple[str, str], age_keys: AgeKeys) -> None:
    import boto3

    endpoint, arn = kms
    other = boto3.client("kms", region_name="us-east-1", endpoint_url=endpoint).create_key()["KeyMetadata"]["Arn"]

    def project(key: str) -> Project:
        return project_of(
            "project: demo\nenvironments: {prod: {}}\nkeys:\n"
            f"  compiler: {{provider: age, recipients: [{age_keys.compiler.recipient}]}}\n"
            f'  targets:\n    "*": {{provider: awskms, key_id: "{key}", endpoint_url: "{endpoint}"}}\n'
        )

    kf = rotate_target_key(project(arn), PROD, identities=None, now=NOW)
    assert (kf.consumer.provider, kf.consumer.key_id) == ("awskms", arn)
    assert update_target_key(project(arn), PROD, kf, identities=None, now=NOW).action == "unchanged"
    result = update_target_key(project(other), PROD, kf, identities=None, now=NOW)
    assert result.action == "rotated"
    assert result.reason == f"consumer key lost key {arn}"
