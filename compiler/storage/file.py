"""``file://PATH``: a directory of ``<target>/<version:08d>.dsse.json`` files.

Publishing writes a temp file in the target's directory, fsyncs it, then
claims the version with ``os.link(tmp, final)``, which fails if ``final``
exists: an atomic create-only claim on POSIX (STYLE R14). Readers only look
at complete ``NNNNNNNN.dsse.json`` names, so they never see a partial bundle;
a crash leaves at most a ``.tmp-*`` file, removed by a later publish.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

from compiler.errors import StorageError
from compiler.storage.base import (
    check_target,
    is_target,
    parse_version_object_name,
    version_object_name,
)

_TMP_PREFIX = ".tmp-"
# A temp file this old belongs to a publisher that died; younger ones may be in flight.
_STALE_TMP_SECONDS = 3600.0


class FileStore:
    """A store in a local (or POSIX network) directory."""

    def __init__(self, path: Path, *, url: str | None = None) -> None:
        self._root = path
        self._url = url or f"file://{path}"

    @property
    def url(self) -> str:
        return self._url

    def targets(self) -> list[str]:
        try:
            names = sorted(os.listdir(self._root))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StorageError(f"{self._url}: cannot list the store: {e}") from e
        return [n for n in names if is_target(n) and self.versions(n)]

    def versions(self, target: str) -> list[int]:
        directory = self._root / check_target(target)
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise StorageError(f"{self._url}: cannot list {target}: {e}") from e
        return sorted(v for v in map(parse_version_object_name, names) if v is not None)

    def read(self, target: str, version: int) -> bytes:
        path = self._root / check_target(target) / version_object_name(version)
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            raise StorageError(f"{self._url}: {target} has no version {version}") from e
        except OSError as e:
            raise StorageError(f"{self._url}: cannot read {target} version {version}: {e}") from e

    def create(self, target: str, version: int, envelope: bytes, *, previous: bytes | None = None) -> bool:
        # `previous` needs no check: a version, once linked into place, never changes.
        directory = self._root / check_target(target)
        final = directory / version_object_name(version)
        try:
            fresh = not directory.is_dir()
            directory.mkdir(parents=True, exist_ok=True)
            if fresh:
                _fsync_dir(directory.parent)
            _remove_stale_tmp(directory)
            created = _link_new(directory, final, envelope)
            if created:
                # the new directory entry survives a power loss only once the directory is synced
                _fsync_dir(directory)
            return created
        except OSError as e:
            raise StorageError(f"{self._url}: cannot write {target} version {version}: {e}") from e


def _link_new(directory: Path, final: Path, data: bytes) -> bool:
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            # Race: two publishers claim the same version at once. link() creates
            # `final` only if it does not exist, atomically; the loser gets EEXIST.
            # The file is complete before it gets its final name, so readers see
            # the whole envelope or nothing.
            os.link(tmp, final)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_tmp(directory: Path) -> None:
    cutoff = time.time() - _STALE_TMP_SECONDS
    for entry in os.scandir(directory):
        if entry.name.startswith(_TMP_PREFIX):
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
