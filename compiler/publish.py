"""Publishing: check the signing key, verify what we extend, claim the next version, move the pointer.

The objects it writes: docs/store-layout.md.

Storage IO goes through the :class:`~compiler.storage.base.Store` given in;
everything else here is pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from compiler.bundle.canonical import canonical_json, digest
from compiler.bundle.dsse import Keyring, Signer, sign_envelope
from compiler.delta import make_delta
from compiler.errors import StorageError, VerificationError
from compiler.freshness import DEFAULT_POINTER_EXPIRY, Pointer, new_pointer, sign_pointer, verify_pointer
from compiler.jsontypes import JSONObject
from compiler.reader import ANY_IN_FLIGHT, TargetRead, read_target
from compiler.storage.base import MissingObjectError, NoStoreError, Store


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishResult:
    """What ``publish_target`` did.

    ``created`` is False when the latest version already had this content;
    then ``recorded`` says whether the pointer now records a commit it did not
    (the publish's own, issue 13 §4).
    """

    target: str
    version: int
    digest: str
    created: bool
    recorded: bool = False


def check_signer_trusted(signer: Signer, trusted: Keyring, *, where: str = "signing key") -> None:
    """Refuse a signing key that readers would not trust (issue 9 §2).

    Raises:
        VerificationError: the signer's public key is not in ``trusted``, naming
            its key id and the trusted ones.
    """
    if all(key.raw != signer.public_key.raw for key in trusted):
        ids = ", ".join(key.keyid for key in trusted) or "none"
        raise VerificationError(
            f"{where}: key {signer.public_key.keyid} is not in signing.trusted (trusted: {ids}); "
            "readers would refuse what it signs, so nothing was published"
        )


def publish_target(
    store: Store,
    target: str,
    body: JSONObject,
    signer: Signer,
    *,
    trusted: Keyring | None = None,
    now: datetime | None = None,
    expires_after: timedelta = DEFAULT_POINTER_EXPIRY,
    max_attempts: int = 5,
    behind: Callable[[str, str], bool] | None = None,
) -> PublishResult:
    """Publish ``body`` as the next version of ``target``, unless it is already the latest.

    ``body`` is the whole bundle object with ``metadata.version`` and
    ``metadata.previous`` absent or null; this function assigns them.
    ``trusted`` (default: the signer's own key) is what the signer must be in
    and what the chain we extend must verify with. Steps:

    1. the signer is trusted (:func:`check_signer_trusted`), before any IO;
    2. the target verifies as readers check it (:func:`compiler.reader.read_target`:
       listing, signed pointer, every version from the pointer's up, chain
       links), except that an expired pointer is fine (we re-sign it); a
       store we cannot verify is refused, naming the bad version, and nothing
       is written;
    3. if the latest version has this content (:func:`content_bytes`: all but
       ``metadata.version``, ``previous``, ``source`` and ``compiler``): no new
       version (``created=False``), so consumers reload nothing (issue 13 §4);
       the pointer is re-signed if it lags (a publisher died between claim and
       pointer; the missing delta is written too), has expired, or does not yet
       record this publish's commit (``recorded=True``). Re-running publish on
       an unchanged commit is idempotent;
    4. else claim version N+1 linked to N's verified digest, store the delta
       from N to N+1 (:func:`compiler.delta.make_delta`, issue 11 §7), then move
       the pointer to it (``expires_after`` from ``now``).

    The commit recorded in the pointer is ``metadata.source.commit`` of
    ``body`` when its tree was clean; a dirty or non-git publish records none
    (and keeps the commit the pointer had for the same version), and so does
    the publish of a commit that ``behind(commit, recorded)`` says is an
    ancestor of the one recorded (an old pipeline run again): the pointer's
    commit never moves back in history.

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
    - two publishers move the pointer: ``swap_pointer`` is a compare-and-swap,
      and the pointer only ever moves up (see :func:`move_pointer`);
    - a listed version cannot be read for a moment (an OCI tag being
      rewritten by a concurrent claim): re-read, within ``max_attempts``;
    - a publisher dies before ``create`` succeeds: nothing is visible; after
      it, before the pointer moves: readers accept the one version above the
      pointer, and the next publish moves the pointer.

    Raises:
        StorageError: the store failed, or every attempt lost a race.
        VerificationError: the signer is untrusted, or the stored target does not verify.
        ValueError: ``body`` is not for ``target`` or already has a version.
    """
    trusted = trusted if trusted is not None else Keyring([signer.public_key])
    check_signer_trusted(signer, trusted)
    meta = _check_body(target, body)
    wanted, commit = content_bytes(body), _clean_commit(meta)
    when = now or datetime.now(UTC)
    vanished: MissingObjectError | None = None
    for _ in range(max_attempts):
        try:
            state = _read_for_publish(store, target, trusted)
            vanished = None
        except MissingObjectError as e:
            vanished = e
            # Race: a version listed a moment ago could not be read. On OCI a concurrent
            # claim rewriting its tag can answer 404 for a moment; re-list. A version
            # really deleted is then missing from the listing, and refused as a gap.
            continue
        latest = state.latest
        if latest is not None and content_bytes(latest.bundle) == wanted:
            pointer = state.pointer
            lags = pointer is None or pointer.version < latest.version
            kept = pointer.commit if pointer is not None and not lags else None
            stale = bool(commit and kept and commit != kept and behind is not None and behind(commit, kept))
            fresh = None if stale else commit
            record = fresh or kept
            if lags and len(state.chain) > 1:
                _store_delta(store, state, latest.version)  # the publisher that claimed it died before this
            if lags or when >= pointer.expires or record != pointer.commit:  # type: ignore[union-attr]
                _resign_latest(
                    store, target, state, signer, trusted=trusted, now=when, expires_after=expires_after, commit=record
                )
            # a re-run of the commit that made the version records nothing new
            recorded = fresh is not None and fresh not in (kept, _clean_commit(latest.metadata))
            return PublishResult(
                target=target, version=latest.version, digest=latest.digest, created=False, recorded=recorded
            )
        version = latest.version + 1 if latest else 1
        payload = canonical_json(
            {**body, "metadata": {**meta, "version": version, "previous": latest.digest if latest else None}}
        )
        envelope = sign_envelope(payload, signer)
        if store.create(target, version, envelope, previous=state.latest_envelope):
            if latest is not None:
                _put_delta(store, target, version, latest.payload, envelope)
            move_pointer(
                store,
                target,
                version,
                digest(payload),
                signer,
                trusted=trusted,
                now=when,
                expires_after=expires_after,
                expected=state.pointer_envelope,
                commit=commit,
            )
            return PublishResult(target=target, version=version, digest=digest(payload), created=True)
        # Lost the race for the next version to another publisher: loop re-reads the new latest.
    if vanished is not None:
        raise vanished
    raise StorageError(
        f"{store.url}: {target}: another publisher claimed the next version {max_attempts} times in a row; "
        "nothing was published for this target, try again"
    )


def refresh_pointer(
    store: Store,
    target: str,
    signer: Signer,
    *,
    trusted: Keyring,
    now: datetime,
    expires_after: timedelta = DEFAULT_POINTER_EXPIRY,
) -> Pointer:
    """Re-sign the pointer of ``target`` to its latest version, expiring ``expires_after`` from ``now``.

    For the scheduled CI job that keeps pointers from expiring, and to give a
    store from before pointers its first one. The whole chain is verified
    first (versions 1..N, as ``llmcc verify``), so a pointer is never signed
    over a chain that does not verify.

    Raises:
        VerificationError: the signer is untrusted, the target does not verify,
            or nothing is published for it.
        StorageError: the store failed.
    """
    check_signer_trusted(signer, trusted)
    state = read_target(store, target, trusted, now=None, full=True, need_pointer=False, in_flight=ANY_IN_FLIGHT)
    latest = state.latest
    if latest is None:
        raise VerificationError(f"{target}: nothing published in {store.url}, so no pointer to refresh")
    pointer = state.pointer
    # the commit the pointer records stays: no publish has vouched for a newer one
    commit = pointer.commit if pointer is not None and pointer.version == latest.version else None
    return _resign_latest(
        store, target, state, signer, trusted=trusted, now=now, expires_after=expires_after, commit=commit
    )


def move_pointer(
    store: Store,
    target: str,
    version: int,
    version_digest: str,
    signer: Signer,
    *,
    trusted: Keyring,
    now: datetime,
    expires_after: timedelta,
    expected: bytes | None,
    refresh: bool = False,
    max_attempts: int = 5,
    commit: str | None = None,
) -> Pointer:
    """Point ``target`` at ``version``, recording ``commit``: compare-and-swap from ``expected``, never downwards.

    When the swap loses (another publisher moved the pointer), the pointer
    found is verified: at a higher version (or the same one, unless
    ``refresh``), it is left alone, since that publisher's version links
    to ours; below, the swap is retried from it.

    Returns:
        The pointer the store holds for ``version`` or above afterwards.

    Raises:
        VerificationError: the pointer found names ``version`` with another digest.
        StorageError: every attempt lost a race.
    """
    pointer = new_pointer(target, version, version_digest, now=now, expires_after=expires_after, commit=commit)
    for _ in range(max_attempts):
        if store.swap_pointer(target, sign_pointer(pointer, signer), expected=expected):
            return pointer
        expected = store.read_pointer(target)
        if expected is None:
            continue
        found = verify_pointer(expected, target, trusted)
        if found.version == version and found.digest != version_digest:
            raise VerificationError(
                f"{target}: the pointer names version {version} with digest {found.digest}, not {version_digest}; "
                "run llmcc verify"
            )
        if found.version > version or (found.version == version and not refresh):
            return found
    raise StorageError(f"{store.url}: {target}: other publishers kept moving the pointer; run llmcc verify")


def _read_for_publish(store: Store, target: str, trusted: Keyring) -> TargetRead:
    """The target as readers verify it (no expiry check), or the refusal naming what is bad."""
    try:
        # no pointer yet: a concurrent first publish between its two writes, or a store
        # from before pointers; the whole chain is verified, and the pointer created
        return read_target(store, target, trusted, now=None, need_pointer=False, in_flight=ANY_IN_FLIGHT)
    except NoStoreError:
        # a first publish creates the store (a file:// directory); readers refuse a missing one
        return TargetRead(target=target, chain=[], pointer=None, pointer_envelope=None, latest_envelope=None, seen=None)
    except VerificationError as e:
        raise VerificationError(
            f'{store.url}: refusing to extend {target}: {e}; see README "Repairing a store"', reason=e.reason
        ) from e


def content_bytes(bundle: JSONObject) -> bytes:
    """What a version's consumers load: the canonical bundle minus ``metadata`` ``version``,
    ``previous``, ``source`` and ``compiler`` (issue 13 §4).

    So ``modules`` (secret fields as sealed: sealing is deterministic, so an
    unchanged secret under an unchanged data key keeps its ciphertext),
    ``encryption`` (the wrapped data key: who can read, changed by ``keys
    update``/``rotate``), and the rest of ``metadata`` (project, target).
    """
    meta = bundle.get("metadata")
    assert isinstance(meta, dict)  # checked by _check_body, or a verified bundle
    kept = {k: v for k, v in meta.items() if k not in _NOT_CONTENT}
    return canonical_json({**bundle, "metadata": kept})


# metadata that says where and when a version came from, not what its consumers load
_NOT_CONTENT = frozenset({"version", "previous", "source", "compiler"})


def _check_body(target: str, body: JSONObject) -> JSONObject:
    """The metadata of ``body`` without version/previous."""
    meta = body.get("metadata")
    if not isinstance(meta, dict) or meta.get("target") != target:
        raise ValueError(f"bundle body must have metadata.target {target!r}")
    if meta.get("version") is not None or meta.get("previous") is not None:
        raise ValueError("metadata.version and metadata.previous are assigned by publish_target")
    return {k: v for k, v in meta.items() if k not in ("version", "previous")}


def _clean_commit(meta: JSONObject) -> str | None:
    """``metadata.source.commit`` of a clean tree, else None (a dirty tree's content is no commit's)."""
    source = meta.get("source")
    if not isinstance(source, dict) or source.get("dirty") is not False:
        return None
    commit = source.get("commit")
    return commit if isinstance(commit, str) else None


def _store_delta(store: Store, state: TargetRead, version: int) -> None:
    """Write the delta to ``version`` from the verified chain of ``state``, if the store has none."""
    if store.read_delta(state.target, version) is None:
        _put_delta(store, state.target, version, state.version(version - 1).payload, state.latest_envelope or b"")


def _put_delta(store: Store, target: str, version: int, base_payload: bytes, envelope: bytes) -> None:
    """Store the delta from ``base_payload`` (version - 1) to ``envelope``, when one is worth storing."""
    delta = make_delta(target, version, base_payload, envelope)
    if delta is not None:
        store.create_delta(target, version, delta)


def _resign_latest(
    store: Store,
    target: str,
    state: TargetRead,
    signer: Signer,
    *,
    trusted: Keyring,
    now: datetime,
    expires_after: timedelta,
    commit: str | None,
) -> Pointer:
    """Sign a new pointer to the verified ``state.latest`` recording ``commit``, swapping out the one ``state`` read."""
    latest = state.latest
    assert latest is not None  # callers publish or refresh only a target that has versions
    return move_pointer(
        store,
        target,
        latest.version,
        latest.digest,
        signer,
        trusted=trusted,
        now=now,
        expires_after=expires_after,
        expected=state.pointer_envelope,
        refresh=True,
        commit=commit,
    )
