"""Issue 9 §3 on a file store: rollback, gaps, strays, freezes and unbounded objects are refused by verify and pull.

Each case starts from a copy of a good store (prod 1-2, signed pointer at 2) and changes it.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compiler.publish import publish_target, refresh_pointer
from compiler.storage.file import FileStore
from tests.storage._cli import llmcc
from tests.storage._support import KeyPair, keyring_of, make_body


@pytest.fixture
def good(tmp_path: Path, keypair: KeyPair) -> Path:
    """A good store: prod versions 1-2 with a signed pointer at 2."""
    path = tmp_path / "good"
    store = FileStore(path)
    for n in (1, 2):
        publish_target(store, "prod", make_body("prod", n), keypair.signer)
    return path


@pytest.fixture
def reader(tmp_path: Path, keypair: KeyPair) -> tuple[Path, Path, list[str]]:
    """A reader's directory, the store path it reads, and its flags."""
    root = tmp_path / "reader"
    keypair.write(root / "keys", "ci")
    store = tmp_path / "store"
    return root, store, ["--store", f"file://{store}", "--trusted-key", "keys/ci.pub", "--state-dir", "state"]


def _both_refuse(root: Path, flags: list[str], capsys: pytest.CaptureFixture[str], message: str) -> None:
    assert llmcc(root, "verify", *[f for f in flags if f not in ("--state-dir", "state")]) == 3
    assert capsys.readouterr().err == f"llmcc: {message}\n"
    assert llmcc(root, "pull", "prod", *flags) == 3
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"llmcc: {message}\n")


def _version(store: Path, n: int) -> Path:
    return store / "prod" / f"{n:08d}.dsse.json"


def test_the_good_store_verifies_and_pulls(
    good: Path, reader: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = reader
    shutil.copytree(good, store)
    assert llmcc(root, "verify", *flags[:4]) == 0
    assert "prod: versions 1-2 verified, latest sha256:" in capsys.readouterr().out
    assert llmcc(root, "pull", "prod", *flags) == 0


def test_deleting_the_newest_version_is_a_rollback(
    good: Path, reader: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = reader
    shutil.copytree(good, store)
    _version(store, 2).unlink()
    _both_refuse(
        root,
        flags,
        capsys,
        "prod: the latest listed version is 1, older than version 2 of the signed pointer (rollback?)",
    )


def test_deleting_version_1_of_2_is_a_gap(
    good: Path, reader: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = reader
    shutil.copytree(good, store)
    _version(store, 1).unlink()
    _both_refuse(root, flags, capsys, "prod: version 1 is missing (the store lists 2 next)")


def test_a_copy_stored_as_version_99999999_is_refused(
    good: Path, reader: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = reader
    shutil.copytree(good, store)
    shutil.copyfile(_version(store, 2), _version(store, 99999999))
    _both_refuse(root, flags, capsys, "prod: version 3 is missing (the store lists 99999999 next)")


def test_validly_signed_versions_far_above_the_pointer_are_refused(
    good: Path, reader: tuple[Path, Path, list[str]], keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    """Versions 3 and 4 are real, signed and linked, but no publish moved the pointer past 2."""
    root, store, flags = reader
    shutil.copytree(good, store)
    ahead = FileStore(good)
    for n in (3, 4):
        publish_target(ahead, "prod", make_body("prod", n), keypair.signer)
    shutil.copyfile(_version(good, 3), _version(store, 3))
    assert llmcc(root, "pull", "prod", *flags) == 0  # one above the pointer: a publish between its two writes
    capsys.readouterr()
    shutil.copyfile(_version(good, 4), _version(store, 4))
    _both_refuse(
        root,
        flags,
        capsys,
        "prod: version 4 is far above version 2 of the signed pointer; "
        "versions 4-4 were not published by llmcc publish",
    )


@pytest.mark.parametrize(
    "name",
    [
        "00000000.dsse.json",  # v0
        "000000001.dsse.json",  # nine digits
        "-0000001.dsse.json",  # negative
        "0000000a.dsse.json",  # hex
        "00000003.dsse.json.tmp",  # a .tmp suffix
        "٠٠٠٠٠٠٠٣.dsse.json",  # Unicode (Arabic-Indic) digits
        "v00000003",
    ],
)
def test_every_object_that_is_not_a_canonical_version_is_refused(
    good: Path, reader: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    root, store, flags = reader
    shutil.copytree(good, store)
    shutil.copyfile(_version(store, 1), store / "prod" / name)
    _both_refuse(root, flags, capsys, f"prod: the store holds 1 object besides the canonical versions: {name!r}")


def test_an_expired_pointer_is_a_freeze_until_ci_refreshes_it(
    tmp_path: Path, reader: tuple[Path, Path, list[str]], keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = reader
    past = datetime(2020, 1, 1, tzinfo=UTC)
    publish_target(FileStore(store), "prod", make_body("prod", 1), keypair.signer, now=past)
    _both_refuse(
        root,
        flags,
        capsys,
        "prod: the signed pointer expired at 2020-01-08T00:00:00Z (a frozen store?); "
        "the publisher refreshes it with llmcc publish --refresh-pointer",
    )
    pointer = refresh_pointer(
        FileStore(store), "prod", keypair.signer, trusted=keyring_of(keypair.signer), now=datetime.now(UTC)
    )
    assert pointer.version == 1
    assert pointer.expires > datetime.now(UTC) + timedelta(days=6)
    assert llmcc(root, "pull", "prod", *flags) == 0


def test_a_reader_refuses_an_older_copy_of_the_store_after_pulling_the_newer(
    good: Path, reader: tuple[Path, Path, list[str]], keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old copy is self-consistent (its own pointer, unexpired): only the high-water mark catches it."""
    root, store, flags = reader
    shutil.copytree(good, store)
    old = good.parent / "old"
    shutil.copytree(good, old)
    publish_target(FileStore(store), "prod", make_body("prod", 3), keypair.signer)
    assert llmcc(root, "pull", "prod", *flags) == 0
    capsys.readouterr()
    shutil.rmtree(store)
    shutil.copytree(old, store)
    assert llmcc(root, "verify", *flags[:4]) == 0  # without the state, nothing to compare with
    capsys.readouterr()
    rollback = "prod: the latest version is 2, older than version 3 this reader already accepted (rollback?)"
    assert llmcc(root, "pull", "prod", *flags) == 3
    assert capsys.readouterr().err == f"llmcc: {rollback}\n"
    assert llmcc(root, "verify", "--since-state", *flags) == 3
    assert capsys.readouterr().err == f"llmcc: {rollback}\n"
    shutil.rmtree(store / "prod")  # the whole target gone: the state still names it
    (store / "prod").mkdir()
    assert llmcc(root, "verify", "--since-state", *flags) == 3
    assert capsys.readouterr().err == (
        "llmcc: prod: no signed pointer, but this reader has seen version 3; "
        "a deleted pointer can hide deleted versions (rollback?); only if this store predates pointers: "
        "check its newest version against the publish log, then llmcc publish --refresh-pointer\n"
    )


def test_a_rewritten_chain_with_the_same_version_numbers_is_refused(
    good: Path, reader: tuple[Path, Path, list[str]], keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = reader
    shutil.copytree(good, store)
    assert llmcc(root, "verify", "--since-state", *flags) == 0
    capsys.readouterr()
    shutil.rmtree(store)
    other = FileStore(store)
    for n in (11, 12):
        publish_target(other, "prod", make_body("prod", n), keypair.signer)
    assert llmcc(root, "pull", "prod", *flags) == 3
    err = capsys.readouterr().err
    assert err.startswith("llmcc: prod version 2: digest sha256:")
    assert err.endswith("that this reader accepted before (the chain was rewritten)\n")


def test_a_fifo_and_a_huge_object_are_refused_unread(
    good: Path, reader: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = reader
    shutil.copytree(good, store)
    _version(store, 2).unlink()
    os.mkfifo(_version(store, 2))  # reading it would block forever
    _both_refuse(root, flags, capsys, f"file://{store}: prod version 2: is not a regular file; refusing to read it")
    _version(store, 2).unlink()
    with open(_version(store, 2), "wb") as f:
        f.truncate(400 * 1024 * 1024)  # sparse: 400 MiB that cost no disk
    _both_refuse(
        root,
        flags,
        capsys,
        f"file://{store}: prod version 2: is 419430400 bytes, more than the 67108864 a reader accepts",
    )


def test_a_pointer_copied_from_another_target_is_refused(
    good: Path, reader: tuple[Path, Path, list[str]], keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = reader
    shutil.copytree(good, store)
    publish_target(FileStore(store), "dev", make_body("dev", 1), keypair.signer)
    shutil.copyfile(store / "dev" / "latest.dsse.json", store / "prod" / "latest.dsse.json")
    _both_refuse(root, flags, capsys, "prod pointer: it points into target 'dev', but it is stored as 'prod'")
