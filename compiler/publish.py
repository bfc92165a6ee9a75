"""Publishing: assign the next version, link the hash chain, sign, claim the version (DESIGN §6-§7).

Storage IO goes through the :class:`~compiler.storage.base.Store` given in;
everything else here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.bundle.canonical import canonical_json, digest, loads_strict
from compiler.bundle.dsse import Signer, read_unverified_payload, sign_envelope
from compiler.errors import StorageError, VerificationError
from compiler.jsontypes import JSONObject
from compiler.storage.base import Store


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishResult:
    """What ``publish_target`` did: ``created`` is False when the latest version already had this body."""

    target: str
    version: int
    digest: str
    created: bool


def publish_target(
    store: Store, target: str, body: JSONObject, signer: Signer, *, max_attempts: int = 5
) -> PublishResult:
    """Publish ``body`` as the next version of ``target``, unless it is already the latest.

    ``body`` is the whole bundle object with ``metadata.version`` and
    ``metadata.previous`` absent or null; this function assigns them. Publishing the body of the
    latest version again adds nothing (``created=False``), so re-running
    publish on an unchanged commit is idempotent.

    Races handled (STYLE R14):

    - two publishers compute the same next version N+1: ``store.create`` is
      create-only, so exactly one gets N+1; the loser re-reads the latest
      (now the winner's) and retries with N+2 linked to it, at most
      ``max_attempts`` times, and otherwise raises rather than report success;
    - both publish the same body: the loser finds it as the latest and
      returns ``created=False``;
    - the latest we link to is replaced before our claim (possible on OCI
      only, see compiler/storage/oci.py): the store refuses the claim, and we
      re-read and link to what it holds;
    - a publisher dies before ``create`` succeeds: nothing is visible, the
      latest stays intact; after it succeeds, the version is complete.

    Raises:
        StorageError: the store failed, or every attempt lost a race.
        VerificationError: the store's latest version is not a parseable bundle.
        ValueError: ``body`` is not for ``target`` or already has a version.
    """
    wanted, meta = _check_body(target, body)
    for _ in range(max_attempts):
        versions = store.versions(target)
        latest = versions[-1] if versions else 0
        previous: str | None = None
        latest_envelope: bytes | None = None
        if latest:
            where = f"{store.url}: {target} version {latest}"
            latest_envelope = store.read(target, latest)
            payload = read_unverified_payload(latest_envelope, where=where)
            previous = digest(payload)
            if _without_chain(payload, where=where) == wanted:
                return PublishResult(target=target, version=latest, digest=previous, created=False)
        payload = canonical_json({**body, "metadata": {**meta, "version": latest + 1, "previous": previous}})
        if store.create(target, latest + 1, sign_envelope(payload, signer), previous=latest_envelope):
            return PublishResult(target=target, version=latest + 1, digest=digest(payload), created=True)
        # Lost the race for latest+1 to another publisher: loop re-reads the new latest.
    raise StorageError(
        f"{store.url}: {target}: another publisher claimed the next version {max_attempts} times in a row; "
        "nothing was published for this target, try again"
    )


def _check_body(target: str, body: JSONObject) -> tuple[bytes, JSONObject]:
    """The canonical bytes of ``body`` without version/previous, and its metadata."""
    meta = body.get("metadata")
    if not isinstance(meta, dict) or meta.get("target") != target:
        raise ValueError(f"bundle body must have metadata.target {target!r}")
    if meta.get("version") is not None or meta.get("previous") is not None:
        raise ValueError("metadata.version and metadata.previous are assigned by publish_target")
    meta = {k: v for k, v in meta.items() if k not in ("version", "previous")}
    return canonical_json({**body, "metadata": meta}), meta


def _without_chain(payload: bytes, *, where: str) -> bytes:
    """The canonical bytes of a stored bundle minus ``metadata.version`` and ``metadata.previous``."""
    try:
        obj = loads_strict(payload)
    except ValueError as e:
        raise VerificationError(f"{where}: the latest bundle is not JSON ({e}); run llmcc verify") from e
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        raise VerificationError(f"{where}: the latest bundle has no metadata; run llmcc verify")
    meta.pop("version", None)
    meta.pop("previous", None)
    return canonical_json(obj)
