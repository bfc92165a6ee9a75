"""Every file llmcc replaces goes through one durable atomic write (STYLE R14, compiler/fileops.py).

A rename is atomic but not durable until the file's data and then its
directory are fsynced: after a power cut a renamed-but-unsynced file can be
empty, or the rename lost. Each writer is checked for both fsyncs, in order,
by recording what ``os.fsync`` was given (the real writes still happen).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import fileops
from compiler.cli import keys, pull, secrets
from compiler.client.cache import LastGoodCache
from compiler.compile import build
from compiler.secrets.identity import load_identities
from compiler.secrets.sops import decrypt_sops, sops_index
from compiler.storage.seen import SeenFile
from tests.conftest import DEMO_IDENTITY, copy_example
from tests.core._repos import many_targets_repo

Fsyncs = list[tuple[str, str]]


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Fsyncs:
    """(kind, name) of each fsync: ``dir`` or ``file``, and the path the descriptor is open on."""
    calls: Fsyncs = []
    real = os.fsync

    def recording(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append((kind, os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return calls


def _check_durable(calls: Fsyncs, target: Path) -> None:
    kinds = [kind for kind, _ in calls]
    assert "file" in kinds, calls
    assert "dir" in kinds, calls
    assert kinds.index("file") < len(kinds) - 1 - kinds[::-1].index("dir"), calls  # data, then the rename
    assert ("dir", str(target.parent)) in calls
    assert [
        p.name for p in target.parent.iterdir() if p.name.endswith((".tmp", ".yaml")) and p.name.startswith(".")
    ] == []


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("pull._write_private", lambda p: pull._write_private(p, b"x", private=True)),
        ("keys.write_file", lambda p: keys.write_file(p, b"x", mode=0o600)),
        ("build.write_atomic", lambda p: build.write_atomic(p, b"x")),
        ("fileops.write_atomic", lambda p: fileops.write_atomic(p, b"x")),
    ],
)
def test_each_writer_fsyncs_the_file_then_its_directory(
    name: str, write: Callable[[Path], None], tmp_path: Path, fsyncs: Fsyncs
) -> None:
    target = tmp_path / "out" / "file.json"
    target.parent.mkdir()
    target.write_bytes(b"old")
    write(target)
    assert target.read_bytes() == b"x", name
    _check_durable(fsyncs, target)


def test_secrets_set_in_place_fsyncs_the_sops_file_then_its_directory(tmp_path: Path, fsyncs: Fsyncs) -> None:
    root = copy_example(tmp_path / "repo")
    rel = "environments/prod.secrets.sops.yaml"
    file = root / rel
    identities = load_identities(DEMO_IDENTITY, {})
    index = sops_index(("modules", "data-pipeline", "db", "password"))
    secrets._set_in_place(file, rel, index, b'"rotated-value"', identities)
    _check_durable(fsyncs, file)
    assert b'"rotated-value"' in decrypt_sops(file.read_bytes(), path=rel, identities=identities)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_write_atomic_sets_the_mode_exactly_and_cleans_up_after_a_failing_edit(tmp_path: Path) -> None:
    target = tmp_path / "f"
    old_umask = os.umask(0o077)
    try:
        fileops.write_atomic(target, b"a", mode=0o644)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644

    def failing(tmp: Path) -> None:
        raise RuntimeError("edit failed")

    with pytest.raises(RuntimeError):
        fileops.write_atomic(target, b"b", edit=failing)
    assert target.read_bytes() == b"a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def _cache_lock(tmp_path: Path) -> tuple[contextlib.AbstractContextManager[None], Path]:
    cache = LastGoodCache(tmp_path, "file:///store", "prod")
    return cache._locked(), cache.path.with_name(cache.path.name + ".lock")


def _seen_lock(tmp_path: Path) -> tuple[contextlib.AbstractContextManager[None], Path]:
    seen = SeenFile(tmp_path, "file:///store")
    return seen._locked(), seen.path.with_suffix(".lock")


@pytest.mark.parametrize("holder", [_cache_lock, _seen_lock], ids=["client-cache", "reader-state"])
def test_a_child_forked_while_a_lock_is_held_does_not_keep_it(
    holder: Callable[[Path], tuple[contextlib.AbstractContextManager[None], Path]], tmp_path: Path
) -> None:
    """A pre-fork server forking while the client's poller writes its cache: the parent must lock again.

    An flock belongs to the open file description, which the child shares; a
    child that lives on would hold it for good and the parent's next cache
    write (under the client's refresh lock) would wait forever.
    """
    tmp_path.chmod(0o700)
    locked, lock_file = holder(tmp_path)
    holding, release = threading.Event(), threading.Event()

    def poller() -> None:  # the client's poller, in the middle of a cache write
        with locked:
            holding.set()
            release.wait()

    thread = threading.Thread(target=poller)
    thread.start()
    holding.wait()
    read, write = os.pipe()
    ready_r, ready_w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the point of the test
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: lives on like a worker, then exits
        os.close(write)
        os.write(ready_w, b"r")  # the at-fork hooks have run
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    release.set()
    thread.join()
    try:
        fd = os.open(lock_file, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if the child kept the lock
        finally:
            os.close(fd)
    finally:
        os.close(write)
        os.waitpid(pid, 0)


def test_a_lock_the_forking_thread_holds_stays_with_it_in_the_child(tmp_path: Path) -> None:
    """The thread that forks goes on in the child: its lock is not closed under it (no EBADF on release)."""
    lock_file = tmp_path / "x.lock"
    with fileops.exclusive_lock(lock_file):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0 if len(fileops._HELD) == 1 else 1
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert fileops._HELD == {}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_compile_syncs_every_bundle_before_the_move_and_the_output_directory_after(
    tmp_path: Path, fsyncs: Fsyncs, jobs: str
) -> None:
    """Bundles are staged unsynced, then synced together (issue 14 §3): each one is on disk
    before its rename into DIR, and DIR is synced after the last rename, so after a power
    loss a bundle in DIR is whole. Before, DIR itself was never synced after the moves."""
    from compiler.cli import main

    root = many_targets_repo(tmp_path / "repo", tenants=4)
    out = tmp_path / "dist"
    assert main(["-C", str(root), "-q", "compile", "--out", str(out), "-j", jobs]) == 0
    bundles = sorted(p.name for p in out.glob("*.bundle.json"))
    assert len(bundles) == 11
    synced = [Path(name).name for kind, name in fsyncs if kind == "file"]
    assert sorted(n for n in synced if n.endswith(".bundle.json")) == bundles
    last_file = max(i for i, (kind, _) in enumerate(fsyncs) if kind == "file")
    assert ("dir", str(out)) in fsyncs[last_file:]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_write_new_refuses_an_existing_file_or_symlink_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "b.json"
    old_umask = os.umask(0o077)
    try:
        fileops.write_new(target, b"x" * 100_000)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"x" * 100_000
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(FileExistsError):
        fileops.write_new(target, b"y")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        fileops.write_new(tmp_path / "link", b"y")
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("count", [0, 1, 5])
def test_sync_files_syncs_each_file_once(tmp_path: Path, fsyncs: Fsyncs, count: int) -> None:
    paths = [tmp_path / f"f{i}" for i in range(count)]
    for p in paths:
        p.write_bytes(b"x")
    fileops.sync_files(paths)
    assert sorted(name for _, name in fsyncs) == sorted(str(p) for p in paths)
    with pytest.raises(FileNotFoundError):
        fileops.sync_files([*paths, tmp_path / "missing"])
