"""publish_target: versions, the hash chain, idempotence, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.bundle.canonical import digest
from compiler.bundle.dsse import sign_envelope, verify_envelope
from compiler.errors import VerificationError
from compiler.publish import publish_target
from compiler.storage.base import MissingObjectError
from compiler.storage.file import FileStore
from compiler.verify import verify_chain
from tests.storage._support import KeyPair, keyring_of, make_body


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    (tmp_path / "store").mkdir()
    return FileStore(tmp_path / "store")


def test_versions_and_links(store: FileStore, keypair: KeyPair) -> None:
    results = [publish_target(store, "prod", make_body("prod", n), keypair.signer) for n in (1, 2, 3)]
    assert [r.version for r in results] == [1, 2, 3]
    payloads = [verify_envelope(store.read("prod", v), keyring_of(keypair.signer), where="t") for v in (1, 2, 3)]
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


def test_another_trusted_key_does_not_matter_for_idempotence(
    store: FileStore, keypair: KeyPair, other_keypair: KeyPair
) -> None:
    """Same body, another trusted CI key: nothing new."""
    both = keyring_of(keypair.signer, other_keypair.signer)
    publish_target(store, "prod", make_body("prod", 1), keypair.signer, trusted=both)
    again = publish_target(store, "prod", make_body("prod", 1), other_keypair.signer, trusted=both)
    assert not again.created


def test_an_untrusted_signer_is_refused_before_anything_is_read_or_written(
    store: FileStore, keypair: KeyPair, other_keypair: KeyPair, tmp_path: Path
) -> None:
    with pytest.raises(VerificationError, match=r"signing key: key sha256:[0-9a-f]{64} is not in signing.trusted"):
        publish_target(store, "prod", make_body("prod", 1), other_keypair.signer, trusted=keyring_of(keypair.signer))
    assert not any((tmp_path / "store").iterdir())


def test_a_latest_signed_by_an_untrusted_key_is_not_extended(
    store: FileStore, keypair: KeyPair, other_keypair: KeyPair
) -> None:
    """The issue's case: a rogue version 1 stops the right key from stacking version 2 on it."""
    publish_target(store, "prod", make_body("prod", 1), other_keypair.signer)  # trusts only itself
    with pytest.raises(VerificationError) as e:
        publish_target(store, "prod", make_body("prod", 2), keypair.signer)
    assert "refusing to extend prod: prod pointer: no valid signature by a trusted key" in str(e.value)
    assert store.versions("prod") == [1]


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
def test_a_latest_that_is_not_a_bundle_stops_publish(
    store: FileStore, keypair: KeyPair, payload: bytes, tmp_path: Path
) -> None:
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    (tmp_path / "store" / "prod" / "00000001.dsse.json").write_bytes(sign_envelope(payload, keypair.signer))
    with pytest.raises(VerificationError, match=r"refusing to extend prod: prod version 1: signed payload"):
        publish_target(store, "prod", make_body("prod"), keypair.signer)
    assert store.versions("prod") == [1]


def test_a_gap_stops_publish(store: FileStore, keypair: KeyPair, tmp_path: Path) -> None:
    for n in (1, 2, 3):
        publish_target(store, "prod", make_body("prod", n), keypair.signer)
    (tmp_path / "store" / "prod" / "00000002.dsse.json").unlink()
    with pytest.raises(VerificationError, match="refusing to extend prod: prod: version 2 is missing"):
        publish_target(store, "prod", make_body("prod", 4), keypair.signer)
    assert store.versions("prod") == [1, 3]


def test_a_listed_version_that_cannot_be_read_is_re_listed(store: FileStore, keypair: KeyPair) -> None:
    """On OCI a tag being rewritten by a concurrent claim can answer 404 for a moment: publish re-lists."""
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)

    class Flickering:
        """The real store, except that the first ``misses`` reads find nothing."""

        def __init__(self, misses: int) -> None:
            self.misses = misses
            self.url, self.listing, self.read_pointer = store.url, store.listing, store.read_pointer
            self.create, self.swap_pointer = store.create, store.swap_pointer
            self.read_delta, self.create_delta = store.read_delta, store.create_delta

        def read(self, target: str, version: int) -> bytes:
            if self.misses:
                self.misses -= 1
                raise MissingObjectError(f"{self.url}: {target} has no version {version}")
            return store.read(target, version)

    assert publish_target(Flickering(2), "prod", make_body("prod", 2), keypair.signer).version == 2  # type: ignore[arg-type]
    with pytest.raises(MissingObjectError, match="prod has no version 1"):
        publish_target(Flickering(99), "prod", make_body("prod", 3), keypair.signer, max_attempts=3)  # type: ignore[arg-type]
    assert store.versions("prod") == [1, 2]
