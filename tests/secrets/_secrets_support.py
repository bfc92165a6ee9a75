"""Shared test support for tests/secrets (imported by conftest.py and the tests).

Every secret value a test uses is a canary from ``new_canary()``; ``CANARIES``
lists them all, so a suite-wide sweep can check that none leaked into files,
output or exception messages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

CANARIES: list[str] = []


def new_canary() -> str:
    """A unique secret value to plant in a test, registered for the leak sweep."""
    value = f"canary-{uuid.uuid4()}"
    CANARIES.append(value)
    return value


@dataclass(frozen=True)
class AgeKey:
    identity: str = field(repr=False)  # AGE-SECRET-KEY-1...
    recipient: str  # age1...
    file: Path  # identity file in sops's format


@dataclass(frozen=True)
class AgeKeys:
    compiler: AgeKey  # keys.compiler; also the sops recipient of environments/**
    default: AgeKey  # the "*" consumer
    acme: AgeKey  # prod@acme's own consumer key
    outsider: AgeKey  # opens nothing


@dataclass(frozen=True)
class Vault:
    address: str
    token: str


FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def write_repo(root: Path, keys: AgeKeys, *, extra_targets: str = "") -> Path:
    """A minimal config repository: llmcc.yaml, .sops.yaml, one schema."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "llmcc.yaml").write_text(
        "project: demo\n"
        "environments:\n  dev: {}\n  staging: {}\n  prod: {extends: staging}\n"
        "tenants:\n  acme: {environments: [prod]}\n"
        "unpaired: {schemas: [data-pipeline]}\n"
        "keys:\n"
        f"  compiler: {{provider: age, recipients: [{keys.compiler.recipient}]}}\n"
        "  targets:\n"
        f'    "*": {{provider: age, recipients: [{keys.default.recipient}]}}\n'
        f'    "prod@acme": {{provider: age, recipients: [{keys.acme.recipient}]}}\n' + extra_targets
    )
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: environments/(.*/)?tenants/acme\\.secrets\\.sops\\.yaml$\n"
        f"    age: {keys.compiler.recipient},{keys.acme.recipient}\n"
        "  - path_regex: environments/.*\\.sops\\.yaml$\n"
        f"    age: {keys.compiler.recipient}\n"
    )
    (root / "schemas").mkdir(exist_ok=True)
    (root / "schemas" / "data-pipeline.schema.json").write_text(
        '{"type": "object", "properties": {'
        '"db": {"type": "object", "properties": {"password": {"type": "string", "x-secret": true},'
        ' "username": {"type": "string"}}},'
        ' "tokens": {"type": "array", "items": {"type": "string", "x-secret": true}},'
        ' "x": {"type": "string", "x-secret": true}}}\n'
    )
    (root / "environments").mkdir(exist_ok=True)
    return root


def create_transit_key(vault: Vault, name: str, mount: str = "transit") -> str:
    import hvac

    hvac.Client(url=vault.address, token=vault.token).secrets.transit.create_key(name=name, mount_point=mount)
    return name
