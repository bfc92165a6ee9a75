"""A reader's high-water marks on local disk: the newest version it accepted, per store and target (issue 9 §3).

One JSON file per store under ``$XDG_STATE_HOME/llmcc/seen/`` (default
``~/.local/state/llmcc/seen/``), named by the SHA-256 of the store's
:attr:`~compiler.storage.base.Store.location`::

    {"store": "file:///srv/store", "targets": {"prod": {"version": 3, "digest": "sha256:..."}}}

Updates take an exclusive ``flock`` on the file's lock, re-read, merge
(a mark only ever moves up) and replace the file atomically (STYLE R14). A
file that cannot be parsed is refused, never reset: forgetting a mark would
silently drop rollback protection. So is a state that another local user
could rewrite (as OpenSSH's StrictModes): a directory or file not owned by
this user or writable by group or others, a state file that is a symlink, a
FIFO or larger than 16 MiB (checked before it is read).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from compiler.errors import LlmccError, VerificationError
from compiler.fileops import exclusive_lock, write_atomic
from compiler.freshness import Seen

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_STATE_BYTES = 16 * 1024 * 1024


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/llmcc/seen``, or ``~/.local/state/llmcc/seen`` (XDG Base Directory spec).

    A relative ``XDG_STATE_HOME`` is ignored, as the spec says (it would put the
    marks in whatever directory the reader runs in).

    Raises:
        LlmccError: there is no home directory (no ``HOME``, no passwd entry).
    """
    base = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        try:
            home = environ.get("HOME") or str(Path.home())
        except RuntimeError as e:  # a container user without a passwd entry
            raise LlmccError("no home directory for the reader state: set XDG_STATE_HOME or pass --state-dir") from e
        base = str(Path(home) / ".local" / "state")
    return Path(base) / "llmcc" / "seen"


class SeenFile:
    """The marks of one store, kept in ``directory``."""

    def __init__(self, directory: Path, location: str) -> None:
        self._location = location
        self._path = directory / (hashlib.sha256(location.encode()).hexdigest()[:32] + ".json")

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> dict[str, Seen]:
        """Every target's mark; {} when this reader has seen nothing of the store.

        Raises:
            LlmccError: the file cannot be read or is not a state file of this store.
        """
        try:
            self._check_private(os.stat(self._path.parent), "directory")
            # non-blocking, not through a symlink, and checked before a byte is read: a FIFO would hang
            fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return {}
        except OSError as e:
            why = "it is a symlink" if e.errno == errno.ELOOP else e.strerror or str(e)
            raise LlmccError(f"{self._path}: cannot read the reader state: {why}") from e
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise LlmccError(f"{self._path}: cannot read the reader state: it is not a regular file")
            self._check_private(info, "file")
        except BaseException:
            os.close(fd)
            raise
        try:
            with os.fdopen(fd, "rb") as f:
                data = f.read(_MAX_STATE_BYTES + 1)
        except OSError as e:
            raise LlmccError(f"{self._path}: cannot read the reader state: {e.strerror or e}") from e
        return self._parse(data)

    def _check_private(self, info: os.stat_result, what: str) -> None:
        """Refuse a state directory or file that another local user could rewrite (drop or fake a mark)."""
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise LlmccError(
                f"{self._path}: the reader state {what} is another user's or writable by group or others, "
                "so its marks prove nothing; make it yours and chmod go-w, or pass --state-dir"
            )

    def advance(self, marks: Mapping[str, Seen]) -> None:
        """Record ``marks``; a target's mark never moves down (a lower one is ignored).

        Raises:
            LlmccError: the state cannot be read or written.
            VerificationError: it holds another digest for a version in ``marks``
                (written by a concurrent reader).
        """
        try:
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self._locked():
                current = self.load()
                for target, seen in marks.items():
                    mark = current.get(target)
                    # Race: another reader recorded this version meanwhile, from another chain
                    if mark is not None and mark.version == seen.version and mark.digest != seen.digest:
                        raise VerificationError(
                            f"{self._path}: {target} version {seen.version} was accepted with digest {mark.digest} "
                            f"by another reader meanwhile, not {seen.digest}: the store serves two chains; "
                            "run llmcc verify --since-state",
                            reason="rewritten_chain",
                        )
                    if mark is None or seen.version > mark.version:
                        current[target] = seen
                body = {
                    "store": self._location,
                    "targets": {t: {"version": s.version, "digest": s.digest} for t, s in sorted(current.items())},
                }
                # the rename is durable only once the directory is synced (write_atomic does): a
                # mark lost in a power cut would let a restarted reader accept a rollback
                text = json.dumps(body, indent=2, sort_keys=True) + "\n"
                write_atomic(self._path, text.encode(), mode=0o600)
        except OSError as e:
            raise LlmccError(f"{self._path}: cannot write the reader state: {e.strerror or e}") from e

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with exclusive_lock(self._path.with_suffix(".lock")):
            yield

    def _parse(self, data: bytes) -> dict[str, Seen]:
        bad = LlmccError(
            f"{self._path}: not a valid llmcc reader state for {self._location}; "
            'see README "Repairing a store" before deleting it'
        )
        if len(data) > _MAX_STATE_BYTES:
            raise bad
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError) as e:  # RecursionError: nested past the interpreter's limit
            raise bad from e
        targets = obj.get("targets") if isinstance(obj, dict) else None
        if not isinstance(obj, dict) or obj.get("store") != self._location or not isinstance(targets, dict):
            raise bad
        marks: dict[str, Seen] = {}
        for target, mark in targets.items():
            version = mark.get("version") if isinstance(mark, dict) else None
            digest = mark.get("digest") if isinstance(mark, dict) else None
            if type(version) is not int or version < 1 or not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
                raise bad
            marks[target] = Seen(version=version, digest=digest)
        return marks
