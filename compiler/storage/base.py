"""The ``Store`` Protocol every storage backend implements (docs/store-layout.md).

A store keeps one DSSE envelope object per (target, version), plus one
mutable object per target: the signed pointer to its latest version
(:mod:`compiler.freshness`). Versions are claimed create-only:
:meth:`Store.create` never overwrites, so two publishers can never both get
version N; the pointer changes only by compare-and-swap
(:meth:`Store.swap_pointer`). Only :class:`~compiler.errors.StorageError`
escapes a backend (STYLE R6).

Reads are bounded (issue 9 §3): a backend refuses an object larger than
:data:`MAX_ENVELOPE_BYTES` (a pointer: :data:`MAX_POINTER_BYTES`), or one that
is not a regular object, before reading it into memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from compiler.errors import StorageError
from compiler.names import TARGET_NAME

_VERSION_FILE = re.compile(r"([0-9]{8,})\.dsse\.json")
ENVELOPE_SUFFIX = ".dsse.json"
POINTER_OBJECT_NAME = "latest" + ENVELOPE_SUFFIX  # beside the versions of its target
# The largest stored bundle envelope a reader fetches. A bundle of the large
# benchmark is ~0.3 MB; base64 in the envelope adds a third.
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024
# A signed pointer is ~500 bytes.
MAX_POINTER_BYTES = 64 * 1024
# Deltas (compiler/delta.py) live outside the targets' prefixes, under this name
# (not a target name): a reader from before deltas never sees them as strays.
DELTA_DIR = ".llmcc-deltas"
DELTA_SUFFIX = ".delta.json"


class CorruptObjectError(StorageError):
    """A stored object fails the store's own integrity checks (digest, size, media type).

    Exit 3, like any verification failure: someone altered the store.
    """

    exit_code = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """Every object a store lists under one target, sorted into what it may hold.

    ``versions``: canonical version objects, ascending; ``pointer``: whether the
    signed pointer object is there; ``strays``: the names of everything else
    (temp files, other spellings of a number, subdirectories), sorted.
    """

    versions: tuple[int, ...]
    pointer: bool
    strays: tuple[str, ...]


def sort_names(names: list[str]) -> Listing:
    """A :class:`Listing` of the object names of one target's file or S3 prefix."""
    versions: list[int] = []
    strays: list[str] = []
    pointer = False
    for name in names:
        version = parse_version_object_name(name)
        if version is not None:
            versions.append(version)
        elif name == POINTER_OBJECT_NAME:
            pointer = True
        else:
            strays.append(name)
    return Listing(versions=tuple(sorted(versions)), pointer=pointer, strays=tuple(sorted(strays)))


class NoStoreError(StorageError):
    """The store itself does not exist: a ``file://`` store whose directory is missing, an ``s3://`` bucket.

    Exit 2. Readers (``pull``, ``verify``, the runtime client) fail with it, as
    with a store that cannot be reached, never treating it as an empty store (a
    client with a high-water mark would call that a rollback); a first
    ``publish`` creates the store (compiler/publish.py).
    """


class MissingObjectError(StorageError):
    """The version asked for is not stored (any more): exit 2, like any missing input."""


class Store(Protocol):
    """Where signed bundles live: one immutable envelope object per target and version.

    Every read (``targets``, ``versions``, ``listing``, ``read*``) raises
    :class:`NoStoreError` when the store itself does not exist (a ``file://``
    directory, an S3 bucket), or :class:`StorageError` when it cannot be
    reached: never the answer of an empty store.
    """

    @property
    def url(self) -> str:
        """The store's URL, as given by the user (for messages)."""
        ...

    @property
    def location(self) -> str:
        """The store's URL with relative parts resolved: the key of a reader's state."""
        ...

    def targets(self) -> list[str]:
        """Every target with a stored version or pointer, sorted."""
        ...

    def versions(self, target: str) -> list[int]:
        """The stored versions of ``target``, ascending; ``[]`` when none."""
        ...

    def listing(self, target: str) -> Listing:
        """Everything stored under ``target``: versions, pointer, and any stray name."""
        ...

    def read(self, target: str, version: int) -> bytes:
        """The stored envelope bytes of ``target`` at ``version``.

        Raises:
            MissingObjectError: it does not exist.
            StorageError: it cannot be read.
            CorruptObjectError: it is larger than :data:`MAX_ENVELOPE_BYTES` or
                not a regular object (checked before it is read).
        """
        ...

    def read_pointer(self, target: str) -> bytes | None:
        """The stored signed-pointer envelope of ``target``; None when there is none.

        Raises:
            StorageError: it cannot be read.
            CorruptObjectError: larger than :data:`MAX_POINTER_BYTES` or not a regular object.
        """
        ...

    def swap_pointer(self, target: str, envelope: bytes, *, expected: bytes | None) -> bool:
        """Replace the pointer of ``target`` with ``envelope`` if it still holds ``expected``.

        ``expected`` None means "there is no pointer yet". Readers see the old or
        the new pointer, never a mix.

        Returns:
            True if the pointer now holds ``envelope``; False if it held something
            other than ``expected`` (another publisher moved it): re-read and retry.

        Raises:
            StorageError: the write failed.
        """
        ...

    def read_delta(self, target: str, version: int) -> bytes | None:
        """The stored delta object from version ``version - 1`` to ``version`` of ``target``; None when absent.

        Raises:
            StorageError: it cannot be read.
            CorruptObjectError: larger than :data:`compiler.delta.MAX_DELTA_BYTES` or not a regular object.
        """
        ...

    def create_delta(self, target: str, version: int, delta: bytes) -> bool:
        """Store ``delta`` for ``version`` of ``target`` if there is none yet (create-only, like versions).

        Returns:
            True if this call stored it; False if a delta for that version exists.

        Raises:
            StorageError: the write failed.
        """
        ...

    def create(self, target: str, version: int, envelope: bytes, *, previous: bytes | None = None) -> bool:
        """Store ``envelope`` as ``version`` of ``target`` if that version does not exist yet.

        Args:
            previous: the stored envelope of ``version - 1`` that ``envelope``
                links to, if any. A backend whose versions can still change
                for a moment after they appear (OCI) refuses the claim unless
                that version has settled with exactly these bytes.

        Returns:
            True if this call created the version; False if it already existed
            (another publisher claimed it) or ``previous`` is no longer what the
            store holds: re-read and retry. Never overwrites.

        Raises:
            StorageError: the write failed; the version may or may not exist.
        """
        ...


def check_target(target: str) -> str:
    """``target`` itself if it is a valid target name, else StorageError.

    Target names become path segments, object keys and tags, so anything else
    is refused before any IO.
    """
    if not TARGET_NAME.fullmatch(target):
        raise StorageError(f"{target!r} is not a target name (ENV or ENV@TENANT, lowercase)")
    return target


def check_version(version: int) -> int:
    if type(version) is not int or version < 1:  # bool is an int subclass: refuse it too
        raise StorageError(f"{version!r} is not a version number (1, 2, ...)")
    return version


def is_target(name: str) -> bool:
    return bool(TARGET_NAME.fullmatch(name))


def version_object_name(version: int) -> str:
    """``00000003.dsse.json``: sorts by version up to 99,999,999 and stays unique beyond."""
    return f"{check_version(version):08d}{ENVELOPE_SUFFIX}"


def delta_object_name(version: int) -> str:
    """``00000003.delta.json``: the delta to version 3, under ``.llmcc-deltas/<target>/``."""
    return f"{check_version(version):08d}{DELTA_SUFFIX}"


def parse_version_object_name(name: str) -> int | None:
    """The version a stored object name denotes, or None for anything else (temp files, strays)."""
    m = _VERSION_FILE.fullmatch(name)
    if m is None:
        return None
    version = int(m.group(1))
    # exactly one spelling per version: "000000003.dsse.json" is not version 3
    return version if version >= 1 and version_object_name(version) == name else None
