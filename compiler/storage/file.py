"""``file://PATH``: a directory of ``<target>/<version:08d>.dsse.json`` files and ``<target>/latest.dsse.json``.

Deltas (compiler/delta.py) are ``.llmcc-deltas/<target>/<version:08d>.delta.json``,
claimed create-only like versions.

Publishing writes a temp file under ``PATH/.llmcc-tmp/``, fsyncs it, then
claims the version with ``os.link(tmp, final)``, which fails if ``final``
exists: an atomic create-only claim on POSIX (STYLE R14). A target's
directory only ever holds complete version files and its pointer, so a
reader that finds anything else there refuses it (issue 9 §3). A crash
leaves at most a temp file, removed by a later publish.

The pointer is replaced with ``os.replace`` under an exclusive ``flock`` of
the target's directory, after checking it still holds what the publisher
read: a compare-and-swap between publishers on hosts sharing the directory
with working ``flock`` (local disks; NFSv4).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from compiler.delta import MAX_DELTA_BYTES
from compiler.errors import StorageError
from compiler.storage.base import (
    DELTA_DIR,
    MAX_ENVELOPE_BYTES,
    MAX_POINTER_BYTES,
    POINTER_OBJECT_NAME,
    CorruptObjectError,
    Listing,
    MissingObjectError,
    NoStoreError,
    check_target,
    delta_object_name,
    is_target,
    sort_names,
    version_object_name,
)

_TMP_DIR = ".llmcc-tmp"  # not a target name, so never listed as one
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

    @property
    def location(self) -> str:
        # The path as the reader names it, made absolute without following symlinks:
        # a store path that is a symlink re-pointed at an older copy keeps its marks.
        return f"file://{os.path.abspath(self._root)}"

    def targets(self) -> list[str]:
        try:
            names = sorted(os.listdir(self._root))
        except OSError as e:
            self.check_root()
            raise StorageError(f"{self._url}: cannot list the store: {e}") from e
        return [n for n in names if is_target(n) and self._published(n)]

    def versions(self, target: str) -> list[int]:
        return list(self.listing(target).versions)

    def _published(self, target: str) -> bool:
        listing = self.listing(target)
        return bool(listing.versions or listing.pointer)

    def listing(self, target: str) -> Listing:
        directory = self._root / check_target(target)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            self.check_root()
            return Listing(versions=(), pointer=False, strays=())
        except NotADirectoryError as e:  # a file or FIFO named as the target: not something publish makes
            self.check_root()
            raise CorruptObjectError(f"{self._url}: {target}: is not a directory; refusing to read it") from e
        except OSError as e:
            raise StorageError(f"{self._url}: cannot list {target}: {e}") from e
        return sort_names(names)

    def read(self, target: str, version: int) -> bytes:
        path = self._root / check_target(target) / version_object_name(version)
        where = f"{self._url}: {target} version {version}"
        try:
            data = self._read_object(path, MAX_ENVELOPE_BYTES, where=where)
        except OSError as e:
            raise StorageError(f"{where}: cannot read: {e}") from e
        if data is None:
            raise MissingObjectError(f"{self._url}: {target} has no version {version}")
        return data

    def read_pointer(self, target: str) -> bytes | None:
        path = self._root / check_target(target) / POINTER_OBJECT_NAME
        try:
            return self._read_object(path, MAX_POINTER_BYTES, where=f"{self._url}: {target} pointer")
        except OSError as e:
            raise StorageError(f"{self._url}: cannot read the pointer of {target}: {e}") from e

    def create(self, target: str, version: int, envelope: bytes, *, previous: bytes | None = None) -> bool:
        # `previous` needs no check: a version, once linked into place, never changes.
        directory = self._root / check_target(target)
        final = directory / version_object_name(version)
        try:
            self._make_dirs(directory)
            created = _link_new(self._root / _TMP_DIR, final, envelope)
            if created:
                # the new directory entry survives a power loss only once the directory is synced
                _fsync_dir(directory)
            return created
        except OSError as e:
            raise StorageError(f"{self._url}: cannot write {target} version {version}: {e}") from e

    def read_delta(self, target: str, version: int) -> bytes | None:
        path = self._root / DELTA_DIR / check_target(target) / delta_object_name(version)
        try:
            return self._read_object(path, MAX_DELTA_BYTES, where=f"{self._url}: {target} version {version} delta")
        except OSError as e:
            raise StorageError(f"{self._url}: cannot read the delta of {target} version {version}: {e}") from e

    def create_delta(self, target: str, version: int, delta: bytes) -> bool:
        directory = self._root / DELTA_DIR / check_target(target)
        try:
            self._make_dirs(directory)
            created = _link_new(self._root / _TMP_DIR, directory / delta_object_name(version), delta)
            if created:
                _fsync_dir(directory)
            return created
        except OSError as e:
            raise StorageError(f"{self._url}: cannot write the delta of {target} version {version}: {e}") from e

    def swap_pointer(self, target: str, envelope: bytes, *, expected: bytes | None) -> bool:
        directory = self._root / check_target(target)
        try:
            self._make_dirs(directory)
            with _locked(directory):
                # Race: two publishers move the pointer at once. Under the lock, the
                # check and the replace are one step: the loser sees the winner's bytes.
                if self.read_pointer(target) != expected:
                    return False
                fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".part", dir=self._root / _TMP_DIR)
                try:
                    _write_synced(fd, envelope)
                    os.replace(tmp, directory / POINTER_OBJECT_NAME)  # readers see old or new, never partial
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
                    raise
                _fsync_dir(directory)
                return True
        except OSError as e:
            raise StorageError(f"{self._url}: cannot write the pointer of {target}: {e}") from e

    def _read_object(self, path: Path, limit: int, *, where: str) -> bytes | None:
        """:func:`_read_bounded`, or None when ``path`` does not exist in a store that does."""
        try:
            return _read_bounded(path, limit, where=where)
        except FileNotFoundError:
            self.check_root()
            return None
        except CorruptObjectError:
            self.check_root()  # a root that is a file fails like a target that is one
            raise

    def check_root(self) -> None:
        """Nothing if the store's root is a directory (following symlinks).

        Called when a read finds nothing: a missing root is not an empty store
        (a reader with a mark would call it a rollback), it is no store.

        Raises:
            NoStoreError: the root does not exist (a first publish creates it).
            StorageError: the root is not a directory.
        """
        if self._root.is_dir():
            return
        if not self._root.exists():
            raise NoStoreError(f"{self._url}: no store at {self._root} (the directory does not exist)")
        raise StorageError(f"{self._url}: no store at {self._root} (it is not a directory)")

    def _make_dirs(self, directory: Path) -> None:
        fresh = not directory.is_dir()
        directory.mkdir(parents=True, exist_ok=True)
        if fresh:
            _fsync_dir(directory.parent)
        tmp = self._root / _TMP_DIR
        tmp.mkdir(exist_ok=True)
        _remove_stale_tmp(tmp)


def _read_bounded(path: Path, limit: int, *, where: str) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    Opened non-blocking and without following a symlink, then checked with
    fstat before any byte is read: a FIFO, device or directory is refused, not
    read (a FIFO would block forever), and so is a file over ``limit``.

    Raises:
        FileNotFoundError: there is no such file.
        CorruptObjectError: not a regular file, or larger than ``limit``.
        OSError: it cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:  # O_NOFOLLOW: the name is a symlink
            raise CorruptObjectError(f"{where}: is a symlink, not a regular file; refusing to read it") from e
        if e.errno == errno.ENOTDIR:  # the target's name is a file or FIFO
            raise CorruptObjectError(f"{where}: the target is not a directory; refusing to read it") from e
        raise
    _check_regular(fd, limit, where=where)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)  # the file may grow after fstat: never read more than the bound
    if len(data) > limit:
        raise CorruptObjectError(f"{where}: is more than the {limit} bytes a reader accepts")
    return data


def _check_regular(fd: int, limit: int, *, where: str) -> None:
    """Nothing if ``fd`` is a regular file of at most ``limit`` bytes; else close it and raise."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CorruptObjectError(f"{where}: is not a regular file; refusing to read it")
        if info.st_size > limit:
            raise CorruptObjectError(f"{where}: is {info.st_size} bytes, more than the {limit} a reader accepts")
    except BaseException:
        os.close(fd)
        raise


def _write_synced(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o644)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _link_new(tmp_dir: Path, final: Path, data: bytes) -> bool:
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".part", dir=tmp_dir)
    try:
        _write_synced(fd, data)
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


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive flock on ``directory``; the kernel releases it if we die."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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
