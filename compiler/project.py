"""The project manifest ``llmcc.yaml`` (docs/manifest.md) and targets ("prod", "prod@acme").

The manifest is a trust boundary: pydantic models with ``extra="forbid"``
(STYLE R9), and every error names the field and its line in llmcc.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from compiler.errors import InputError, UsageError
from compiler.fields import first_error, pattern_mismatch
from compiler.limits import MAX_POINTER_EXPIRY
from compiler.load.yaml import Document, load_document
from compiler.names import NAME_PATTERN

if TYPE_CHECKING:
    from compiler.secrets.kek.base import KekSpec

MANIFEST = "llmcc.yaml"
_NAME = re.compile(NAME_PATTERN)
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


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

    def kek(self) -> KekSpec:
        """The plain value key providers are built from (compiler/secrets/kek: no pydantic at runtime)."""
        # imported here: commands that never build a provider (explain, history) skip the crypto stack
        from compiler.secrets.kek.base import KekSpec

        return KekSpec(
            provider=self.provider,
            recipients=tuple(self.recipients),
            key_id=self.key_id,
            region=self.region,
            endpoint_url=self.endpoint_url,
            address=self.address,
            mount=self.mount,
        )


class KeysSpec(_Model):
    compiler: KeySpec | None = None
    targets: dict[str, KeySpec] = Field(default_factory=dict)


class SigningSpec(_Model):
    trusted: list[str] = Field(default_factory=list)


def _duration(text: str) -> timedelta:
    amount, unit = int(text[:-1]), text[-1]
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


def _at_most_max_expiry(text: str) -> str:
    if _duration(text) > MAX_POINTER_EXPIRY:
        raise ValueError("longer than 366d")
    return text


class StorageSpec(_Model):
    default: str = "file://.llmcc/store"
    # How long a signed pointer stays valid after publish signs it: readers refuse
    # an expired one (a frozen store). "36h", "7d"; CI refreshes it on a schedule.
    pointer_expiry: Annotated[
        str, StringConstraints(pattern=r"^[1-9][0-9]{0,4}[hd]$"), AfterValidator(_at_most_max_expiry)
    ] = "7d"

    @property
    def pointer_expiry_delta(self) -> timedelta:
        return _duration(self.pointer_expiry)


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


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """An environment, optionally with a tenant."""

    environment: str
    tenant: str | None = None

    @property
    def name(self) -> str:
        return f"{self.environment}@{self.tenant}" if self.tenant else self.environment

    def __str__(self) -> str:
        return self.name


def parse_target(text: str) -> Target:
    env, _, tenant = text.partition("@")
    if not _NAME.fullmatch(env) or (tenant and not _NAME.fullmatch(tenant)) or (_ and not tenant):
        raise UsageError(f"{text!r} is not a target (ENV or ENV@TENANT, lowercase names)")
    return Target(env, tenant or None)


@dataclass(frozen=True, slots=True)
class Project:
    """The validated manifest plus what follows from it."""

    manifest: Manifest
    document: Document

    @property
    def name(self) -> str:
        return self.manifest.project

    def targets(self) -> list[Target]:
        """Every target, environments in manifest order, then tenant targets."""
        out = [Target(env) for env in self.manifest.environments]
        for tenant, spec in self.manifest.tenants.items():
            out.extend(Target(env, tenant) for env in spec.environments)
        return out

    def select(self, names: list[str] | None) -> list[Target]:
        """The targets named on the command line (all when none), in manifest order."""
        known = self.targets()
        if not names:
            return known
        chosen = []
        for text in names:
            target = parse_target(text)
            if target not in known:
                raise UsageError(f"unknown target {text!r}; llmcc.yaml defines: {', '.join(map(str, known))}")
            chosen.append(target)
        return [t for t in known if t in chosen]

    def env_chain(self, env: str) -> list[str]:
        """The ``extends`` chain of ``env``, root first (acyclic: checked at load)."""
        chain = [env]
        parent = self.manifest.environments[env].extends
        while parent is not None:
            chain.append(parent)
            parent = self.manifest.environments[parent].extends
        return chain[::-1]

    def key_spec(self, target: Target) -> KeySpec | None:
        """The consumer KEK for a target: the most specific match wins.

        Order: exact target, ``*@tenant``, environment (covers its tenant
        targets), ``*``.
        """
        selector = self.key_selector(target)
        return None if selector is None else self.manifest.keys.targets[selector]

    def key_selector(self, target: Target) -> str | None:
        """The ``keys.targets`` entry that ``key_spec`` takes, by its selector (None when none matches)."""
        specs = self.manifest.keys.targets
        candidates = [target.name]
        if target.tenant:
            candidates.append(f"*@{target.tenant}")
        candidates += [target.environment, "*"]
        return next((key for key in candidates if key in specs), None)


def load_project(data: bytes, *, path: str = MANIFEST) -> Project:
    """Validate llmcc.yaml.

    Raises:
        InputError: bad YAML, a field that does not fit (named with its line),
            an unknown environment in ``extends`` or a tenant, or a cycle.
    """
    doc = load_document(data, path=path, layer="manifest")
    if not isinstance(doc.value, dict):
        raise InputError(f"{path}:1:1: llmcc.yaml must be a mapping")
    try:
        manifest = Manifest.model_validate(doc.value)
    except PydanticValidationError as e:
        loc, msg = first_error(e, Manifest)
        field = ".".join(str(p) for p in loc) or "(top level)"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        if loc == ("storage", "pointer_expiry"):
            msg = "a duration in hours or days up to 366d, like 36h or 7d"
        elif pattern_mismatch(e, loc):
            msg = "names must be lowercase identifiers ([a-z][a-z0-9_-]*)"
        raise InputError(f"{doc.origin(loc).location()}: {field}: {msg}{more}") from e
    _check_references(manifest, doc)
    return Project(manifest, doc)


def _check_references(m: Manifest, doc: Document) -> None:
    if "base" in m.environments:
        where = doc.origin(("environments", "base")).location()
        raise InputError(f"{where}: 'base' is a layer applied to every target, not an environment")
    for env, spec in m.environments.items():
        if spec.extends is not None and spec.extends not in m.environments:
            where = doc.origin(("environments", env, "extends")).location()
            raise InputError(f"{where}: environments.{env}.extends: unknown environment {spec.extends!r}")
    for env in m.environments:
        seen = [env]
        parent = m.environments[env].extends
        while parent is not None:
            if parent in seen:
                where = doc.origin(("environments", env, "extends")).location()
                cycle = " -> ".join([*seen, parent])
                raise InputError(f"{where}: environments.{env}.extends: cycle {cycle}")
            seen.append(parent)
            parent = m.environments[parent].extends
    for tenant, tspec in m.tenants.items():
        for i, env in enumerate(tspec.environments):
            where = doc.origin(("tenants", tenant, "environments", i)).location()
            if env not in m.environments:
                raise InputError(f"{where}: tenants.{tenant}.environments: unknown environment {env!r}")
            if env in tspec.environments[:i]:
                raise InputError(f"{where}: tenants.{tenant}.environments: {env!r} is listed twice")
    for selector in m.keys.targets:
        # A typo here would silently fall back to a broader key ("*"): refuse it.
        env, at, tenant = selector.partition("@")
        if at:
            known = tenant in m.tenants and (env == "*" or env in m.tenants[tenant].environments)
        else:
            known = env == "*" or env in m.environments
        if not known:
            where = doc.origin(("keys", "targets", selector)).location()
            raise InputError(
                f"{where}: keys.targets: {selector!r} names no target (use *, ENV, *@TENANT or ENV@TENANT)"
            )
