"""The project manifest ``llmcc.yaml`` (docs/manifest.md) and targets ("prod", "prod@acme").

The manifest is a trust boundary (STYLE R9): its schema is the pydantic models of
``compiler.manifest_schema`` (``extra="forbid"``), and every error names the field
and its line in llmcc.yaml. Building those models costs about a tenth of a second
of every command's start (issue 14 §1), so a manifest is first read by an exact
check here that accepts only values those models accept, and builds the same
values as the frozen dataclasses below; anything it does not accept at once goes
to the models, which give the error (or, for a form they accept and this check
does not, the values).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, TypeVar

from compiler.errors import InputError, UnknownTargetError, UsageError
from compiler.limits import MAX_POINTER_EXPIRY
from compiler.load.yaml import Document, load_document
from compiler.names import NAME_PATTERN

if TYPE_CHECKING:
    from compiler.secrets.kek.base import KekSpec

MANIFEST = "llmcc.yaml"
_NAME = re.compile(NAME_PATTERN)
POINTER_EXPIRY_PATTERN = r"^[1-9][0-9]{0,4}[hd]$"
_POINTER_EXPIRY = re.compile(POINTER_EXPIRY_PATTERN)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
Provider = Literal["age", "awskms", "vault-transit"]
_PROVIDERS: tuple[Provider, ...] = ("age", "awskms", "vault-transit")


def _duration(text: str) -> timedelta:
    amount, unit = int(text[:-1]), text[-1]
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


def pointer_expiry_too_long(text: str) -> bool:
    """Whether a ``storage.pointer_expiry`` that fits its pattern is longer than ``MAX_POINTER_EXPIRY``."""
    return _duration(text) > MAX_POINTER_EXPIRY


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentSpec:
    extends: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantSpec:
    environments: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """A key-encryption key: who can open a target's data key."""

    provider: Provider = "age"
    recipients: list[str] = field(default_factory=list)
    key_id: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    address: str | None = None
    mount: str = "transit"

    def kek(self) -> KekSpec:
        """The plain value key providers are built from (compiler/secrets/kek)."""
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


@dataclass(frozen=True, slots=True, kw_only=True)
class KeysSpec:
    compiler: KeySpec | None = None
    targets: dict[str, KeySpec] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningSpec:
    trusted: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageSpec:
    default: str = "file://.llmcc/store"
    # How long a signed pointer stays valid after publish signs it: readers refuse
    # an expired one (a frozen store). "36h", "7d"; CI refreshes it on a schedule.
    pointer_expiry: str = "7d"

    @property
    def pointer_expiry_delta(self) -> timedelta:
        return _duration(self.pointer_expiry)


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowedFile:
    """A file the secrets guard lets through although it holds key material or a credential.

    Pinned to the file's SHA-256: any change to the file makes it a finding again.
    """

    path: str
    sha256: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretsGuardSpec:
    allow: list[AllowedFile] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnpairedSpec:
    """Explicit exceptions to "every schema has its template and every template its schema".

    ``schemas``: modules whose values come from the layers alone (no
    ``templates/<module>.yaml``). ``templates``: files in ``templates/`` that
    are neither a module's template nor an ``extends`` base, kept unused.
    ``layers``: files under ``environments/`` that no target reads, kept unused.
    """

    schemas: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    project: str
    environments: dict[str, EnvironmentSpec]
    tenants: dict[str, TenantSpec] = field(default_factory=dict)
    keys: KeysSpec = field(default_factory=KeysSpec)
    signing: SigningSpec = field(default_factory=SigningSpec)
    storage: StorageSpec = field(default_factory=StorageSpec)
    secrets_guard: SecretsGuardSpec = field(default_factory=SecretsGuardSpec)
    unpaired: UnpairedSpec = field(default_factory=UnpairedSpec)


class _Unsure(Exception):
    """The exact check does not accept a value at once: the pydantic models decide."""


_T = TypeVar("_T")


def _mapping(value: object, fields: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, object]:
    if type(value) is not dict or not value.keys() <= set(fields) or not set(required) <= value.keys():
        raise _Unsure
    return value


def _text(value: object, pattern: re.Pattern[str] | None = None, *, min_length: int = 0) -> str:
    if type(value) is not str or len(value) < min_length or (pattern is not None and not pattern.fullmatch(value)):
        raise _Unsure
    return value


def _optional_text(value: object, pattern: re.Pattern[str] | None = None) -> str | None:
    return None if value is None else _text(value, pattern)


def _texts(value: object, pattern: re.Pattern[str] | None = None, *, min_items: int = 0) -> list[str]:
    if type(value) is not list or len(value) < min_items:
        raise _Unsure
    return [_text(v, pattern) for v in value]


def _entries(value: object, build: Callable[[object], _T], key: re.Pattern[str] | None = None) -> dict[str, _T]:
    if type(value) is not dict:
        raise _Unsure
    return {_text(k, key): build(v) for k, v in value.items()}


def _environment(value: object) -> EnvironmentSpec:
    v = _mapping(value, ("extends",))
    return EnvironmentSpec(extends=_optional_text(v.get("extends"), _NAME))


def _tenant(value: object) -> TenantSpec:
    v = _mapping(value, ("environments",), ("environments",))
    return TenantSpec(environments=_texts(v["environments"], _NAME, min_items=1))


def _key(value: object) -> KeySpec:
    v = _mapping(value, ("provider", "recipients", "key_id", "region", "endpoint_url", "address", "mount"))
    text = _text(v.get("provider", "age"))
    provider = next((p for p in _PROVIDERS if p == text), None)
    if provider is None:
        raise _Unsure
    return KeySpec(
        provider=provider,
        recipients=_texts(v.get("recipients", [])),
        key_id=_optional_text(v.get("key_id")),
        region=_optional_text(v.get("region")),
        endpoint_url=_optional_text(v.get("endpoint_url")),
        address=_optional_text(v.get("address")),
        mount=_text(v.get("mount", "transit")),
    )


def _keys(value: object) -> KeysSpec:
    v = _mapping(value, ("compiler", "targets"))
    compiler = v.get("compiler")
    return KeysSpec(compiler=None if compiler is None else _key(compiler), targets=_entries(v.get("targets", {}), _key))


def _storage(value: object) -> StorageSpec:
    v = _mapping(value, ("default", "pointer_expiry"))
    expiry = _text(v.get("pointer_expiry", "7d"), _POINTER_EXPIRY)
    if pointer_expiry_too_long(expiry):
        raise _Unsure
    return StorageSpec(default=_text(v.get("default", "file://.llmcc/store")), pointer_expiry=expiry)


def _allowed(value: object) -> AllowedFile:
    v = _mapping(value, ("path", "sha256", "reason"), ("path", "sha256", "reason"))
    return AllowedFile(
        path=_text(v["path"], min_length=1), sha256=_text(v["sha256"], _SHA256), reason=_text(v["reason"], min_length=1)
    )


def _guard(value: object) -> SecretsGuardSpec:
    allow = _mapping(value, ("allow",)).get("allow", [])
    if type(allow) is not list:
        raise _Unsure
    return SecretsGuardSpec(allow=[_allowed(a) for a in allow])


def _unpaired(value: object) -> UnpairedSpec:
    v = _mapping(value, ("schemas", "templates", "layers"))
    return UnpairedSpec(
        schemas=_texts(v.get("schemas", [])),
        templates=_texts(v.get("templates", [])),
        layers=_texts(v.get("layers", [])),
    )


_SECTIONS = ("project", "environments", "tenants", "keys", "signing", "storage", "secrets_guard", "unpaired")


def manifest_from(value: object) -> Manifest | None:
    """The manifest ``value`` describes, when it is in the exact form the schema's models accept
    (plain types, every constraint met); None when the models must decide (``compiler.manifest_schema``)."""
    try:
        v = _mapping(value, _SECTIONS, ("project", "environments"))
        environments = _entries(v["environments"], _environment, _NAME)
        if not environments:
            raise _Unsure
        signing = _mapping(v.get("signing", {}), ("trusted",))
        return Manifest(
            project=_text(v["project"], _NAME),
            environments=environments,
            tenants=_entries(v.get("tenants", {}), _tenant, _NAME),
            keys=_keys(v.get("keys", {})),
            signing=SigningSpec(trusted=_texts(signing.get("trusted", []))),
            storage=_storage(v.get("storage", {})),
            secrets_guard=_guard(v.get("secrets_guard", {})),
            unpaired=_unpaired(v.get("unpaired", {})),
        )
    except _Unsure:
        return None


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
        every = set(known)  # sets: a CI job may name a thousand targets (a list made this quadratic)
        chosen = set()
        for text in names:
            target = parse_target(text)
            if target not in every:
                from compiler.suggestions import unknown_target  # difflib: only on this error (start-up)

                raise UnknownTargetError(unknown_target(text, [str(t) for t in known], holder=f"{MANIFEST} defines"))
            chosen.add(target)
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

    The same bytes and path give the same ``Project`` again (it is immutable): ``hook validate`` reads
    the manifest for its affected targets, then ``validate`` does, and what is worked out per project
    (``compiler.incremental.inputs.own_files``) is then worked out once.

    Raises:
        InputError: bad YAML, a field that does not fit (named with its line),
            an unknown environment in ``extends`` or a tenant, or a cycle.
    """
    last = _LAST.get(path)
    if last is not None and last[0] == data:
        return last[1]
    project = _load_project(data, path)
    _LAST.clear()  # one kept: a process that loads many manifests (the tests) holds no more
    _LAST[path] = (data, project)
    return project


_LAST: dict[str, tuple[bytes, Project]] = {}  # the last manifest loaded, by path (``load_project``)


def _load_project(data: bytes, path: str) -> Project:
    doc = load_document(data, path=path, layer="manifest")
    if not isinstance(doc.value, dict):
        raise InputError(f"{path}:1:1: llmcc.yaml must be a mapping")
    manifest = manifest_from(doc.value)
    if manifest is None:
        manifest = _validate_with_models(doc)
    _check_references(manifest, doc)
    return Project(manifest, doc)


def _validate_with_models(doc: Document) -> Manifest:
    """The manifest as the pydantic models validate it: their first error, at its line, or the values."""
    from pydantic import ValidationError as PydanticValidationError

    from compiler import manifest_schema
    from compiler.fields import first_error, pattern_mismatch

    try:
        model = manifest_schema.Manifest.model_validate(doc.value)
    except PydanticValidationError as e:
        loc, msg = first_error(e, manifest_schema.Manifest)
        where = ".".join(str(p) for p in loc) or "(top level)"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        if loc == ("storage", "pointer_expiry"):
            msg = "a duration in hours or days up to 366d, like 36h or 7d"
        elif pattern_mismatch(e, loc):
            msg = "names must be lowercase identifiers ([a-z][a-z0-9_-]*)"
        raise InputError(f"{doc.origin(loc).location()}: {where}: {msg}{more}") from e
    manifest = manifest_from(model.model_dump())
    if manifest is None:  # the models accepted a form the exact check does not know: a bug here
        raise AssertionError("llmcc.yaml: the models' values do not pass the exact check")
    return manifest


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
