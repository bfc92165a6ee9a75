"""verify_chain, whole or a segment: each numbered check of compiler/verify.py, and the exhaustive tamper test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.bundle.canonical import canonical_json, digest
from compiler.bundle.dsse import Keyring, Signer, sign_envelope
from compiler.errors import VerificationError
from compiler.publish import publish_target
from compiler.storage.file import FileStore
from compiler.verify import verify_chain
from tests.storage._support import KeyPair, keyring_of, make_body, new_keypair


@pytest.fixture(scope="module")
def ci() -> KeyPair:
    return new_keypair()


@pytest.fixture(scope="module")
def trusted(ci: KeyPair) -> Keyring:
    return keyring_of(ci.signer)


def _bundle(target: str, version: int, previous: str | None, n: int | None = None, **meta: object) -> bytes:
    body = make_body(target, version if n is None else n)
    body["metadata"].update(version=version, previous=previous, **meta)
    return canonical_json(body)


def _chain(signer: Signer, target: str = "prod", count: int = 3) -> list[tuple[int, bytes]]:
    """``count`` correctly linked, signed versions of ``target``."""
    out, previous = [], None
    for v in range(1, count + 1):
        payload = _bundle(target, v, previous)
        out.append((v, sign_envelope(payload, signer)))
        previous = digest(payload)
    return out


def test_a_good_chain_verifies(ci: KeyPair, trusted: Keyring) -> None:
    chain = _chain(ci.signer)
    verified = verify_chain("prod", chain, trusted)
    assert [b.version for b in verified] == [1, 2, 3]
    assert verified[0].metadata["previous"] is None
    assert verified[2].metadata["previous"] == verified[1].digest == digest(verified[1].payload)
    assert verify_chain("prod", [], trusted) == []


def test_untrusted_signer_is_refused(ci: KeyPair, trusted: Keyring) -> None:
    intruder = new_keypair().signer
    chain = _chain(ci.signer)
    forged = sign_envelope(
        _bundle("prod", 3, digest(_bundle("prod", 2, digest(_bundle("prod", 1, None)))), n=99), intruder
    )
    with pytest.raises(VerificationError, match=r"^prod version 3: no valid signature by a trusted key$"):
        verify_chain("prod", [*chain[:2], (3, forged)], trusted)


def test_deleted_middle_version_breaks_the_chain(ci: KeyPair, trusted: Keyring) -> None:
    chain = _chain(ci.signer, count=4)
    with pytest.raises(VerificationError, match=r"^prod version 3 is missing: the chain is broken at 4$"):
        verify_chain("prod", [chain[0], chain[1], chain[3]], trusted)
    with pytest.raises(VerificationError, match=r"^prod version 1 is missing"):
        verify_chain("prod", chain[1:], trusted)


def test_repeated_version_is_refused(ci: KeyPair, trusted: Keyring) -> None:
    chain = _chain(ci.signer)
    with pytest.raises(VerificationError, match="version 3 is stored twice or out of order"):
        verify_chain("prod", [chain[0], chain[1], chain[1]], trusted)


def test_bundle_for_another_target_in_its_place_is_refused(ci: KeyPair, trusted: Keyring) -> None:
    """A validly signed prod@acme bundle copied into prod's place."""
    acme = _chain(ci.signer, "prod@acme", count=1)
    with pytest.raises(
        VerificationError, match=r"^prod version 1: bundle is for target 'prod@acme', but it is stored as 'prod'$"
    ):
        verify_chain("prod", acme, trusted)


def test_version_copied_to_another_number_is_refused(ci: KeyPair, trusted: Keyring) -> None:
    chain = _chain(ci.signer)
    with pytest.raises(VerificationError, match=r"^prod version 2: bundle says version 1, but it is stored as 2$"):
        verify_chain("prod", [chain[0], (2, chain[0][1])], trusted)


def test_wrong_previous_link_is_refused_even_when_signed(ci: KeyPair, trusted: Keyring) -> None:
    chain = _chain(ci.signer, count=2)
    relinked = sign_envelope(_bundle("prod", 2, "sha256:" + "0" * 64), ci.signer)
    with pytest.raises(VerificationError, match=r"^prod version 2: previous is 'sha256:0+', but version 1 has digest"):
        verify_chain("prod", [chain[0], (2, relinked)], trusted)


@pytest.mark.parametrize("previous", ["sha256:" + "a" * 64, "", 0])
def test_first_version_must_have_null_previous(ci: KeyPair, trusted: Keyring, previous: object) -> None:
    envelope = sign_envelope(_bundle("prod", 1, previous), ci.signer)  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="the first version must have previous null"):
        verify_chain("prod", [(1, envelope)], trusted)


def test_missing_previous_key_is_refused(ci: KeyPair, trusted: Keyring) -> None:
    body = make_body("prod")
    body["metadata"]["version"] = 1
    with pytest.raises(VerificationError, match="previous null, not '<absent>'"):
        verify_chain("prod", [(1, sign_envelope(canonical_json(body), ci.signer))], trusted)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"kind": "Bundle"}', "not canonical JSON"),
        (b"[1,2]", "not a JSON object"),
        (b"\xff", "not valid JSON"),
        (b'{"a":1,"a":1}', "duplicate key"),
        (b'{"a":NaN}', "NaN is not JSON"),
        (b'{"a":-Infinity}', "-Infinity is not JSON"),
        (b'{"a":1e400}', "1e400 is beyond the range of a double"),
        (b'{"a":1e-400}', "not canonical JSON"),  # it reads as 0.0, which is not its canonical text
        (b'{"apiVersion":"llmcc/v2","kind":"Bundle","metadata":{}}', "not an llmcc/v1 Bundle"),
        (b'{"apiVersion":"llmcc/v1","kind":"Other","metadata":{}}', "not an llmcc/v1 Bundle"),
        (b'{"apiVersion":"llmcc/v1","kind":"Bundle","metadata":[]}', "no metadata object"),
        (b'{"apiVersion":"llmcc/v1","kind":"Bundle","metadata":{"target":"prod","version":true}}', "says version True"),
        (b'{"apiVersion":"llmcc/v1","kind":"Bundle","metadata":{"target":"prod","version":1.0}}', "says version 1.0"),
    ],
)
def test_signed_payloads_that_are_not_bundles_are_refused(
    ci: KeyPair, trusted: Keyring, payload: bytes, message: str
) -> None:
    with pytest.raises(VerificationError, match=message):
        verify_chain("prod", [(1, sign_envelope(payload, ci.signer))], trusted)


def test_a_segment_checks_its_own_links_and_the_form_of_the_first(ci: KeyPair, trusted: Keyring) -> None:
    """What pull fetches: versions k..N, without the ones before k (compiler/reader.py)."""
    chain = _chain(ci.signer)
    assert [b.version for b in verify_chain("prod", chain[1:], trusted, start=2)] == [2, 3]
    assert verify_chain("prod", chain[2:], trusted, start=3)[0].version == 3  # previous not fetched: form only
    other_two = sign_envelope(_bundle("prod", 2, "sha256:" + "0" * 64, n=7), ci.signer)
    with pytest.raises(VerificationError, match=r"^prod version 3: previous is"):
        verify_chain("prod", [(2, other_two), chain[2]], trusted, start=2)
    untrusted_two = sign_envelope(_bundle("prod", 2, "sha256:" + "0" * 64), new_keypair().signer)
    with pytest.raises(VerificationError, match=r"^prod version 2: no valid signature"):
        verify_chain("prod", [(2, untrusted_two), chain[2]], trusted, start=2)
    bad_link = sign_envelope(_bundle("prod", 3, "md5:abc"), ci.signer)
    with pytest.raises(VerificationError, match=r"metadata\.previous is not a sha256 digest"):
        verify_chain("prod", [(3, bad_link)], trusted, start=3)
    with pytest.raises(VerificationError, match=r"^prod version 2 is missing: the chain is broken at 3$"):
        verify_chain("prod", chain[2:], trusted, start=2)


@pytest.fixture(scope="module")
def stored(ci: KeyPair, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, Path]:
    """Two small versions published to a file store: (envelope 1, envelope 2, path of 2)."""
    store = FileStore(tmp_path_factory.mktemp("tamper") / "store")
    for n in (1, 2):
        body = make_body("prod", n)
        body["modules"] = {"m": {"n": n}}
        publish_target(store, "prod", body, ci.signer)
    path = Path(str(store.url).removeprefix("file://")) / "prod" / "00000002.dsse.json"
    return store.read("prod", 1), store.read("prod", 2), path


@pytest.mark.parametrize("mask", [0x01, 0x20, 0x80])
def test_every_flipped_byte_of_a_stored_bundle_is_refused(
    stored: tuple[bytes, bytes, Path], trusted: Keyring, mask: int
) -> None:
    """Exhaustive: flip each byte of the stored envelope in turn; the chain and the segment refuse 100%."""
    first, second, _ = stored
    assert len(second) < 2000
    assert verify_chain("prod", [(1, first), (2, second)], trusted)[1].version == 2
    accepted = []
    for i in range(len(second)):
        flipped = bytearray(second)
        flipped[i] ^= mask
        tampered = bytes(flipped)
        for check in (
            lambda env: verify_chain("prod", [(1, first), (2, env)], trusted),
            lambda env: verify_chain("prod", [(2, env)], trusted, start=2),
        ):
            try:
                check(tampered)
            except VerificationError:
                continue
            accepted.append(i)
    assert accepted == []


def test_every_flipped_byte_of_the_previous_version_breaks_the_chain(
    stored: tuple[bytes, bytes, Path], trusted: Keyring
) -> None:
    first, second, _ = stored
    for i in range(len(first)):
        flipped = bytearray(first)
        flipped[i] ^= 0x01
        with pytest.raises(VerificationError):
            verify_chain("prod", [(1, bytes(flipped)), (2, second)], trusted)


def test_verified_payload_is_the_signed_bytes(stored: tuple[bytes, bytes, Path], trusted: Keyring) -> None:
    first, second, _ = stored
    [one, two] = verify_chain("prod", [(1, first), (2, second)], trusted)
    assert json.loads(two.payload) == two.bundle
    assert two.metadata == two.bundle["metadata"]
    assert two.bundle["modules"] == {"m": {"n": 2}}
    assert two.metadata["previous"] == one.digest
