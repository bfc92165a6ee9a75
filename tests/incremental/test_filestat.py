"""Blob ids of working-tree files taken by their stat (``compiler.incremental.filestat``): git's index, racy rule too.

Each case plants what a record would say and shows when it is trusted and when
the file is read: real files in a temp directory, a real ``ResultCache``, times
forged with ``os.utime``. A planted id that no file has (``FAKE``) comes back
only when the stat alone decided.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from compiler.audit.revisions import worktree_file_ids
from compiler.incremental.filestat import cached_file_ids, fs_now, ids_key, stats
from compiler.incremental.store import CACHE_DIR, ResultCache

PATHS = ["llmcc.yaml", "environments"]
FAKE = "f" * 40


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "environments").mkdir()
    (tmp_path / "llmcc.yaml").write_text("project: x\n")
    (tmp_path / "environments/dev.yaml").write_text("vars:\n  model: a\n")
    (tmp_path / "environments/link.yaml").symlink_to("dev.yaml")
    return tmp_path


def cache_of(root: Path) -> ResultCache:
    return ResultCache(root / CACHE_DIR)


def settle(root: Path) -> None:
    """Wait until the file system's clock is past every change time under ``root`` (then nothing there is racy)."""
    newest = max(p.lstat().st_ctime_ns for p in [root, *root.rglob("*")])
    while fs_now(root) <= newest:
        time.sleep(0.001)


def plant(root: Path, rel: str, stamp_after: int) -> None:
    """A record for ``rel`` with its real stat, the id FAKE, and a stamp ``stamp_after`` ns past its change time."""
    st = (root / rel).lstat()
    files = {rel: [*stats(st), FAKE, st.st_ctime_ns + stamp_after]}
    cache_of(root).put(ids_key(root, PATHS), {"files": files})


def test_the_ids_are_git_s_and_an_unchanged_run_writes_nothing(root: Path) -> None:
    first = cached_file_ids(cache_of(root), root, PATHS)  # read: written in the same tick, perhaps
    assert first == worktree_file_ids(root, PATHS)
    assert first["environments/link.yaml"] is None
    data = b"vars:\n  model: a\n"
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    assert first["environments/dev.yaml"] == blob
    settle(root)
    assert cached_file_ids(cache_of(root), root, PATHS) == first  # read again, remembered with a later stamp
    entries = [p for p in (root / CACHE_DIR).rglob("*.json")]
    assert len(entries) == 1
    before = entries[0].read_bytes()
    check = cache_of(root)
    assert cached_file_ids(check, root, PATHS) == first
    assert check.written == 0  # all settled: nothing new to remember
    assert entries[0].read_bytes() == before


def test_a_file_older_than_the_stamp_is_taken_by_its_stat(root: Path) -> None:
    plant(root, "environments/dev.yaml", stamp_after=1)
    assert cached_file_ids(cache_of(root), root, PATHS)["environments/dev.yaml"] == FAKE


def test_a_file_not_older_than_the_stamp_is_read_racy_git(root: Path) -> None:
    """A write in the same clock tick as the record's stat leaves the stat as it was: the stamp says so."""
    plant(root, "environments/dev.yaml", stamp_after=0)
    assert cached_file_ids(cache_of(root), root, PATHS) == worktree_file_ids(root, PATHS)


def test_an_edit_with_its_size_and_times_put_back_is_read(root: Path) -> None:
    dev = root / "environments/dev.yaml"
    plant(root, "environments/dev.yaml", stamp_after=1)
    st = dev.stat()
    dev.write_text("vars:\n  model: b\n")  # the same size
    os.utime(dev, ns=(st.st_atime_ns, st.st_mtime_ns))  # the change time moves on: no one can set it back
    assert dev.stat().st_mtime_ns == st.st_mtime_ns
    assert cached_file_ids(cache_of(root), root, PATHS) == worktree_file_ids(root, PATHS)


def test_a_tampered_entry_is_ignored(root: Path) -> None:
    plant(root, "environments/dev.yaml", stamp_after=1)
    [entry] = (root / CACHE_DIR).rglob("*.json")
    entry.write_bytes(entry.read_bytes().replace(FAKE.encode(), b"e" * 40))  # its digest no longer matches
    assert cached_file_ids(cache_of(root), root, PATHS) == worktree_file_ids(root, PATHS)


def test_the_entry_of_another_directory_is_not_used(root: Path, tmp_path: Path) -> None:
    plant(root, "environments/dev.yaml", stamp_after=1)
    copy = tmp_path.parent / f"{tmp_path.name}-copy"
    shutil.copytree(root, copy, symlinks=True)
    assert cached_file_ids(cache_of(copy), copy, PATHS) == worktree_file_ids(copy, PATHS)


@pytest.mark.parametrize(
    "record",
    [["x"], [1, 2, 3, 4, 5, FAKE], [1, 2, 3, 4, 5, 6, 7], "x", [*range(5), FAKE, True]],
    ids=["short", "six", "id-not-text", "not-a-list", "stamp-a-bool"],
)
def test_a_record_of_the_wrong_shape_is_read(root: Path, record: object) -> None:
    st = (root / "environments/dev.yaml").lstat()
    if isinstance(record, list) and len(record) > 5:
        record = [*stats(st), *record[5:]]
    cache_of(root).put(ids_key(root, PATHS), {"files": {"environments/dev.yaml": record}})  # type: ignore[dict-item]
    assert cached_file_ids(cache_of(root), root, PATHS) == worktree_file_ids(root, PATHS)


def test_an_unusable_cache_reads_every_file(root: Path) -> None:
    (root / ".llmcc").mkdir()
    (root / CACHE_DIR).symlink_to(root)  # a symlinked cache directory is refused
    assert cached_file_ids(cache_of(root), root, PATHS) == worktree_file_ids(root, PATHS)
