"""publish_target: versions, the hash chain, idempotence, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.bundle.canonical import digest
from compiler.bundle.dsse import read_unverified_payload, sign_envelope
from compiler.errors import VerificationError
from compiler.publish import publish_target
from compiler.storage.file import FileStore
from compiler.verify import verify_chain
from tests.storage._support import KeyPair, keyring_of, make_body


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


def test_versions_and_links(store: FileStore, keypair: KeyPair) -> None:
    results = [publish_target(store, "prod", make_body("prod", n), keypair.signer) for n in (1, 2, 3)]
    assert [r.version for r in results] == [1, 2, 3]
    payloads = [read_unverified_payload(store.read("prod", v), where="t") for v in (1, 2, 3)]
    assert [r.digest for r in results] == [digest(p) for p in payloads]
    verified = verify_chain("prod", [(v, store.read("prod", v)) for v in (1, 2, 3)], keyring_of(keypair.signer))
    assert [b.metadata["previous"] for b in verified] == [None, results[0].digest, results[1].digest]
    assert verified[2].metadata["version"] == 3


def test_body_from_build_body_with_null_version_is_accepted(store: FileStore, keypair: KeyPair) -> None:
    body = make_body("prod")
    body["metadata"].update(version=None, previous=None)
    first = publish_target(store, "prod", body, keypair.signer)
    again = publish_target(store, "prod", make_body("prod"), keypair.signer)  # same body, keys absent
    assert (first.created, again.created, again.version) == (True, False, 1)


def test_targets_have_independent_chains(store: FileStore, keypair: KeyPair) -> None:
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    publish_target(store, "prod", make_body("prod", 2), keypair.signer)
    acme = publish_target(store, "prod@acme", make_body("prod@acme", 1), keypair.signer)
    assert acme.version == 1
    assert store.targets() == ["prod", "prod@acme"]


def test_signer_does_not_matter_for_idempotence(store: FileStore, keypair: KeyPair, other_keypair: KeyPair) -> None:
    """Same body, another CI key: nothing new (trust is the readers' business)."""
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    again = publish_target(store, "prod", make_body("prod", 1), other_keypair.signer)
    assert not again.created


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b: b["metadata"].update(target="prod@acme"), "metadata.target 'prod'"),
        (lambda b: b.pop("metadata"), "metadata.target 'prod'"),
        (lambda b: b["metadata"].update(version=3), "assigned by publish_target"),
        (lambda b: b["metadata"].update(previous="sha256:00"), "assigned by publish_target"),
    ],
)
def test_bad_bodies_are_bugs(store: FileStore, keypair: KeyPair, edit: object, message: str) -> None:
    body = make_body("prod")
    edit(body)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        publish_target(store, "prod", body, keypair.signer)
    assert store.versions("prod") == []


@pytest.mark.parametrize("payload", [b"\xffnot json", b"[]", b'{"metadata": 1}'])
def test_a_latest_that_is_not_a_bundle_stops_publish(store: FileStore, keypair: KeyPair, payload: bytes) -> None:
    assert store.create("prod", 1, sign_envelope(payload, keypair.signer))
    with pytest.raises(VerificationError, match="run llmcc verify"):
        publish_target(store, "prod", make_body("prod"), keypair.signer)
    assert store.versions("prod") == [1]


def test_publishing_after_a_gap_links_to_the_latest(store: FileStore, keypair: KeyPair, tmp_path: Path) -> None:
    for n in (1, 2, 3):
        publish_target(store, "prod", make_body("prod", n), keypair.signer)
    (tmp_path / "store" / "prod" / "00000002.dsse.json").unlink()
    fourth = publish_target(store, "prod", make_body("prod", 4), keypair.signer)
    assert fourth.version == 4
    with pytest.raises(VerificationError, match="version 2 is missing"):
        verify_chain("prod", [(v, store.read("prod", v)) for v in store.versions("prod")], keyring_of(keypair.signer))
