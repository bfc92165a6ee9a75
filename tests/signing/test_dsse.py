"""DSSE v1 envelopes: PAE, Ed25519 signing, strict parsing, trust (docs/bundle-format.md)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.bundle.canonical import canonical_json
from compiler.bundle.dsse import (
    PAYLOAD_TYPE,
    POINTER_PAYLOAD_TYPE,
    Keyring,
    PublicKey,
    load_public_key,
    load_signing_key,
    pae,
    sign_envelope,
    verify_envelope,
)
from compiler.errors import LlmccError, VerificationError
from tests.storage._support import KeyPair, keyring_of, new_keypair

PAYLOAD = canonical_json({"apiVersion": "llmcc/v1", "kind": "Bundle", "note": "héllo"})


@pytest.fixture(scope="module")
def ci() -> KeyPair:
    return new_keypair()


@pytest.fixture(scope="module")
def intruder() -> KeyPair:
    return new_keypair()


def _envelope(envelope: bytes) -> dict:
    return json.loads(envelope)


def _reencode(obj: dict) -> bytes:
    return canonical_json(obj)


def test_pae_matches_the_dsse_spec_vector() -> None:
    # https://github.com/secure-systems-lab/dsse/blob/master/protocol.md (test vector)
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", b"") == b"DSSEv1 1 t 0 "


def test_sign_then_verify_returns_exactly_the_payload(ci: KeyPair) -> None:
    envelope = sign_envelope(PAYLOAD, ci.signer)
    assert verify_envelope(envelope, keyring_of(ci.signer), where="prod version 1") == PAYLOAD
    obj = _envelope(envelope)
    assert set(obj) == {"payload", "payloadType", "signatures"}
    assert obj["payloadType"] == PAYLOAD_TYPE
    assert base64.b64decode(obj["payload"]) == PAYLOAD
    [sig] = obj["signatures"]
    assert sig["keyid"] == ci.signer.public_key.keyid
    assert sig["keyid"].startswith("sha256:")
    assert len(sig["keyid"]) == 71
    assert len(base64.b64decode(sig["sig"])) == 64
    assert envelope == canonical_json(obj)


def test_signing_is_deterministic(ci: KeyPair) -> None:
    assert sign_envelope(PAYLOAD, ci.signer) == sign_envelope(PAYLOAD, ci.signer)


def test_untrusted_signer_is_refused(ci: KeyPair, intruder: KeyPair) -> None:
    envelope = sign_envelope(PAYLOAD, intruder.signer)
    with pytest.raises(VerificationError, match=r"^prod version 2: no valid signature by a trusted key$"):
        verify_envelope(envelope, keyring_of(ci.signer), where="prod version 2")


def test_untrusted_signer_claiming_a_trusted_keyid_is_refused(ci: KeyPair, intruder: KeyPair) -> None:
    obj = _envelope(sign_envelope(PAYLOAD, intruder.signer))
    obj["signatures"][0]["keyid"] = ci.signer.public_key.keyid
    with pytest.raises(VerificationError, match="no valid signature"):
        verify_envelope(_reencode(obj), keyring_of(ci.signer), where="w")


def test_every_trusted_key_is_tried_whatever_the_order(ci: KeyPair, intruder: KeyPair) -> None:
    envelope = sign_envelope(PAYLOAD, ci.signer)
    assert verify_envelope(envelope, keyring_of(intruder.signer, ci.signer), where="w") == PAYLOAD


def test_a_changed_keyid_hint_is_refused(ci: KeyPair) -> None:
    """The keyid never selects a key, but the stored object is immutable: any altered byte is refused."""
    obj = _envelope(sign_envelope(PAYLOAD, ci.signer))
    obj["signatures"][0]["keyid"] = "sha256:" + "0" * 64
    with pytest.raises(VerificationError, match="no valid signature"):
        verify_envelope(_reencode(obj), keyring_of(ci.signer), where="w")


def test_one_trusted_signature_among_others_suffices(ci: KeyPair, intruder: KeyPair) -> None:
    theirs = _envelope(sign_envelope(PAYLOAD, intruder.signer))["signatures"]
    ours = _envelope(sign_envelope(PAYLOAD, ci.signer))
    ours["signatures"] = theirs + ours["signatures"]
    assert verify_envelope(_reencode(ours), keyring_of(ci.signer), where="w") == PAYLOAD


def test_each_public_key_counts_once(ci: KeyPair, intruder: KeyPair) -> None:
    same = [load_public_key(ci.public_pem), load_public_key(ci.public_pem), ci.signer.public_key]
    keyring = Keyring([*same, intruder.signer.public_key])
    assert len(keyring) == 2
    assert [k.raw for k in keyring] == [ci.signer.public_key.raw, intruder.signer.public_key.raw]
    # a signature repeated many times by one key is still one key's signature
    obj = _envelope(sign_envelope(PAYLOAD, ci.signer))
    obj["signatures"] = obj["signatures"] * 3
    assert verify_envelope(_reencode(obj), Keyring(same), where="w") == PAYLOAD


def test_empty_keyring_trusts_nothing(ci: KeyPair) -> None:
    with pytest.raises(VerificationError, match="no trusted keys"):
        verify_envelope(sign_envelope(PAYLOAD, ci.signer), Keyring(), where="w")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.update(payloadType="application/json"), "payloadType"),
        (lambda o: o.update(extra=1), "exactly the keys"),
        (lambda o: o.pop("signatures"), "exactly the keys"),
        (lambda o: o.update(payload=7), "must be strings"),
        (lambda o: o.update(signatures=[]), "list of 1 to 16"),
        (lambda o: o.update(signatures=o["signatures"] * 17), "list of 1 to 16"),
        (lambda o: o.update(signatures={"keyid": "x", "sig": "y"}), "list of 1 to 16"),
        (lambda o: o["signatures"][0].pop("keyid"), "exactly the keys keyid and sig"),
        (lambda o: o["signatures"][0].update(keyid=None), "must be strings"),
        (lambda o: o["signatures"][0].update(sig=o["signatures"][0]["sig"].rstrip("=")), "not strict base64"),
        (lambda o: o.update(payload=o["payload"] + "\n"), "not strict base64"),
        (lambda o: o.update(payload=o["payload"].replace("=", "") + "=="), "base64"),
        (lambda o: o.update(payload="é"), "not strict base64"),
    ],
)
def test_malformed_envelopes_are_refused(ci: KeyPair, mutate: object, message: str) -> None:
    obj = _envelope(sign_envelope(PAYLOAD, ci.signer))
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(VerificationError, match=message):
        verify_envelope(_reencode(obj), keyring_of(ci.signer), where="w")


def test_non_canonical_base64_is_refused(ci: KeyPair) -> None:
    # "QR==" decodes like "QQ==" (nonzero padding bits): two spellings of one byte
    obj = _envelope(sign_envelope(PAYLOAD, ci.signer))
    obj["payload"] = "QR=="
    with pytest.raises(VerificationError, match="canonical padded base64"):
        verify_envelope(_reencode(obj), keyring_of(ci.signer), where="w")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'{"payload":"","payloadType":"x","signatures":[],"payload":""}',
    ],
)
def test_non_envelopes_are_refused(ci: KeyPair, raw: bytes) -> None:
    with pytest.raises(VerificationError, match=r"^w: "):
        verify_envelope(raw, keyring_of(ci.signer), where="w")


def test_envelope_must_be_canonical_json(ci: KeyPair) -> None:
    envelope = sign_envelope(PAYLOAD, ci.signer)
    pretty = json.dumps(json.loads(envelope), indent=1).encode()
    with pytest.raises(VerificationError, match="not in canonical JSON form"):
        verify_envelope(pretty, keyring_of(ci.signer), where="w")


def test_duplicate_keys_are_refused(ci: KeyPair) -> None:
    envelope = sign_envelope(PAYLOAD, ci.signer)
    doubled = envelope.replace(b'{"payload":', b'{"payload":"AA==","payload":', 1)
    with pytest.raises(VerificationError, match="duplicate key 'payload'"):
        verify_envelope(doubled, keyring_of(ci.signer), where="w")


def test_payload_is_not_parsed_before_the_signature(ci: KeyPair, intruder: KeyPair) -> None:
    """A hostile payload (not even JSON) signed by an untrusted key fails on the signature."""
    envelope = sign_envelope(b"\x00not json" * 1000, intruder.signer)
    with pytest.raises(VerificationError, match="no valid signature"):
        verify_envelope(envelope, keyring_of(ci.signer), where="w")
    # a trusted signature over any bytes yields exactly those bytes; parsing is the caller's job
    assert verify_envelope(sign_envelope(b"\x00raw", ci.signer), keyring_of(ci.signer), where="w") == b"\x00raw"


def test_a_bundle_envelope_never_passes_as_a_pointer_or_back(ci: KeyPair) -> None:
    """The payload type is signed (PAE): a signed bundle cannot be replayed as a signed pointer."""
    bundle = sign_envelope(PAYLOAD, ci.signer)
    pointer = sign_envelope(PAYLOAD, ci.signer, payload_type=POINTER_PAYLOAD_TYPE)
    with pytest.raises(VerificationError, match=r"payloadType is 'application/vnd\.llmcc\.bundle"):
        verify_envelope(bundle, keyring_of(ci.signer), where="w", payload_type=POINTER_PAYLOAD_TYPE)
    with pytest.raises(VerificationError, match=r"payloadType is 'application/vnd\.llmcc\.pointer"):
        verify_envelope(pointer, keyring_of(ci.signer), where="w")
    assert verify_envelope(pointer, keyring_of(ci.signer), where="w", payload_type=POINTER_PAYLOAD_TYPE) == PAYLOAD


def test_load_keys_round_trip(ci: KeyPair) -> None:
    signer = load_signing_key(ci.private_pem)
    assert signer.public_key == load_public_key(ci.public_pem)
    assert "redacted" in repr(signer)
    assert "PRIVATE" not in repr(signer)


def _ec_pems() -> tuple[bytes, bytes]:
    key = generate_private_key(SECP256R1())
    return (
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )


def test_bad_signing_keys_are_input_errors(ci: KeyPair) -> None:
    ec_private, ec_public = _ec_pems()
    encrypted = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    for pem, message in [
        (b"not a key", "not an unencrypted PKCS#8 PEM private key"),
        (encrypted, "not an unencrypted PKCS#8 PEM private key"),
        (ci.public_pem, "not an unencrypted PKCS#8 PEM private key"),
        (ec_private, "signing keys must be Ed25519, not EC"),
    ]:
        with pytest.raises(LlmccError, match=f"^ci.pem: {message}") as info:
            load_signing_key(pem, where="ci.pem")
        assert info.value.exit_code == 2
    for pem, message in [
        (b"nope", "not a SubjectPublicKeyInfo"),
        (ci.private_pem, "not a Sub"),
        (ec_public, "signing keys must be Ed25519"),
    ]:
        with pytest.raises(LlmccError, match=f"^ci.pub: {message}"):
            load_public_key(pem, where="ci.pub")


def test_public_key_has_32_bytes() -> None:
    with pytest.raises(LlmccError, match="32 bytes"):
        PublicKey(b"short")
