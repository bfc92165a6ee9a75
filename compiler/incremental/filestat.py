"""Git blob ids of working-tree files by their stat, kept in the result cache, as git's index does (issue 14 §2).

Listing a target's inputs (``compiler.incremental.inputs``) names every file
under ``llmcc.yaml``, ``schemas/``, ``templates/``, ``environments/``,
``policies/`` and ``keys/`` by its git blob id. Reading and hashing them all
on every run is most of what a run with nothing to do costs besides start-up,
so the id of each file is remembered with the file's size, modification and
change times (ns), inode and device. A later run takes the remembered id
when all five are unchanged: any write changes the change time, and no one
can set it back (``os.utime`` sets it to now).

Git's racy-timestamp rule (git's Documentation/technical/racy-git.txt): a
write in the same clock tick as the stat leaves the times as they were, so
each id is remembered with a time stamp of the file system taken before the
file was looked at, and trusted only when the file's modification and change
times are both older than it; any other file is read again. The stamp comes
from a file made in the cache directory, so it is the file system's clock
(a network file system's server), not this host's.

One cache entry per repository root holds ``{path: [size, mtime_ns, ctime_ns,
inode, device, blob id, stamp_ns]}``. It goes through ``ResultCache``:
digest-checked, owner-checked, ignored when damaged or foreign; an entry of
any other shape is a miss and every file is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from compiler.audit.revisions import worktree_file_ids
from compiler.incremental.store import ResultCache
from compiler.jsontypes import JSONObject, JSONValue

_LEN = 7


def fs_now(directory: Path) -> int:
    """The time (ns) ``directory``'s file system gives a file changed now; 0 when none can be had there.

    Read from a file made and removed for it, so that it is the file system's
    clock and granularity, not this host's.
    """
    path = directory / f".llmcc-stamp-{os.getpid()}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return 0
    try:
        st = os.fstat(fd)
        return min(st.st_mtime_ns, st.st_ctime_ns)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()


def stats(st: os.stat_result) -> list[JSONValue]:
    """What a stat-cached record compares: size, modification and change times (ns), inode, device."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def trusted(record: JSONValue, st: os.stat_result) -> bool:
    """Whether ``record`` (``[*stats, ..., stamp_ns]``) stands for the file with this ``lstat``, racy rule applied."""
    if not isinstance(record, list) or len(record) < 6 or record[:5] != stats(st):
        return False
    stamp = record[-1]
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        return False
    return st.st_mtime_ns < stamp and st.st_ctime_ns < stamp


def cached_file_ids(cache: ResultCache, root: Path, paths: Sequence[str]) -> dict[str, str | None]:
    """``worktree_file_ids(root, paths)``, taking each unchanged file's id from ``cache`` (see the module doc)."""
    if not cache.usable():
        return worktree_file_ids(root, paths)
    key = ids_key(root, paths)
    old = _files(cache.get(key))
    stamp = fs_now(cache.root)
    new: dict[str, JSONValue] = {}

    def blob(rel: str, path: Path, st: os.stat_result) -> str:
        record = old.get(rel)
        if isinstance(record, list) and len(record) == _LEN and isinstance(record[5], str) and trusted(record, st):
            new[rel] = record
            return record[5]
        data = path.read_bytes()
        ident = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
        # read after the stat, taken after the stamp: trusted next time once the times are older than it
        new[rel] = [*stats(st), ident, stamp]
        return ident

    ids = worktree_file_ids(root, paths, blob=blob)
    if new != old:
        payload: JSONObject = {"files": new}
        cache.put(key, payload)
    return ids


def ids_key(root: Path, paths: Sequence[str]) -> str:
    """The cache key of the ids of the files under ``paths`` of the working tree at ``root``."""
    return hashlib.sha256(f"file-ids\0{root.resolve()}\0{chr(0).join(paths)}".encode()).hexdigest()


def _files(payload: JSONObject | None) -> dict[str, JSONValue]:
    files = payload.get("files") if payload is not None else None
    return files if isinstance(files, dict) else {}
