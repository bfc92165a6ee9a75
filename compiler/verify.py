"""Verification of published bundles: signature, content, target, version, hash chain (docs/bundle-format.md).

Pure: callers read the envelopes from a store and pass the bytes in (STYLE R2).
Every function returns only what it verified, or raises
:class:`~compiler.errors.VerificationError` naming target, version and what
failed (STYLE R16).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from compiler.bundle.canonical import InvalidJsonError, NotCanonicalError, digest, loads_canonical
from compiler.bundle.dsse import Keyring, verify_envelope
from compiler.errors import VerificationError
from compiler.jsontypes import JSONObject

API_VERSION = "llmcc/v1"
KIND = "Bundle"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedBundle:
    """A bundle whose checks all passed. ``payload`` is exactly the signed bytes."""

    target: str
    version: int
    payload: bytes
    digest: str
    bundle: JSONObject
    metadata: JSONObject


def verify_chain(
    target: str, envelopes: Sequence[tuple[int, bytes]], keyring: Keyring, *, start: int = 1
) -> list[VerifiedBundle]:
    """Verify the stored versions ``start``.. of ``target``, given as (stored version, envelope bytes), ascending.

    For each envelope, in order:

    1. it is a DSSE envelope signed by a key of ``keyring`` (:func:`verify_envelope`);
       nothing of the payload is read before this passes;
    2. the payload is a JSON object in exactly canonical form, with
       ``apiVersion`` ``llmcc/v1``, ``kind`` ``Bundle`` and a ``metadata`` object;
    3. ``metadata.target`` equals ``target``, the target it is stored under;
    4. ``metadata.version`` equals the version it is stored as; stored versions
       start at ``start`` and increase by exactly 1 (no gaps, no repeats);
    5. ``metadata.previous`` is null for version 1, else ``digest()`` of the
       payload of version n-1; for a first version ``start`` > 1, whose
       predecessor is not given, at least a ``sha256:`` digest.

    Returns:
        The verified bundles, one per envelope, in order; [] when there are none.

    Raises:
        VerificationError: the first check that failed, as ``<target> version <n>: <what>``.
    """
    verified: list[VerifiedBundle] = []
    for expected, (stored, envelope) in enumerate(envelopes, start=start):
        bundle = _verify_content(target, stored, envelope, keyring)
        if stored != expected:
            what = "is missing" if stored > expected else "is stored twice or out of order"
            raise VerificationError(
                f"{target} version {expected} {what}: the chain is broken at {stored}", reason="gap"
            )
        if verified or start == 1:
            _check_previous(bundle, verified[-1] if verified else None)
        elif not _DIGEST.fullmatch(str(bundle.metadata.get("previous"))):
            raise VerificationError(
                f"{target} version {stored}: metadata.previous is not a sha256 digest", reason="broken_chain"
            )
        verified.append(bundle)
    return verified


def _verify_content(target: str, version: int, envelope: bytes, keyring: Keyring) -> VerifiedBundle:
    """Checks 1-4 (without the sequence) of one envelope."""
    where = f"{target} version {version}"
    payload = verify_envelope(envelope, keyring, where=where)
    bundle, meta = _parse_bundle(payload, where=where)
    if meta.get("target") != target:
        raise VerificationError(
            f"{where}: bundle is for target {meta.get('target')!r}, but it is stored as {target!r}",
            reason="wrong_target",
        )
    claimed = meta.get("version")
    if type(claimed) is not int or claimed != version:
        raise VerificationError(
            f"{where}: bundle says version {claimed!r}, but it is stored as {version}", reason="wrong_version"
        )
    return VerifiedBundle(
        target=target, version=version, payload=payload, digest=digest(payload), bundle=bundle, metadata=meta
    )


def _check_previous(bundle: VerifiedBundle, before: VerifiedBundle | None) -> None:
    link = bundle.metadata.get("previous", "<absent>")
    where = f"{bundle.target} version {bundle.version}"
    if before is None:
        if link is not None:
            raise VerificationError(
                f"{where}: the first version must have previous null, not {link!r}", reason="broken_chain"
            )
    elif link != before.digest:
        raise VerificationError(
            f"{where}: previous is {link!r}, but version {before.version} has digest {before.digest}",
            reason="broken_chain",
        )


def _parse_bundle(payload: bytes, *, where: str) -> tuple[JSONObject, JSONObject]:
    try:
        obj = loads_canonical(payload)
    except NotCanonicalError as e:
        raise VerificationError(f"{where}: signed payload is not canonical JSON") from e
    except InvalidJsonError as e:
        raise VerificationError(f"{where}: signed payload is {e}") from e
    if not isinstance(obj, dict):
        raise VerificationError(f"{where}: signed payload is not a JSON object")
    if obj.get("apiVersion") != API_VERSION or obj.get("kind") != KIND:
        raise VerificationError(f"{where}: signed payload is not an {API_VERSION} {KIND}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise VerificationError(f"{where}: bundle has no metadata object")
    return obj, meta
