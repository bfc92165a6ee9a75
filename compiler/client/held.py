"""The envelopes a client holds, served in place of the store's copies (the seam for issue 11 §7 deltas).

:func:`compiler.reader.read_target` fetches, from the version held (or the
latest's predecessor) up to the latest, every envelope it verifies. The
client already holds the bytes of the versions it accepted, verified once;
:class:`HeldStore` answers ``read`` for those from memory, so an unchanged
target costs the pointer and the listing, and a new version costs its own
envelope only. Verification is unchanged: ``read_target`` checks the held
bytes as it checks fetched ones, and a store that rewrote a held version is
caught by the chain link of the version after it (its ``previous`` is not the
held digest) or by the high-water mark's digest.

This is the one place where a held envelope is used: a delta (a JSON Patch
from the held payload plus the new signatures) would be applied here.
"""

from __future__ import annotations

from collections.abc import Mapping

from compiler.storage.base import Listing, Store


class HeldStore:
    """``store``, with ``read(target, version)`` answered from ``held`` when it has that version."""

    def __init__(self, store: Store, target: str, held: Mapping[int, bytes]) -> None:
        self._store = store
        self._target = target
        self._held = held
        self.read_envelopes: dict[int, bytes] = {}  # every envelope of the target read through here

    @property
    def url(self) -> str:
        return self._store.url

    @property
    def location(self) -> str:
        return self._store.location

    def targets(self) -> list[str]:
        return self._store.targets()

    def versions(self, target: str) -> list[int]:
        return self._store.versions(target)

    def listing(self, target: str) -> Listing:
        return self._store.listing(target)

    def read(self, target: str, version: int) -> bytes:
        if target != self._target:
            return self._store.read(target, version)
        envelope = self._held.get(version)
        if envelope is None:
            envelope = self._store.read(target, version)
        self.read_envelopes[version] = envelope
        return envelope

    def read_pointer(self, target: str) -> bytes | None:
        return self._store.read_pointer(target)

    def swap_pointer(self, target: str, envelope: bytes, *, expected: bytes | None) -> bool:
        return self._store.swap_pointer(target, envelope, expected=expected)

    def create(self, target: str, version: int, envelope: bytes, *, previous: bytes | None = None) -> bool:
        return self._store.create(target, version, envelope, previous=previous)

    def read_delta(self, target: str, version: int) -> bytes | None:
        return self._store.read_delta(target, version)

    def create_delta(self, target: str, version: int, delta: bytes) -> bool:
        return self._store.create_delta(target, version, delta)
