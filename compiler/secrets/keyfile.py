"""The per-target data key file ``keys/targets/<target>.yaml`` (docs/bundle-format.md). Pure: bytes in, bytes out.

Like SOPS, the wrapped data key lives in git beside the data. The file holds
the DEK wrapped twice (for the target's consumer KEK, copied verbatim into
every bundle, and for ``keys.compiler``, so CI can compile), the DEK's
commitment (so a wrap that opens to another key is refused) and its creation
time (for DEK-age policies). Format::

    # llmcc data key of target prod (llmcc docs/bundle-format.md). Written by `llmcc keys rotate|update`; do not edit.
    apiVersion: "llmcc/v1"
    kind: "TargetKey"
    target: "prod"
    created_at: "2026-11-22T14:00:00Z"
    commitment: "hmac-sha256:<hex>"
    consumer:
      provider: "age"
      key_id: "age1...,age1..."
      ciphertext: "<base64>"
    compiler:
      provider: "age"
      key_id: "age1..."
      ciphertext: "<base64>"
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from compiler.errors import InputError, SecretsError
from compiler.jsontypes import JSONObject
from compiler.load.yaml import load_document
from compiler.project import Project, Target
from compiler.secrets.identity import Identities
from compiler.secrets.kek import KekSpec, ProviderFactory, provider_for
from compiler.secrets.kek.age import unnamed_readers
from compiler.secrets.kek.base import KeyProvider, WrappedKey
from compiler.secrets.rotation import parse_rfc3339, rfc3339
from compiler.suggestions import unknown_field

KEY_DIR = "keys/targets"
_API, _KIND = "llmcc/v1", "TargetKey"
_COMMITMENT = re.compile(r"hmac-sha256:[0-9a-f]{64}")
_FIELDS = ("apiVersion", "kind", "target", "created_at", "commitment", "consumer", "compiler")

UpdateAction = Literal["unchanged", "rewrapped", "rotated"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetKeyFile:
    """One target's wrapped data key. Holds no plaintext key: safe to show."""

    target: str
    created_at: str
    commitment: str
    consumer: WrappedKey
    compiler: WrappedKey


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUpdate:
    """What ``update_target_key`` did, and why."""

    keyfile: TargetKeyFile
    action: UpdateAction
    reason: str


def key_file_path(target: str) -> str:
    return f"{KEY_DIR}/{target}.yaml"


def missing_key_error(target: str) -> SecretsError:
    """The error for a target that has secret fields but no data key yet."""
    return SecretsError(
        f"{key_file_path(target)}: target {target} has secret fields but no data key; run: llmcc keys rotate {target}"
    )


def key_specs(project: Project, target: Target) -> tuple[KekSpec, KekSpec]:
    """The consumer KEK of ``target`` and the compiler KEK.

    Raises:
        SecretsError: llmcc.yaml names no key for one of them.
    """
    consumer = project.key_spec(target)
    if consumer is None:
        raise SecretsError(f'llmcc.yaml: keys.targets has no key for target {target} (add it, or a "*" entry)')
    compiler = project.manifest.keys.compiler
    if compiler is None:
        raise SecretsError("llmcc.yaml: keys.compiler is not set: the compiling identity needs a key")
    return consumer.kek(), compiler.kek()


def rotate_target_key(
    project: Project,
    target: Target,
    *,
    identities: Identities | None,
    now: datetime,
    rng: Callable[[int], bytes] = os.urandom,
    providers: ProviderFactory = provider_for,
) -> TargetKeyFile:
    """A new data key for ``target``, wrapped for its consumer KEK and for the compiler.

    Old bundles keep their own wrapped key, so they stay readable.

    Raises:
        SecretsError: a missing key spec, or a provider that cannot wrap.
    """
    from compiler.secrets.envelope import dek_commitment, new_dek  # the AEAD stack, not for validate

    consumer_spec, compiler_spec = key_specs(project, target)
    dek = new_dek(rng)
    return TargetKeyFile(
        target=target.name,
        created_at=rfc3339(now),
        commitment=dek_commitment(dek),
        consumer=providers(consumer_spec, identities).wrap(dek),
        compiler=providers(compiler_spec, identities).wrap(dek),
    )


def update_target_key(
    project: Project,
    target: Target,
    current: TargetKeyFile,
    *,
    identities: Identities | None,
    now: datetime,
    rng: Callable[[int], bytes] = os.urandom,
    providers: ProviderFactory = provider_for,
    shared_with: Sequence[str] = (),
) -> KeyUpdate:
    """Re-wrap the data key after llmcc.yaml's keys changed.

    0. The key file of another target holds the same data key (``shared_with``,
       a copied file): rotate, so the readers of one cannot open the other's bundles.
    1. A reader lost access (an age recipient removed, or another provider or
       key), or an age wrap may open to a reader it does not name
       (``kek.age.unnamed_readers``): rotate, so that reader cannot open
       future bundles.
    2. Both wraps still match their specs: unchanged.
    3. Only readers were added: unwrap with the compiler identity (checking the
       commitment) and wrap the same key again; ``created_at`` is kept.

    Raises:
        SecretsError: a missing key spec, a provider failure, or no identity to unwrap.
    """
    consumer_spec, compiler_spec = key_specs(project, target)
    consumer_p = providers(consumer_spec, identities)
    compiler_p = providers(compiler_spec, identities)
    if shared_with:
        kf = rotate_target_key(project, target, identities=identities, now=now, rng=rng, providers=providers)
        return KeyUpdate(keyfile=kf, action="rotated", reason=f"data key shared with {', '.join(shared_with)}")
    same = [_same(w, p) for w, p in ((current.consumer, consumer_p), (current.compiler, compiler_p))]
    pairs = (("consumer", current.consumer, consumer_p), ("compiler", current.compiler, compiler_p))
    for role, wrapped, provider in pairs:
        lost = _lost_readers(wrapped, provider)
        hidden = unnamed_readers(wrapped) if wrapped.provider == "age" else []
        if lost or hidden:
            kf = rotate_target_key(project, target, identities=identities, now=now, rng=rng, providers=providers)
            why = f"{role} key lost {lost}" if lost else f"{role} key: {hidden[0]}"
            return KeyUpdate(keyfile=kf, action="rotated", reason=why)
    if all(same):
        return KeyUpdate(keyfile=current, action="unchanged", reason="recipients unchanged")
    # Only readers were added, so the current compiler provider opens the old wrap.
    dek = open_compiler_dek(current, compiler_p)
    keyfile = replace(
        current,
        consumer=current.consumer if same[0] else consumer_p.wrap(dek),
        compiler=current.compiler if same[1] else compiler_p.wrap(dek),
    )
    return KeyUpdate(keyfile=keyfile, action="rewrapped", reason="recipients added")


def open_compiler_dek(keyfile: TargetKeyFile, provider: KeyProvider) -> bytes:
    """Unwrap the compiler's copy of the data key and check it against the commitment.

    Raises:
        SecretsError: no identity, the wrong one, or a key that fails its commitment.
    """
    from compiler.secrets.envelope import check_commitment  # the AEAD stack, not for validate

    dek = provider.unwrap(keyfile.compiler)
    try:
        check_commitment(dek, keyfile.commitment)
    except SecretsError as e:
        raise SecretsError(f"{key_file_path(keyfile.target)}: {e}") from e
    return dek


def encryption_block(keyfile: TargetKeyFile) -> JSONObject:
    """The bundle's ``encryption`` object: the consumer wrap copied verbatim (docs/bundle-format.md)."""
    from compiler.secrets.envelope import ALG  # the AEAD stack, not for validate

    return {
        "alg": ALG,
        "kek": {"provider": keyfile.consumer.provider, "key_id": keyfile.consumer.key_id},
        "wrapped_dek": keyfile.consumer.to_json(),
        "commitment": keyfile.commitment,
    }


def dump_target_key(kf: TargetKeyFile) -> bytes:
    """Deterministic YAML text: fixed key order, every scalar JSON-quoted (valid YAML)."""
    q = json.dumps
    lines = [
        f"# llmcc data key of target {kf.target} (llmcc docs/bundle-format.md)."
        " Written by `llmcc keys rotate|update`; do not edit.",
        f"apiVersion: {q(_API)}",
        f"kind: {q(_KIND)}",
        f"target: {q(kf.target)}",
        f"created_at: {q(kf.created_at)}",
        f"commitment: {q(kf.commitment)}",
    ]
    for role, wrapped in (("consumer", kf.consumer), ("compiler", kf.compiler)):
        lines.append(f"{role}:")
        lines += [f"  {k}: {q(v)}" for k, v in wrapped.to_json().items()]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if read_target_key(data, path=key_file_path(kf.target)) != kf:  # serializers check their round trip (R13)
        raise AssertionError("key file does not round-trip")
    return data


def read_target_key(data: bytes, *, path: str) -> TargetKeyFile:
    """Parse and check a key file.

    Raises:
        InputError: bad YAML, or a missing, extra or malformed field (at path:line).
    """
    doc = load_document(data, path=path, layer="keys")
    value = doc.value
    if not isinstance(value, dict):
        raise InputError(f"{path}:1:1: a key file must be a mapping")
    for name in value:
        if name not in _FIELDS:
            raise InputError(f"{doc.origin((name,)).location()}: {unknown_field(name, _FIELDS)}")
    strings: dict[str, str] = {}
    for name in _FIELDS[:5]:
        item = value.get(name)
        if not isinstance(item, str) or not item:
            raise InputError(f"{doc.origin((name,)).location()}: {name} must be a non-empty string")
        strings[name] = item
    if (strings["apiVersion"], strings["kind"]) != (_API, _KIND):
        raise InputError(f"{path}:1:1: not an llmcc key file (apiVersion {_API}, kind {_KIND})")
    if not _COMMITMENT.fullmatch(strings["commitment"]):
        # exactly as dek_commitment writes it: the commitment names the key, so two spellings must not hide a copy
        where = doc.origin(("commitment",)).location()
        raise InputError(f"{where}: commitment must be hmac-sha256:<64 lowercase hex digits>")
    try:
        parse_rfc3339(strings["created_at"])
    except ValueError as e:
        raise InputError(f"{doc.origin(('created_at',)).location()}: created_at must be RFC 3339 UTC") from e
    wraps = {}
    for role in ("consumer", "compiler"):
        where = doc.origin((role,)).location()
        try:
            wraps[role] = WrappedKey.from_json(value.get(role), where=f"{where}: {role}")  # type: ignore[arg-type]
        except SecretsError as e:
            raise InputError(str(e)) from e
    return TargetKeyFile(
        target=strings["target"],
        created_at=strings["created_at"],
        commitment=strings["commitment"],
        consumer=wraps["consumer"],
        compiler=wraps["compiler"],
    )


def _same(wrapped: WrappedKey, provider: KeyProvider) -> bool:
    return (wrapped.provider, wrapped.key_id) == (provider.name, provider.key_id)


def _lost_readers(wrapped: WrappedKey, provider: KeyProvider) -> str:
    """Who could open ``wrapped`` but cannot open a wrap by ``provider``; empty when nobody."""
    if wrapped.provider != provider.name:
        return f"provider {wrapped.provider} ({wrapped.key_id})"
    if wrapped.provider == "age":
        removed = set(wrapped.key_id.split(",")) - set(provider.key_id.split(","))
        return f"recipient {', '.join(sorted(removed))}" if removed else ""
    return "" if wrapped.key_id == provider.key_id else f"key {wrapped.key_id}"
