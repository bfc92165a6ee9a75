"""Whether a published target is current: its signed pointer, a reader's high-water mark, the listing (issue 9 §3).

Pure: no IO (STYLE R2). Callers read the listing, the pointer and the
envelopes through a :class:`~compiler.storage.base.Store` and pass them in;
:mod:`compiler.reader` is that caller for ``verify``, ``pull`` and
``publish``, and the runtime client is meant to be another.

The model is TUF's client (python-tuf ``ngclient``: ``TrustedMetadataSet``
and ``Updater``), cut down to one chain per target:

- **Signed pointer = TUF's timestamp role.** A small envelope, signed by a
  trusted key with its own payload type, saying "target T is at version N,
  digest D, until time E". Every publish moves it; ``publish
  --refresh-pointer`` re-signs it with a later expiry. A reader refuses an
  expired pointer, so a store frozen at an old, validly signed state stops
  being served once the pointer expires (TUF spec 5.3.10, freeze attack).
- **High-water mark = TUF's trusted local metadata.** A reader keeps the
  version and digest it last accepted per store and target, and never
  accepts less: not a lower latest version, not a pointer below it, not
  another digest for the same version (TUF spec 5.3.5, rollback attack).
- **Pointer against listing ~ TUF's snapshot.** The store's listing is not
  trusted: the latest listed version must be the pointer's (or one above it,
  while a publish is between its two writes), so deleting the newest version,
  or adding a version number far above, is caught. Versions must be 1..N with
  no gap, and nothing else may be stored in a target's prefix.
- **Bounded reads = TUF's ``*_max_length``.** Stores refuse oversized or
  irregular objects before reading them (compiler/storage/base.py).

Unlike TUF there is no root role and no key rotation in the metadata: the
trusted keys come from ``signing.trusted`` of llmcc.yaml or ``--trusted-key``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from compiler.bundle.canonical import canonical_json, loads_canonical
from compiler.bundle.dsse import POINTER_PAYLOAD_TYPE, Keyring, Signer, sign_envelope, verify_envelope
from compiler.errors import VerificationError
from compiler.jsontypes import JSONObject
from compiler.limits import MAX_POINTER_EXPIRY
from compiler.storage.base import Listing

API_VERSION = "llmcc/v1"
POINTER_KIND = "Pointer"
DEFAULT_POINTER_EXPIRY = timedelta(days=7)
# How far a publisher's clock may run ahead of a reader's before a pointer signed
# with the longest expiry (MAX_POINTER_EXPIRY) is refused as too long.
CLOCK_SKEW = timedelta(days=1)
# publish claims version N, then moves the pointer to N: in between, the latest
# version is one above the pointer. More than that was not written by publish.
IN_FLIGHT = 1
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TIME = "%Y-%m-%dT%H:%M:%SZ"
_POINTER_KEYS = frozenset({"apiVersion", "kind", "target", "version", "digest", "expires"})
# A git object id (SHA-1 or SHA-256), as metadata.source.commit holds it.
_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


@dataclass(frozen=True, slots=True, kw_only=True)
class Pointer:
    """The signed statement "``target`` is at ``version`` with ``digest`` until ``expires``" (UTC, whole seconds).

    ``commit``: the newest source commit a publish compiled this version's
    content from (issue 13 §4: a commit that changes nothing of a target makes
    no new version, and is recorded here); None in pointers from before, and
    when that publish had no clean commit.
    """

    target: str
    version: int
    digest: str
    expires: datetime
    commit: str | None = None

    def __post_init__(self) -> None:
        if type(self.version) is not int or self.version < 1:
            raise ValueError(f"pointer version must be a positive integer, not {self.version!r}")
        if not _DIGEST.fullmatch(self.digest):
            raise ValueError(f"pointer digest must be sha256:<64 hex>, not {self.digest!r}")
        if self.expires.tzinfo is None or self.expires.microsecond:
            raise ValueError("pointer expiry must be an aware datetime in whole seconds")
        if self.commit is not None and not _COMMIT.fullmatch(str(self.commit)):
            raise ValueError(f"pointer commit must be a full git object id, not {self.commit!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Seen:
    """A reader's high-water mark for one target of one store: the newest version it accepted."""

    version: int
    digest: str


def new_pointer(
    target: str, version: int, digest: str, *, now: datetime, expires_after: timedelta, commit: str | None = None
) -> Pointer:
    """The pointer a publisher signs at ``now`` (rounded down to the second)."""
    return Pointer(
        target=target,
        version=version,
        digest=digest,
        expires=now.astimezone(UTC).replace(microsecond=0) + expires_after,
        commit=commit,
    )


def sign_pointer(pointer: Pointer, signer: Signer) -> bytes:
    """The DSSE envelope (payload type ``application/vnd.llmcc.pointer+json``) of ``pointer``.

    The ``commit`` key is written only when the pointer records one.
    """
    obj: JSONObject = {
        "apiVersion": API_VERSION,
        "kind": POINTER_KIND,
        "target": pointer.target,
        "version": pointer.version,
        "digest": pointer.digest,
        "expires": pointer.expires.astimezone(UTC).strftime(_TIME),
    }
    if pointer.commit is not None:
        obj["commit"] = pointer.commit
    return sign_envelope(canonical_json(obj), signer, payload_type=POINTER_PAYLOAD_TYPE)


def verify_pointer(envelope: bytes, target: str, keyring: Keyring) -> Pointer:
    """The pointer in ``envelope``, once checked.

    1. a DSSE envelope of payload type ``application/vnd.llmcc.pointer+json``
       signed by a key of ``keyring``;
    2. the payload is canonical JSON with exactly the pointer's keys (``commit``
       optional), an ``llmcc/v1`` ``Pointer``;
    3. its ``target`` is ``target`` (a pointer copied from another target is refused);
    4. ``version`` a positive integer, ``digest`` a sha256 digest, ``expires``
       a UTC time ``YYYY-MM-DDTHH:MM:SSZ``, ``commit`` (if present) a full git object id.

    Raises:
        VerificationError: ``<target> pointer: <what failed>``.
    """
    where = f"{target} pointer"
    payload = verify_envelope(envelope, keyring, where=where, payload_type=POINTER_PAYLOAD_TYPE)
    try:
        obj = loads_canonical(payload)
    except ValueError as e:
        raise VerificationError(f"{where}: signed payload is not canonical JSON ({e})") from e
    if not isinstance(obj, dict) or set(obj) - {"commit"} != _POINTER_KEYS:
        raise VerificationError(f"{where}: signed payload must have exactly the keys {sorted(_POINTER_KEYS)}")
    if obj["apiVersion"] != API_VERSION or obj["kind"] != POINTER_KIND:
        raise VerificationError(f"{where}: signed payload is not an {API_VERSION} {POINTER_KIND}")
    if obj["target"] != target:
        raise VerificationError(
            f"{where}: it points into target {obj['target']!r}, but it is stored as {target!r}", reason="wrong_target"
        )
    version, digest, expires = obj["version"], obj["digest"], obj["expires"]
    try:
        when = datetime.strptime(str(expires), _TIME).replace(tzinfo=UTC)
        if not isinstance(expires, str) or when.strftime(_TIME) != expires or not isinstance(digest, str):
            raise ValueError("not canonical")
        return Pointer(target=target, version=version, digest=digest, expires=when, commit=obj.get("commit"))  # type: ignore[arg-type]
    except ValueError as e:
        raise VerificationError(f"{where}: version, digest, expires or commit is malformed ({e})") from e


def check_listing(target: str, listing: Listing) -> int:
    """The latest version of ``target`` (0 for none), once the listing is one clean chain.

    Refused: any stray name in the target's prefix (temp files, other
    spellings of a number such as ``v0``, nine digits, hex, Unicode digits),
    and versions that are not exactly 1..N.

    Raises:
        VerificationError: naming the first stray object or the missing version.
    """
    if listing.strays:
        names = ", ".join(repr(n) for n in listing.strays[:3]) + (", ..." if len(listing.strays) > 3 else "")
        raise VerificationError(
            # the runtime tier: not compiler.diagnostics.plural
            f"{target}: the store holds {len(listing.strays)} object{'' if len(listing.strays) == 1 else 's'} "
            f"besides the canonical versions: {names}",
            reason="gap",
        )
    for expected, version in enumerate(listing.versions, start=1):
        if version != expected:
            raise VerificationError(
                f"{target}: version {expected} is missing (the store lists {version} next)", reason="gap"
            )
    return len(listing.versions)


def check_pointer(
    target: str,
    pointer: Pointer | None,
    latest: int,
    *,
    seen: Seen | None,
    now: datetime | None,
    in_flight: int = IN_FLIGHT,
) -> None:
    """The listing's ``latest`` against the signed ``pointer`` and the reader's ``seen`` mark.

    In order (``now`` None skips 2: a publisher about to re-sign the pointer):

    1. a pointer exists whenever a version does or the reader has seen one;
    2. the pointer has not expired at ``now`` (freeze), and does not expire
       more than :data:`~compiler.limits.MAX_POINTER_EXPIRY` (plus
       :data:`CLOCK_SKEW`) after ``now`` (a replay window of years);
    3. ``latest`` is not below the pointer (the newest versions were removed);
    4. ``latest`` is at most ``in_flight`` above the pointer (a version that
       no publish pointed to). Readers keep :data:`IN_FLIGHT`; a publisher,
       which verifies every version above the pointer, allows concurrent
       publishers' claims that have not moved the pointer yet;
    5. ``latest`` is not below ``seen`` (rollback), and the pointer is not
       below ``seen`` minus :data:`IN_FLIGHT` (an old pointer replayed).

    Raises:
        VerificationError: one line naming the target and what is wrong.
    """
    if pointer is None:
        if latest or seen is not None:
            have = f"the store lists versions 1-{latest}" if latest else f"this reader has seen version {seen.version}"  # type: ignore[union-attr]
            raise VerificationError(
                f"{target}: no signed pointer, but {have}; "
                "a deleted pointer can hide deleted versions (rollback?); only if this store predates pointers: "
                "check its newest version against the publish log, then llmcc publish --refresh-pointer",
                reason="missing_pointer",
            )
        return
    if now is not None and now >= pointer.expires:
        raise VerificationError(
            f"{target}: the signed pointer expired at {pointer.expires.strftime(_TIME)} (a frozen store?); "
            "the publisher refreshes it with llmcc publish --refresh-pointer",
            reason="expired_pointer",
        )
    if now is not None and pointer.expires - now > MAX_POINTER_EXPIRY + CLOCK_SKEW:
        raise VerificationError(
            f"{target}: the signed pointer is valid until {pointer.expires.strftime(_TIME)}, more than "
            f"{MAX_POINTER_EXPIRY.days} days from now: a copy of this store could be replayed that long; "
            "re-sign it with a shorter storage.pointer_expiry (llmcc publish --refresh-pointer)",
            reason="pointer_too_long",
        )
    if latest < pointer.version:
        listed = f"the latest listed version is {latest}" if latest else "the store lists no version"
        raise VerificationError(
            f"{target}: {listed}, older than version {pointer.version} of the signed pointer (rollback?)",
            reason="rollback",
        )
    if latest > pointer.version + in_flight:
        raise VerificationError(
            f"{target}: version {latest} is far above version {pointer.version} of the signed pointer; "
            f"versions {pointer.version + in_flight + 1}-{latest} were not published by llmcc publish",
            reason="unpublished_version",
        )
    if seen is not None:
        if latest < seen.version:
            raise VerificationError(
                f"{target}: the latest version is {latest}, older than version {seen.version} "
                "this reader already accepted (rollback?)",
                reason="rollback",
            )
        if pointer.version + IN_FLIGHT < seen.version:
            raise VerificationError(
                f"{target}: the signed pointer names version {pointer.version}, older than version "
                f"{seen.version} this reader already accepted (an old pointer replayed?)",
                reason="rollback",
            )


def first_to_fetch(latest: int, *, pointer: Pointer | None, seen: Seen | None, wanted: int | None = None) -> int:
    """The first version a reader must fetch and verify, up to ``latest``, to check every digest it knows.

    That is the latest's predecessor (the chain link), the pointer's version,
    the reader's ``seen`` version and the ``wanted`` one, whichever is lowest.
    """
    first = max(1, latest - 1)
    for version in (pointer.version if pointer else None, seen.version if seen else None, wanted):
        if version is not None and 1 <= version < first:
            first = version
    return first


def check_digests(
    target: str, digests: Sequence[tuple[int, str]], *, pointer: Pointer | None, seen: Seen | None
) -> Seen:
    """The verified (version, digest) pairs against the pointer and ``seen``; the new high-water mark.

    ``digests`` are of versions already verified as one linked chain up to the
    latest, and include the pointer's and ``seen``'s versions (see
    :func:`first_to_fetch`).

    Raises:
        VerificationError: a version has another digest than the pointer or
            the reader's mark says (the chain was rewritten).
    """
    by_version = dict(digests)
    if pointer is not None and by_version.get(pointer.version) != pointer.digest:
        raise VerificationError(
            f"{target} version {pointer.version}: digest {by_version.get(pointer.version)} is not "
            f"{pointer.digest} that the signed pointer names (the chain was rewritten)",
            reason="rewritten_chain",
        )
    if seen is not None and by_version.get(seen.version) != seen.digest:
        raise VerificationError(
            f"{target} version {seen.version}: digest {by_version.get(seen.version)} is not "
            f"{seen.digest} that this reader accepted before (the chain was rewritten)",
            reason="rewritten_chain",
        )
    latest, digest = max(by_version.items())
    return Seen(version=latest, digest=digest)
