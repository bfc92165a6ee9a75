"""The schema of the project manifest ``llmcc.yaml``, as pydantic models (STYLE R9; docs/manifest.md).

These models are the definition of what llmcc.yaml may hold: ``tools/gen-schemas.py``
generates ``docs/schemas/llmcc.schema.json`` from them, and every manifest that
``compiler.project`` does not accept at once is validated here, so that each error
names the field and its line. Loading pydantic and building these models costs
about a tenth of a second, so a valid manifest is read without them (issue 14 §1):
``compiler.project`` holds the runtime types and its exact check, which accepts a
subset of what these models accept and builds the same values
(tests/core/test_manifest_fast.py holds the two together).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from compiler.names import NAME_PATTERN
from compiler.project import POINTER_EXPIRY_PATTERN, pointer_expiry_too_long

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def _at_most_max_expiry(text: str) -> str:
    if pointer_expiry_too_long(text):
        raise ValueError("longer than 366d")
    return text


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvironmentSpec(_Model):
    extends: Name | None = None


class TenantSpec(_Model):
    environments: list[Name] = Field(min_length=1)


class KeySpec(_Model):
    """A key-encryption key: who can open a target's data key."""

    provider: Literal["age", "awskms", "vault-transit"] = "age"
    recipients: list[str] = Field(default_factory=list)
    key_id: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    address: str | None = None
    mount: str = "transit"


class KeysSpec(_Model):
    compiler: KeySpec | None = None
    targets: dict[str, KeySpec] = Field(default_factory=dict)


class SigningSpec(_Model):
    trusted: list[str] = Field(default_factory=list)


class StorageSpec(_Model):
    default: str = "file://.llmcc/store"
    # How long a signed pointer stays valid after publish signs it: readers refuse
    # an expired one (a frozen store). "36h", "7d"; CI refreshes it on a schedule.
    pointer_expiry: Annotated[
        str, StringConstraints(pattern=POINTER_EXPIRY_PATTERN), AfterValidator(_at_most_max_expiry)
    ] = "7d"


class AllowedFile(_Model):
    """A file the secrets guard lets through although it holds key material or a credential.

    Pinned to the file's SHA-256: any change to the file makes it a finding again.
    """

    path: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reason: str = Field(min_length=1)


class SecretsGuardSpec(_Model):
    allow: list[AllowedFile] = Field(default_factory=list)


class UnpairedSpec(_Model):
    """Explicit exceptions to "every schema has its template and every template its schema".

    ``schemas``: modules whose values come from the layers alone (no
    ``templates/<module>.yaml``). ``templates``: files in ``templates/`` that
    are neither a module's template nor an ``extends`` base, kept unused.
    ``layers``: files under ``environments/`` that no target reads, kept unused.
    """

    schemas: list[str] = Field(default_factory=list)
    templates: list[str] = Field(default_factory=list)
    layers: list[str] = Field(default_factory=list)


class Manifest(_Model):
    project: Name
    environments: dict[Name, EnvironmentSpec] = Field(min_length=1)
    tenants: dict[Name, TenantSpec] = Field(default_factory=dict)
    keys: KeysSpec = Field(default_factory=KeysSpec)
    signing: SigningSpec = Field(default_factory=SigningSpec)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    secrets_guard: SecretsGuardSpec = Field(default_factory=SecretsGuardSpec)
    unpaired: UnpairedSpec = Field(default_factory=UnpairedSpec)
