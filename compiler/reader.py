"""Reading a published target the way every reader must (issue 9 §2-§3).

The one path by which ``verify``, ``pull`` and ``publish`` read a target:
list it, read and verify its signed pointer, fetch and verify the versions
that every known digest lives in, and check them against the pointer and the
reader's high-water mark. IO only through the given
:class:`~compiler.storage.base.Store`; every check is in the pure modules
:mod:`compiler.freshness` and :mod:`compiler.verify`.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from compiler.bundle.dsse import Keyring
from compiler.delta import DeltaError, envelope_payload, rebuild_envelope
from compiler.errors import StorageError, UnknownTargetError, VerificationError
from compiler.freshness import (
    Pointer,
    Seen,
    check_digests,
    check_listing,
    check_pointer,
    first_to_fetch,
    verify_pointer,
)
from compiler.storage.base import Store
from compiler.verify import VerifiedBundle, verify_chain

# What a publisher allows above the pointer: concurrent publishers' claims (each one verified).
ANY_IN_FLIGHT = sys.maxsize


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetRead:
    """A target as verified: versions ``chain[0].version``..latest, its pointer, the new high-water mark.

    ``chain`` is empty, and ``seen`` None, when nothing is published (and
    nothing was expected). ``latest_envelope`` is the envelope of the
    latest version as verified: the stored bytes (a publisher links to them),
    or for a reader that passed ``held``, possibly the envelope rebuilt from a
    delta (the same signed payload). ``via_delta``: the versions rebuilt from deltas.
    ``envelopes``: (version, envelope) of every version in ``chain``, as verified
    (a reader keeps the latest ones as ``held`` for its next read).
    """

    target: str
    chain: list[VerifiedBundle]
    pointer: Pointer | None
    pointer_envelope: bytes | None
    latest_envelope: bytes | None
    seen: Seen | None
    via_delta: tuple[int, ...] = ()
    envelopes: tuple[tuple[int, bytes], ...] = ()

    @property
    def latest(self) -> VerifiedBundle | None:
        return self.chain[-1] if self.chain else None

    def version(self, version: int) -> VerifiedBundle:
        """The verified bundle of ``version``, which must be in ``chain``."""
        return self.chain[version - self.chain[0].version]


def read_target(
    store: Store,
    target: str,
    keyring: Keyring,
    *,
    now: datetime | None,
    seen: Seen | None = None,
    wanted: int | None = None,
    full: bool = False,
    need_pointer: bool = True,
    in_flight: int = 1,
    held: Mapping[int, bytes] | None = None,
) -> TargetRead:
    """Verify ``target`` in ``store`` against ``keyring``, the reader's ``seen`` mark and the clock.

    Steps, each refusing with :class:`~compiler.errors.VerificationError`:

    1. the pointer is read, then the listing, which is versions 1..N and nothing else
       (:func:`~compiler.freshness.check_listing`);
       when ``full``, versions 1..N verify as one chain (step 3) before step 2;
    2. the signed pointer verifies (:func:`~compiler.freshness.verify_pointer`) and
       agrees with N, ``seen`` and ``now`` (:func:`~compiler.freshness.check_pointer`;
       ``now`` None: no expiry check; ``need_pointer`` False: a store from
       before pointers may have none);
    3. versions from :func:`~compiler.freshness.first_to_fetch` (1 when ``full``)
       to N verify as one linked chain (:func:`~compiler.verify.verify_chain`);
    4. their digests match the pointer's and ``seen``'s (:func:`~compiler.freshness.check_digests`).

    ``held`` (version -> envelope bytes, unless ``full``) saves fetches: a held
    version needed in step 3 is not fetched, and the version after a held or
    rebuilt one is rebuilt from its delta (:func:`compiler.delta.rebuild_envelope`,
    issue 11 §7) when the store has one. What is held or rebuilt goes through
    steps 3 and 4 like fetched bytes, so it is accepted only if a trusted key signed
    exactly it and the pointer's digest pins it; if step 3 or 4 fails, every
    version is fetched whole and steps 3 and 4 run again, as without ``held``.

    Raises:
        VerificationError: a check failed.
        StorageError: the store cannot be read (CorruptObjectError, exit 3:
            an object is oversized or not a regular object).
    """
    # Race: publish claims a version, then moves the pointer. Read in the other order
    # (pointer, then listing), a reader sees the listing at or above the pointer; listing
    # first, a publish in between would look like a rollback.
    pointer_envelope = store.read_pointer(target)
    listing = store.listing(target)
    if pointer_envelope is None and listing.pointer:
        # listed a moment ago: an OCI tag rewritten by a concurrent publish can 404 briefly
        pointer_envelope = store.read_pointer(target)
        listing = store.listing(target)
    latest = check_listing(target, listing)
    # without a pointer to start from, a publisher verifies the whole chain
    full = full or (pointer_envelope is None and not need_pointer)
    envelopes: list[tuple[int, bytes]] = []
    via_delta: list[int] = []
    chain: list[VerifiedBundle] = []
    if full and latest:
        # verify checks the whole chain first, so that a bad version is named even when
        # the pointer (signed by the same bad key, say) is bad too
        envelopes = [(v, store.read(target, v)) for v in range(1, latest + 1)]
        chain = verify_chain(target, envelopes, keyring)
    pointer = verify_pointer(pointer_envelope, target, keyring) if pointer_envelope is not None else None
    if pointer is not None or need_pointer:
        check_pointer(target, pointer, latest, seen=seen, now=now, in_flight=in_flight)
    if latest == 0:
        return TargetRead(
            target=target, chain=[], pointer=pointer, pointer_envelope=None, latest_envelope=None, seen=None
        )
    if full:
        new_seen = check_digests(target, [(b.version, b.digest) for b in chain], pointer=pointer, seen=seen)
    else:
        first = first_to_fetch(latest, pointer=pointer, seen=seen, wanted=wanted)
        envelopes, via_delta = _fetch(store, target, first, latest, held or {})
        try:
            chain = verify_chain(target, envelopes, keyring, start=first)
            new_seen = check_digests(target, [(b.version, b.digest) for b in chain], pointer=pointer, seen=seen)
        except VerificationError:
            if not held:
                raise
            # something held, or rebuilt from a delta, is not what the store signed, or is a version
            # it signed once but no longer serves (a stale delta after a repair, validly signed but
            # not what the pointer names): read it all whole
            envelopes, via_delta = _fetch(store, target, first, latest, {})
            chain = verify_chain(target, envelopes, keyring, start=first)
            new_seen = check_digests(target, [(b.version, b.digest) for b in chain], pointer=pointer, seen=seen)
    return TargetRead(
        target=target,
        chain=chain,
        pointer=pointer,
        pointer_envelope=pointer_envelope,
        latest_envelope=envelopes[-1][1],
        seen=new_seen,
        via_delta=tuple(via_delta),
        envelopes=tuple(envelopes),
    )


def check_known(store: Store, targets: Sequence[str], *, defined: Collection[str] = ()) -> None:
    """Refuse a target name nothing proves: not published in ``store`` and not in ``defined``.

    A reader asked for a target the store has never published, that llmcc.yaml
    (``defined``: its targets, when the reader has one) does not define either,
    is given a typo until proven otherwise: ``prdo`` must not read as "nothing
    published yet, keep waiting" (issue 13, "Fragile"). The caller passes the
    names it has no other proof of (a held version, a high-water mark).

    Raises:
        UnknownTargetError: the first such name, with a close match and every known name (exit 2).
        StorageError: the store cannot be listed.
    """
    for target in targets:
        if target in defined:
            continue
        listing = store.listing(target)  # one request: the whole store is listed only for the message
        if listing.versions or listing.pointer:
            continue
        from compiler.suggestions import unknown_target  # difflib: only on this error

        published = store.targets()
        known = [*published, *sorted(t for t in defined if t not in published)]
        holder = f"published in {store.url}" + (" or defined in llmcc.yaml" if defined else "")
        raise UnknownTargetError(unknown_target(target, known, holder=holder))


def _fetch(
    store: Store, target: str, first: int, latest: int, held: Mapping[int, bytes]
) -> tuple[list[tuple[int, bytes]], list[int]]:
    """Envelopes of versions ``first``..``latest``: held, rebuilt from a delta on the one before, or fetched.

    Without ``held`` every version is fetched. Returns the envelopes and the
    versions rebuilt from deltas. Nothing here is verified.
    """
    envelopes: list[tuple[int, bytes]] = []
    rebuilt: list[int] = []
    base: bytes | None = None  # the envelope of the version before, when deltas are in use
    for version in range(first, latest + 1):
        envelope = held.get(version)
        if envelope is None and base is not None:
            envelope = _via_delta(store, target, version, base)
            if envelope is not None:
                rebuilt.append(version)
        if envelope is None:
            envelope = store.read(target, version)
        envelopes.append((version, envelope))
        base = envelope if held else None
    return envelopes, rebuilt


def _via_delta(store: Store, target: str, version: int, base: bytes) -> bytes | None:
    """``version`` rebuilt from its delta on ``base`` (the envelope of ``version - 1``), or None to fetch it whole."""
    try:
        delta = store.read_delta(target, version)
        if delta is None:
            return None
        return rebuild_envelope(target, version, envelope_payload(base), delta)
    except (DeltaError, StorageError):
        return None  # missing, oversized, unreadable or not applicable: the full version decides
