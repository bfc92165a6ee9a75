"""A file changed after a result-cache entry was recorded is never served stale, whatever its stat says.

The input ids that name a run's keys are read from the bytes on every run
(``compiler.incremental.filestat`` says why). Before, they were remembered by
stat with git's racy rule, and a write through a shared memory map into a page
already dirty (the stat unchanged) compiled the earlier output. Real files,
real ``llmcc compile`` runs; the bundle's ``region`` shows which bytes were used.
"""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.incremental.filestat import fs_now, stats, trusted
from tests.core._repos import mini_repo

BASE = "environments/base.yaml"


def settle(root: Path) -> None:
    """Wait until the file system's clock is past every change time under ``root`` (then nothing there is racy)."""
    newest = max(p.lstat().st_ctime_ns for p in [root, *root.rglob("*")])
    while fs_now(root) <= newest:
        time.sleep(0.001)


def region(root: Path) -> str:
    assert main(["-q", "-C", str(root), "compile"]) == 0
    text = (root / "dist/dev.bundle.json").read_text()
    return text.split('"region":"', 1)[1].split('"', 1)[0]


def test_a_write_through_a_shared_map_that_moves_no_time_is_compiled(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "repo")
    base = root / BASE
    with base.open("r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        at = m.find(b"east-1")
        m[at : at + 6] = b"west-1"  # the page's first write: the times move
        settle(root)  # the record made next is older than nothing: git's racy rule would trust it
        assert region(root) == "us-west-1"
        before = stats(base.stat())
        m[at : at + 6] = b"west-2"  # the same page, still dirty: no time moves
        if stats(base.stat()) != before:  # pragma: no cover - a kernel that stamps every write
            pytest.skip("this kernel moved the file's times on a write into a dirty mapped page")
        assert region(root) == "us-west-2"


def test_a_file_replaced_by_rename_with_its_size_and_mtime_is_compiled(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "repo")
    base = root / BASE
    assert region(root) == "us-east-1"
    st = base.stat()
    new = base.with_name("base.yaml.new")
    new.write_bytes(base.read_bytes().replace(b"east-1", b"west-1"))
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, base)
    assert base.stat().st_size == st.st_size
    assert base.stat().st_mtime_ns == st.st_mtime_ns
    assert region(root) == "us-west-1"


def test_a_change_in_the_same_clock_tick_is_compiled(tmp_path: Path) -> None:
    """Two runs and an edit between them with no wait: on a coarse clock all three share one tick."""
    root = mini_repo(tmp_path / "repo")
    base = root / BASE
    assert region(root) == "us-east-1"
    base.write_bytes(base.read_bytes().replace(b"east-1", b"west-1"))
    assert region(root) == "us-west-1"


def test_a_kept_bundle_record_compares_all_five_fields_and_the_stamp(tmp_path: Path) -> None:
    """The kept-bundle check (``bundles_in_place``): size, both times, inode and device; racy rule."""
    path = tmp_path / "b.json"
    path.write_text("{}")
    st = path.lstat()
    settle(tmp_path)
    stamp = fs_now(tmp_path)
    record = [*stats(st), "sha", stamp]
    assert trusted(record, st)
    for i in range(5):  # any one field off
        other = list(record)
        other[i] = other[i] + 1  # type: ignore[operator]
        assert not trusted(other, st)
    assert not trusted([*stats(st), "sha", st.st_ctime_ns], st)  # not older than the stamp: racy
    assert not trusted([*stats(st), "sha", True], st)
    assert not trusted("x", st)
