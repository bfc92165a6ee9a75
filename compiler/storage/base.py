"""The ``Store`` Protocol every storage backend implements (DESIGN §7).

A store keeps one DSSE envelope object per (target, version). Versions are
claimed create-only: :meth:`Store.create` never overwrites, so two publishers
can never both get version N. Only :class:`~compiler.errors.StorageError`
escapes a backend (STYLE R6).
"""

from __future__ import annotations

import re
from typing import Protocol

from compiler.errors import StorageError
from compiler.project import NAME_PATTERN

# "prod" or "prod@acme": the names of compiler.project.Target. They become path
# segments, object keys and tags, so anything else is refused before any IO.
_TARGET = re.compile(NAME_PATTERN[1:-1] + "(@" + NAME_PATTERN[1:-1] + ")?")
_VERSION_FILE = re.compile(r"([0-9]{8,})\.dsse\.json")
ENVELOPE_SUFFIX = ".dsse.json"


class CorruptObjectError(StorageError):
    """A stored object fails the store's own integrity checks (digest, size, media type).

    Exit 3, like any verification failure: someone altered the store.
    """

    exit_code = 3


class Store(Protocol):
    """Where signed bundles live: one immutable envelope object per target and version."""

    @property
    def url(self) -> str:
        """The store's URL, as given by the user (for messages)."""
        ...

    def targets(self) -> list[str]:
        """Every target with at least one stored version, sorted."""
        ...

    def versions(self, target: str) -> list[int]:
        """The stored versions of ``target``, ascending; ``[]`` when none."""
        ...

    def read(self, target: str, version: int) -> bytes:
        """The stored envelope bytes of ``target`` at ``version``.

        Raises:
            StorageError: it does not exist or cannot be read.
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
    """``target`` itself if it is a valid target name, else StorageError."""
    if not _TARGET.fullmatch(target):
        raise StorageError(f"{target!r} is not a target name (ENV or ENV@TENANT, lowercase)")
    return target


def check_version(version: int) -> int:
    if type(version) is not int or version < 1:  # bool is an int subclass: refuse it too
        raise StorageError(f"{version!r} is not a version number (1, 2, ...)")
    return version


def is_target(name: str) -> bool:
    return bool(_TARGET.fullmatch(name))


def version_object_name(version: int) -> str:
    """``00000003.dsse.json``: sorts by version up to 99,999,999 and stays unique beyond."""
    return f"{check_version(version):08d}{ENVELOPE_SUFFIX}"


def parse_version_object_name(name: str) -> int | None:
    """The version a stored object name denotes, or None for anything else (temp files, strays)."""
    m = _VERSION_FILE.fullmatch(name)
    if m is None:
        return None
    version = int(m.group(1))
    # exactly one spelling per version: "000000003.dsse.json" is not version 3
    return version if version >= 1 and version_object_name(version) == name else None
