"""Stat records of files for the kept-bundle check (``compiler.incremental.run``), git's racy rule applied.

The result cache's input ids are NOT taken from a stat: every input file is
read and hashed on every run (``compiler.audit.revisions.worktree_file_ids``;
~4 ms CPU for xlarge's 171 files, 3.3 MB). A stat can stay as it was while the
bytes change: a write through a shared memory map into a page already dirty
moves neither time (Linux updates them only when a clean page is first
written), tmpfs never updates them for such writes, a coarse-timestamp file
system keeps one value for a whole tick, and a file replaced by rename can
reuse an inode. Before, the ids were remembered by stat, and a dirty-tree
compile after such a write served the earlier output (README "The result cache").

A bundle left in ``DIR`` (``bundles_in_place``) is still checked by its stat,
since reading every bundle costs ~48 ms CPU of xlarge's ~160 ms no-change run:
size, modification and change times (ns), inode and device must all be as
recorded, and git's racy-timestamp rule (git's
Documentation/technical/racy-git.txt) holds: a record is trusted only when
both times are older than a stamp of the file system's clock taken before the
file was looked at (``fs_now``); any other bundle is read and its SHA-256
compared. What that cannot see is the memory-map write above into a bundle;
the README says so.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from compiler.jsontypes import JSONValue


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
