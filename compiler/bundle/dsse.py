"""DSSE v1 envelopes signed with Ed25519 (docs/bundle-format.md).

An envelope is the canonical JSON object
``{"payload": b64, "payloadType": PAYLOAD_TYPE, "signatures": [{"keyid", "sig"}]}``
with padded standard base64, where each ``sig`` is an Ed25519 signature over
``PAE(payloadType, payload)``. The ``keyid`` is ``sha256:<hex>`` of the signing
public key's raw 32 bytes: a hint that is never used to choose or trust a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.bundle.canonical import InvalidJsonError, NotCanonicalError, canonical_json, loads_canonical
from compiler.errors import LlmccError, VerificationError
from compiler.jsontypes import JSONValue

PAYLOAD_TYPE = "application/vnd.llmcc.bundle+json"
# The signed pointer to a target's latest version (compiler/freshness.py). A distinct
# payload type, so that a signed bundle can never pass as a pointer or the reverse.
POINTER_PAYLOAD_TYPE = "application/vnd.llmcc.pointer+json"
_ENVELOPE_KEYS = frozenset({"payload", "payloadType", "signatures"})
_SIGNATURE_KEYS = frozenset({"keyid", "sig"})
# A bound on work done for an untrusted envelope; we only ever write one signature.
_MAX_SIGNATURES = 16


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key; equal keys have equal ``raw`` bytes."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise LlmccError(f"an Ed25519 public key has 32 bytes, not {len(self.raw)}")

    @property
    def keyid(self) -> str:
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()

    def verifies(self, signature: bytes, data: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 private key. Its repr never shows key material (STYLE R15)."""

    __slots__ = ("_key", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = PublicKey(
            key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"Signer(<private key redacted>, keyid={self.public_key.keyid})"


class Keyring:
    """The trusted public keys. Each distinct key counts once, however often it is listed."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[PublicKey] = ()) -> None:
        unique: dict[bytes, PublicKey] = {}
        for key in keys:
            unique.setdefault(key.raw, key)
        self._keys = tuple(unique.values())

    def __iter__(self) -> Iterator[PublicKey]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def load_signing_key(pem: bytes, *, where: str = "signing key") -> Signer:
    """An Ed25519 private key from unencrypted PKCS#8 PEM.

    Raises:
        LlmccError: not PEM, encrypted, or not Ed25519 (exit 2, naming ``where``).
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise LlmccError(f"{where}: not an unencrypted PKCS#8 PEM private key: {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise LlmccError(f"{where}: signing keys must be Ed25519, not {type(key).__name__}")
    return Signer(key)


def load_public_key(pem: bytes, *, where: str = "public key") -> PublicKey:
    """An Ed25519 public key from SubjectPublicKeyInfo PEM.

    Raises:
        LlmccError: not PEM or not Ed25519 (exit 2, naming ``where``).
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise LlmccError(f"{where}: not a SubjectPublicKeyInfo PEM public key: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise LlmccError(f"{where}: signing keys must be Ed25519, not {type(key).__name__}")
    return PublicKey(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def sign_envelope(payload: bytes, signer: Signer, *, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """The canonical JSON bytes of a DSSE envelope holding ``payload``, signed by ``signer``."""
    sig = signer.sign(pae(payload_type, payload))
    envelope: JSONValue = {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": payload_type,
        "signatures": [{"keyid": signer.public_key.keyid, "sig": base64.b64encode(sig).decode("ascii")}],
    }
    return canonical_json(envelope)


def verify_envelope(envelope: bytes, keyring: Keyring, *, where: str, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """The payload of ``envelope``, once a trusted key has signed it.

    Checks, in order:

    1. the envelope is exactly the canonical JSON we write: an object with
       exactly ``payload``, ``payloadType`` and ``signatures`` (1 to 16 objects
       with exactly ``keyid`` and ``sig``), all strings, base64 strict and padded;
    2. ``payloadType`` is ``payload_type`` (:data:`PAYLOAD_TYPE` for bundles,
       :data:`POINTER_PAYLOAD_TYPE` for pointers);
    3. at least one signature verifies over ``PAE(payloadType, payload)`` under a
       key of ``keyring``. Every trusted key is tried for every signature,
       whatever its ``keyid``; a signature that verifies under key K counts only
       if its ``keyid`` is K's keyid, because the stored object is immutable and
       a changed hint means someone altered it.

    The payload is not parsed here: callers parse exactly the returned bytes.

    Raises:
        VerificationError: any check failed (the message starts with ``where``).
    """
    payload, found_type, signatures = _parse_envelope(envelope, where=where)
    if found_type != payload_type:
        raise VerificationError(
            f"{where}: payloadType is {found_type!r}, expected {payload_type!r}", reason="signature"
        )
    if not len(keyring):
        raise VerificationError(f"{where}: no trusted keys to verify the signature with", reason="signature")
    message = pae(found_type, payload)
    for keyid, sig in signatures:
        for key in keyring:
            if key.verifies(sig, message) and keyid == key.keyid:
                return payload
    raise VerificationError(f"{where}: no valid signature by a trusted key", reason="signature")


def _parse_envelope(envelope: bytes, *, where: str) -> tuple[bytes, str, list[tuple[str, bytes]]]:
    try:
        obj = loads_canonical(envelope)
    except NotCanonicalError as e:
        raise VerificationError(f"{where}: envelope is not in canonical JSON form", reason="signature") from e
    except InvalidJsonError as e:
        raise VerificationError(f"{where}: envelope is {e}", reason="signature") from e
    if not isinstance(obj, dict) or set(obj) != _ENVELOPE_KEYS:
        raise VerificationError(
            f"{where}: envelope must have exactly the keys {sorted(_ENVELOPE_KEYS)}", reason="signature"
        )
    payload_b64, payload_type, sigs = obj["payload"], obj["payloadType"], obj["signatures"]
    if not isinstance(payload_b64, str) or not isinstance(payload_type, str):
        raise VerificationError(f"{where}: envelope payload and payloadType must be strings", reason="signature")
    if not isinstance(sigs, list) or not 1 <= len(sigs) <= _MAX_SIGNATURES:
        raise VerificationError(
            f"{where}: envelope signatures must be a list of 1 to {_MAX_SIGNATURES}", reason="signature"
        )
    signatures: list[tuple[str, bytes]] = []
    for entry in sigs:
        if not isinstance(entry, dict) or set(entry) != _SIGNATURE_KEYS:
            raise VerificationError(
                f"{where}: each signature must have exactly the keys keyid and sig", reason="signature"
            )
        keyid, sig = entry["keyid"], entry["sig"]
        if not isinstance(keyid, str) or not isinstance(sig, str):
            raise VerificationError(f"{where}: signature keyid and sig must be strings", reason="signature")
        signatures.append((keyid, _b64decode(sig, where=f"{where}: signature")))
    return _b64decode(payload_b64, where=f"{where}: payload"), payload_type, signatures


def _b64decode(text: str, *, where: str) -> bytes:
    """Strict padded standard base64: one spelling per byte string."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise VerificationError(f"{where} is not strict base64: {e}", reason="signature") from e
    if base64.b64encode(data).decode("ascii") != text:
        raise VerificationError(f"{where} is not canonical padded base64", reason="signature")
    return data
