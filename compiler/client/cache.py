"""The last known good version on local disk: its signed envelope and when it was verified (issue 11 §4).

One file per store and target in the client's ``cache_dir``::

    <sha256(store location)[:32]>.<target>.lastgood.json
    {"format": "llmcc-client-cache/1", "store": "...", "target": "prod", "version": 3,
     "digest": "sha256:...", "verified_at": "2026-11-29T12:00:00Z", "envelope": "<the DSSE envelope>"}

Only the signed envelope is kept, whose secret fields are ciphertext:
plaintext never touches disk. Nothing in the file is trusted: the client
verifies the envelope again on every load (signature, target, version,
digest) and checks it against its high-water mark.

Writes take an exclusive ``flock`` on ``<file>.lock`` (processes sharing a
cache directory, e.g. pre-fork workers), re-read, and never replace a newer
version with an older one; the file is written to a temp file in the same
directory (mode 0600), fsynced, renamed over the old one, and the directory
fsynced (STYLE R14): a crash or SIGKILL leaves the old file or the new one,
never a torn one. The directory and file must be this user's and not
writable by group or others, as for the reader state
(:mod:`compiler.storage.seen`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from compiler.errors import LlmccError
from compiler.fileops import exclusive_lock, write_atomic
from compiler.storage.base import MAX_ENVELOPE_BYTES

FORMAT = "llmcc-client-cache/1"
_TIME = "%Y-%m-%dT%H:%M:%SZ"
# base64 would cost a third more; the envelope is JSON text already, kept as a string.
_MAX_FILE_BYTES = MAX_ENVELOPE_BYTES + 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedVersion:
    """What the cache file claims; nothing of it is trusted until the envelope verifies."""

    version: int
    digest: str
    verified_at: datetime
    envelope: bytes


class LastGoodCache:
    """The last known good version of one target of one store, in ``directory``."""

    def __init__(self, directory: Path, location: str, target: str) -> None:
        self._location = location
        self._target = target
        name = hashlib.sha256(location.encode()).hexdigest()[:32]
        self.path = directory / f"{name}.{target}.lastgood.json"

    def load(self) -> CachedVersion | None:
        """The cached version, or None when there is no cache file.

        Raises:
            LlmccError: the file is unsafe (another user's, group/other-writable,
                a symlink, not a regular file, too large) or not a cache of this
                store and target.
        """
        try:
            _check_private(self.path, os.stat(self.path.parent), "directory")
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as e:
            why = "it is a symlink" if e.errno == errno.ELOOP else e.strerror or str(e)
            raise LlmccError(f"{self.path}: cannot read the client cache: {why}") from e
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_FILE_BYTES:
                raise LlmccError(
                    f"{self.path}: the client cache is not a regular file of at most {_MAX_FILE_BYTES} bytes"
                )
            _check_private(self.path, info, "file")
            data = f.read(_MAX_FILE_BYTES + 1)
        return self._parse(data)

    def _parse(self, data: bytes) -> CachedVersion:
        bad = LlmccError(f"{self.path}: not a client cache of {self._target} in {self._location}")
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError) as e:  # RecursionError: nested past the interpreter's limit
            raise bad from e
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise bad
        if obj.get("store") != self._location or obj.get("target") != self._target:
            raise bad
        version, digest, when, envelope = (
            obj.get("version"),
            obj.get("digest"),
            obj.get("verified_at"),
            obj.get("envelope"),
        )
        if type(version) is not int or not isinstance(digest, str) or not isinstance(envelope, str):
            raise bad
        try:
            verified_at = datetime.strptime(str(when), _TIME).replace(tzinfo=UTC)
            raw = envelope.encode("ascii")
        except (ValueError, UnicodeError) as e:
            raise bad from e
        return CachedVersion(version=version, digest=digest, verified_at=verified_at, envelope=raw)

    def store(self, cached: CachedVersion) -> bool:
        """Write ``cached`` unless the file holds a newer version already (another process's).

        Returns:
            True if written; False if the cache holds a newer version (left as it is).

        Raises:
            LlmccError: the directory or file cannot be written, or is unsafe.
        """
        body = {
            "format": FORMAT,
            "store": self._location,
            "target": self._target,
            "version": cached.version,
            "digest": cached.digest,
            "verified_at": cached.verified_at.astimezone(UTC).strftime(_TIME),
            "envelope": cached.envelope.decode("ascii"),
        }
        data = json.dumps(body, sort_keys=True).encode("ascii")
        try:
            with self._locked():
                # Race: another process sharing this directory may have written a newer version
                # since this one verified its own; never move the cache backwards.
                # Writers hold this lock: a temp file of ours seen here was left by one that died
                # mid-write (SIGKILL, power cut); it was never the cache, so it goes.
                for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
                with contextlib.suppress(LlmccError):
                    current = self.load()
                    if current is not None and current.version > cached.version:
                        return False
                write_atomic(self.path, data)
        except OSError as e:
            raise LlmccError(f"{self.path}: cannot write the client cache: {e.strerror or e}") from e
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        _check_private(self.path, os.stat(self.path.parent), "directory")
        with exclusive_lock(self.path.with_name(self.path.name + ".lock")):
            yield


def make_cache_dir(directory: Path) -> None:
    """Create ``directory`` (mode 0700) if needed, and refuse one that others could write.

    Raises:
        LlmccError: it cannot be created, or it is another user's or group/other-writable.
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(directory)
    except OSError as e:
        raise LlmccError(f"{directory}: cannot create the client cache directory: {e.strerror or e}") from e
    _check_private(directory, info, "directory")


def _check_private(path: Path, info: os.stat_result, what: str) -> None:
    """Refuse a cache another local user could rewrite (fake a version time or drop the cache)."""
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise LlmccError(
            f"{path}: the client cache {what} is another user's or writable by group or others; "
            "make it yours and chmod go-w"
        )
