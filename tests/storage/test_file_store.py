"""FileStore specifics: layout, what readers ignore, names it refuses, stale temp files."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.errors import StorageError
from compiler.publish import publish_target
from compiler.storage import open_store
from compiler.storage.base import NoStoreError, parse_version_object_name, version_object_name
from compiler.storage.file import FileStore
from tests.storage._support import make_body, new_keypair


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_layout_is_one_file_per_version(root: Path) -> None:
    store = FileStore(root)
    assert store.create("prod@acme", 3, b"envelope") is True
    path = root / "prod@acme" / "00000003.dsse.json"
    assert path.read_bytes() == b"envelope"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(root / "prod@acme") == ["00000003.dsse.json"]  # no temp file left behind
    assert store.create("prod@acme", 3, b"other") is False
    assert path.read_bytes() == b"envelope"


def test_readers_ignore_temp_files_and_strays(root: Path) -> None:
    store = FileStore(root)
    store.create("prod", 1, b"one")
    for name in [".tmp-abc.part", "00000002.dsse.json.bak", "2.dsse.json", "000000002.dsse.json", "00000000.dsse.json"]:
        (root / "prod" / name).write_bytes(b"x")
    (root / "not a target").mkdir()
    (root / "Prod").mkdir()
    (root / "staging").mkdir()  # no versions yet
    (root / "README").write_text("hi")
    assert store.versions("prod") == [1]
    assert store.targets() == ["prod"]
    # readers refuse them (compiler/freshness.py), so the listing names every one
    assert store.listing("prod").strays == tuple(
        sorted([".tmp-abc.part", "00000002.dsse.json.bak", "2.dsse.json", "000000002.dsse.json", "00000000.dsse.json"])
    )


def test_stale_temp_files_are_removed_by_the_next_publish(root: Path) -> None:
    store = FileStore(root)
    store.create("prod", 1, b"one")
    stale, fresh = root / ".llmcc-tmp" / ".tmp-dead.part", root / ".llmcc-tmp" / ".tmp-live.part"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"in flight")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    store.create("prod", 2, b"two")
    assert not stale.exists()
    assert fresh.exists()


@pytest.mark.parametrize("target", ["../etc", "prod/x", "Prod", "prod\n", "", "prod@", "@acme", "a@b@c", ".llmcc"])
def test_bad_target_names_are_refused_before_any_io(root: Path, target: str) -> None:
    store = FileStore(root)
    for call in (lambda: store.versions(target), lambda: store.read(target, 1), lambda: store.create(target, 1, b"x")):
        with pytest.raises(StorageError, match="is not a target name"):
            call()
    assert not root.exists()


@pytest.mark.parametrize("version", [0, -1, True])
def test_bad_versions_are_refused(root: Path, version: int) -> None:
    with pytest.raises(StorageError, match="is not a version number"):
        FileStore(root).create("prod", version, b"x")


def test_version_object_names() -> None:
    assert version_object_name(3) == "00000003.dsse.json"
    assert version_object_name(123456789) == "123456789.dsse.json"
    assert parse_version_object_name("123456789.dsse.json") == 123456789
    assert parse_version_object_name("00000003.dsse.json") == 3
    assert parse_version_object_name("0000003.dsse.json") is None
    assert parse_version_object_name("٠٠٠٠٠٠٠٣.dsse.json") is None  # not ASCII digits


def test_missing_and_unreadable(root: Path, tmp_path: Path) -> None:
    store = FileStore(root)
    root.mkdir()
    assert store.targets() == []
    with pytest.raises(StorageError, match="prod has no version 1"):
        store.read("prod", 1)
    (root / "prod" / "00000001.dsse.json").mkdir(parents=True)
    with pytest.raises(StorageError, match="prod version 1: is not a regular file"):
        store.read("prod", 1)
    blocked = FileStore(tmp_path / "file")
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StorageError, match="cannot write prod version 1"):
        blocked.create("prod", 1, b"x")
    with pytest.raises(StorageError, match=r"no store at .*/file \(it is not a directory\)$"):
        blocked.targets()


def _reads(store: FileStore) -> list[Callable[[], object]]:
    return [
        store.targets,
        lambda: store.versions("prod"),
        lambda: store.listing("prod"),
        lambda: store.read("prod", 1),
        lambda: store.read_pointer("prod"),
        lambda: store.read_delta("prod", 2),
    ]


def test_a_store_that_does_not_exist_is_no_store_until_published(root: Path, tmp_path: Path) -> None:
    """Not an empty store: a reader with a mark would call that a rollback. A publish creates it."""
    store = FileStore(root)
    for read in _reads(store):
        with pytest.raises(NoStoreError) as caught:
            read()
        assert str(caught.value) == f"file://{root}: no store at {root} (the directory does not exist)"
    (tmp_path / "file").write_text("not a directory")
    for read in _reads(FileStore(tmp_path / "file")):
        with pytest.raises(StorageError) as refused:
            read()
        assert type(refused.value) is StorageError  # exit 2, not a corrupt store (3) nor a missing one
        assert str(refused.value).endswith(f"no store at {tmp_path / 'file'} (it is not a directory)")
    signer = new_keypair().signer
    assert publish_target(store, "prod", make_body(), signer).version == 1
    assert store.targets() == ["prod"]
    assert store.read_delta("prod", 2) is None
    with pytest.raises(StorageError, match="prod has no version 2"):
        store.read("prod", 2)


def test_open_store_resolves_relative_paths_against_the_repository(tmp_path: Path) -> None:
    store = open_store("file://.llmcc/store", root=tmp_path)
    assert store.url == "file://.llmcc/store"
    store.create("dev", 1, b"x")
    assert (tmp_path / ".llmcc" / "store" / "dev" / "00000001.dsse.json").is_file()
    absolute = open_store(f"file://{tmp_path}/abs", root=Path("/nonexistent"))
    absolute.create("dev", 1, b"y")
    assert (tmp_path / "abs" / "dev" / "00000001.dsse.json").read_bytes() == b"y"


@pytest.mark.parametrize("url", ["ftp://x/y", "store", "file://", "gs://bucket"])
def test_open_store_refuses_unknown_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        open_store(url, root=tmp_path)
