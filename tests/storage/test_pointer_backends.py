"""The signed pointer and the read bounds on every backend (file, moto S3, OCI registry); the way out of a bad store."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compiler.errors import VerificationError
from compiler.freshness import verify_pointer
from compiler.publish import move_pointer, publish_target, refresh_pointer
from compiler.reader import read_target
from compiler.storage.base import MAX_ENVELOPE_BYTES, CorruptObjectError
from compiler.storage.file import FileStore
from tests.storage._cli import llmcc
from tests.storage._support import KeyPair, StoreSpec, keyring_of, make_body


def _url(spec: StoreSpec) -> list[str]:
    if spec.kind == "file":
        return ["--store", f"file://{spec.path}"]
    if spec.kind == "s3":
        return ["--store", f"s3://{spec.bucket}/{spec.prefix}", "--endpoint-url", spec.endpoint_url]
    return ["--store", f"oci://{spec.registry}/{spec.repository}"]


def test_publish_verify_pull_with_the_pointer(
    store_spec: StoreSpec, keypair: KeyPair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_spec.open()
    trusted = keyring_of(keypair.signer)
    for n in (1, 2):
        publish_target(store, "prod", make_body("prod", n), keypair.signer)
    publish_target(store, "prod@acme", make_body("prod@acme", 1), keypair.signer)
    pointer = verify_pointer(store.read_pointer("prod") or b"", "prod", trusted)
    assert pointer.version == 2
    assert store.targets() == ["prod", "prod@acme"]
    assert store.listing("prod").strays == ()
    root = tmp_path / "reader"
    keypair.write(root / "keys", "ci")
    flags = [*_url(store_spec), "--trusted-key", "keys/ci.pub", "--state-dir", "state"]
    assert llmcc(root, "verify", "--since-state", *flags) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("prod: versions 1-2 verified, latest ")
    assert llmcc(root, "pull", "prod", *flags) == 0
    capsys.readouterr()
    # a pointer moved back by hand (an old one replayed) is refused: the latest is far above it
    old = store.read_pointer("prod")
    publish_target(store, "prod", make_body("prod", 3), keypair.signer)
    publish_target(store, "prod", make_body("prod", 4), keypair.signer)
    assert store.swap_pointer("prod", old or b"", expected=store.read_pointer("prod"))
    assert llmcc(root, "pull", "prod", *flags) == 3
    assert "prod: version 4 is far above version 2 of the signed pointer" in capsys.readouterr().err
    # the pointer only moves up: a late publisher of version 3 leaves a pointer at 4 alone
    refresh_pointer(store, "prod", keypair.signer, trusted=trusted, now=datetime.now(UTC))
    at4 = store.read_pointer("prod")
    third = read_target(store, "prod", trusted, now=None, wanted=3).version(3)
    kept = move_pointer(
        store,
        "prod",
        3,
        third.digest,
        keypair.signer,
        trusted=trusted,
        now=datetime.now(UTC),
        expires_after=timedelta(days=1),
        expected=old,
    )
    assert kept.version == 4
    assert store.read_pointer("prod") == at4
    assert llmcc(root, "pull", "prod", *flags) == 0


def test_an_oversized_object_is_refused_before_it_is_read(store_spec: StoreSpec, keypair: KeyPair) -> None:
    store = store_spec.open()
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    assert store.create("prod", 2, b" " * (MAX_ENVELOPE_BYTES + 1))
    with pytest.raises(CorruptObjectError, match=f"prod version 2: is {MAX_ENVELOPE_BYTES + 1} bytes, more than the"):
        store.read("prod", 2)


def test_the_way_out_of_a_store_with_a_bad_version(
    tmp_path: Path, keypair: KeyPair, other_keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    """README "Repairing a store": find the bad version with verify, delete it and what follows, re-point, publish."""
    path = tmp_path / "store"
    store = FileStore(path)
    trusted = keyring_of(keypair.signer)
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    # version 2 signed by a key readers do not trust (an llmcc from before issue 9 published it)
    publish_target(
        store,
        "prod",
        make_body("prod", 2),
        other_keypair.signer,
        trusted=keyring_of(keypair.signer, other_keypair.signer),
    )
    with pytest.raises(VerificationError, match="refusing to extend prod: prod pointer: no valid signature"):
        publish_target(store, "prod", make_body("prod", 3), keypair.signer, trusted=trusted)
    root = tmp_path / "reader"
    keypair.write(root / "keys", "ci")
    flags = ["--store", f"file://{path}", "--trusted-key", "keys/ci.pub"]
    assert llmcc(root, "verify", *flags) == 3
    assert capsys.readouterr().err == "llmcc: prod version 2: no valid signature by a trusted key\n"  # step 1
    (path / "prod" / "00000002.dsse.json").unlink()  # step 2: the bad version and every one after it
    (path / "prod" / "latest.dsse.json").unlink()  # and the pointer
    refresh_pointer(store, "prod", keypair.signer, trusted=trusted, now=datetime.now(UTC))  # step 3
    assert publish_target(store, "prod", make_body("prod", 3), keypair.signer, trusted=trusted).version == 2
    assert llmcc(root, "verify", *flags) == 0
    # a bad version 1: the whole target starts a new chain
    publish_target(store, "dev", make_body("dev", 1), other_keypair.signer)
    with pytest.raises(VerificationError, match="refusing to extend dev"):
        publish_target(store, "dev", make_body("dev", 1), keypair.signer, trusted=trusted)
    shutil.rmtree(path / "dev")
    assert publish_target(store, "dev", make_body("dev", 1), keypair.signer, trusted=trusted).version == 1
    assert llmcc(root, "verify", *flags) == 0
