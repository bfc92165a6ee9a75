"""Envelope encryption of secret values in bundles (docs/bundle-format.md). Pure: no IO.

One random 256-bit data key (DEK) per target. Each secret value is sealed as

    ENC[AES256_GCM_SIV,data:<b64>,iv:<b64>,tag:<b64>,type:<str|int|float|bool|null>]

Invariants:

1. Two subkeys are derived from the DEK with HKDF-SHA256: one encrypts, one
   derives nonces. The DEK itself never keys a cipher.
2. AAD = ``llmcc/v1\\0`` + target + ``\\0`` + type + ``\\0`` + path. The type is
   bound too: the plaintext of the string ``"1"`` and of the integer ``1`` are
   the same bytes, so an unbound type field could be flipped.
3. Deterministic: nonce = HMAC-SHA256(nonce key, AAD + ``\\0`` + plaintext)[:12].
   The same DEK, target, path and value always give the same ``ENC[...]``, so
   an unchanged secret keeps its ciphertext and bundles are reproducible.
   AES-GCM-SIV is nonce-misuse resistant, so equal nonces leak only equality.
4. ``open_value`` fails closed: malformed text, another path or target, a wrong
   key or any flipped byte raise ``SecretsError`` naming the path, never the
   value. Base64 must be canonical, so no two texts open to one value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeGuard

from compiler.errors import SecretsError

# cryptography (~8 ms to import) loads when a value is sealed or opened: a compile with no secret
# field imports the sealing code but never calls it (issue 14 §1).

ALG: Final = "AES256_GCM_SIV"
DEK_BYTES: Final = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_AAD_PREFIX = b"llmcc/v1\0"
_COMMITMENT_LABEL = b"llmcc key commitment v1"
_COMMITMENT_PREFIX = "hmac-sha256:"

Scalar = str | int | float | bool | None
ValueType = Literal["str", "int", "float", "bool", "null"]

_B64 = r"[A-Za-z0-9+/]*={0,2}"
_ENC = re.compile(
    rf"ENC\[(?P<alg>{ALG}),data:(?P<data>{_B64}),iv:(?P<iv>{_B64}),tag:(?P<tag>{_B64}),"
    r"type:(?P<type>str|int|float|bool|null)\]"
)


class SecretValue:
    """Plaintext bytes that never show up in a repr, a log line or a traceback (STYLE R15)."""

    __slots__ = ("_b",)
    __hash__ = None  # type: ignore[assignment]  # equality is constant-time, hashing would leak

    def __init__(self, data: bytes) -> None:
        self._b = bytes(data)

    def reveal(self) -> bytes:
        """The plaintext. Call it only where the value is used, never to print it."""
        return self._b

    def __len__(self) -> int:
        return len(self._b)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._b, other._b)

    def __repr__(self) -> str:
        return f"SecretValue(<{len(self._b)} bytes redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a SecretValue cannot be pickled")


@dataclass(frozen=True, slots=True, kw_only=True)
class EncValue:
    """A parsed ``ENC[...]`` string. Ciphertext only: safe to show."""

    alg: str
    data: bytes
    iv: bytes
    tag: bytes
    type: ValueType


_UNDECODED = object()


def new_dek(rng: Callable[[int], bytes] = os.urandom) -> bytes:
    """A fresh 256-bit data key from ``rng`` (injected so tests can pin it: STYLE R13)."""
    dek = rng(DEK_BYTES)
    _check_dek(dek)
    return dek


def is_enc(text: object) -> TypeGuard[str]:
    """Whether ``text`` is an ``ENC[AES256_GCM_SIV,...]`` string (the bundle's form, not SOPS's)."""
    return isinstance(text, str) and _ENC.fullmatch(text) is not None


def parse_enc(text: str) -> EncValue:
    """Parse an ``ENC[...]`` string.

    Raises:
        SecretsError: not in the bundle's form, or base64 that is not canonical.
    """
    m = _ENC.fullmatch(text)
    if m is None:
        raise SecretsError(f"not an {ALG} ENC[...] value")
    iv, tag = _b64decode(m["iv"]), _b64decode(m["tag"])
    if len(iv) != _NONCE_BYTES or len(tag) != _TAG_BYTES:
        raise SecretsError("ENC[...] value has an iv or tag of the wrong length")
    vtype: ValueType = m["type"]  # type: ignore[assignment]  # the regex admits only these five
    return EncValue(alg=m["alg"], data=_b64decode(m["data"]), iv=iv, tag=tag, type=vtype)


def format_enc(enc: EncValue) -> str:
    b64 = base64.b64encode
    return (
        f"ENC[{enc.alg},data:{b64(enc.data).decode()},iv:{b64(enc.iv).decode()},"
        f"tag:{b64(enc.tag).decode()},type:{enc.type}]"
    )


def seal_value(dek: bytes, *, target: str, path: str, value: Scalar) -> str:
    """Encrypt one secret value for ``target`` at ``path`` (deterministic; see the module doc).

    Raises:
        SecretsError: a bad key, a NaN/infinite float, or a NUL in target or path.
    """
    _check_dek(dek)
    vtype, plaintext = _encode(value, path)
    aad = _aad(target, vtype, path)
    enc_key, nonce_key = _subkeys(dek)
    nonce = hmac.new(nonce_key, aad + b"\0" + plaintext, hashlib.sha256).digest()[:_NONCE_BYTES]
    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

    sealed = AESGCMSIV(enc_key).encrypt(nonce, plaintext, aad)
    data, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    return format_enc(EncValue(alg=ALG, data=data, iv=nonce, tag=tag, type=vtype))


def open_value(dek: bytes, *, target: str, path: str, enc: str, subkeys: tuple[bytes, bytes] | None = None) -> Scalar:
    """Decrypt one ``ENC[...]`` value sealed for ``target`` at ``path``.

    Checks, in order: (1) the text parses, (2) the AEAD tag verifies under the
    DEK's encryption subkey with this target, type and path as AAD, (3) the iv
    is the one the plaintext derives (the determinism invariant), (4) the
    plaintext decodes as its declared type.

    ``subkeys`` is :func:`value_subkeys` of ``dek``, for a reader that opens
    many values with one key (derived once instead of per value).

    Raises:
        SecretsError: naming ``path`` and never the value, when any check fails.
    """
    _check_dek(dek)
    try:
        parsed = parse_enc(enc)
    except SecretsError as e:
        raise SecretsError(f"{path}: cannot decrypt secret: {e}") from e
    aad = _aad(target, parsed.type, path)
    enc_key, nonce_key = subkeys or _subkeys(dek)
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

    try:
        plaintext = AESGCMSIV(enc_key).decrypt(parsed.iv, parsed.data + parsed.tag, aad)
    except InvalidTag as e:
        raise SecretsError(
            f"{path}: cannot decrypt secret: authentication failed "
            "(wrong data key, or the value was moved from another path or target, or altered)"
        ) from e
    try:
        expected = hmac.new(nonce_key, aad + b"\0" + plaintext, hashlib.sha256).digest()[:_NONCE_BYTES]
        if not hmac.compare_digest(expected, parsed.iv):
            raise SecretsError(f"{path}: cannot decrypt secret: iv does not match the sealed value")
        return _decode(parsed.type, plaintext, path)
    finally:
        # an error's traceback keeps this frame: its locals must not hold the plaintext
        # (error reporters that capture frame locals, debuggers, tracebacks kept in logs)
        del plaintext


def dek_commitment(dek: bytes) -> str:
    """``hmac-sha256:<hex>`` of a fixed label under the DEK: names the key without revealing it."""
    _check_dek(dek)
    return _COMMITMENT_PREFIX + hmac.new(dek, _COMMITMENT_LABEL, hashlib.sha256).hexdigest()


def check_commitment(dek: bytes, commitment: str) -> None:
    """Refuse a data key that does not match its recorded commitment.

    Raises:
        SecretsError: the unwrapped key is not the key the bundle was sealed with.
    """
    if not hmac.compare_digest(dek_commitment(dek).encode(), commitment.encode()):
        raise SecretsError("the unwrapped data key does not match its commitment (wrong or substituted key)")


def _check_dek(dek: bytes) -> None:
    if len(dek) != DEK_BYTES:
        raise SecretsError(f"a data key must be {DEK_BYTES} bytes")


def value_subkeys(dek: bytes) -> tuple[bytes, bytes]:
    """The (encryption, nonce) subkeys every value under ``dek`` uses (HKDF-SHA256)."""
    _check_dek(dek)
    return _subkeys(dek)


def _subkeys(dek: bytes) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def derive(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(dek)

    return derive(b"llmcc/v1 value encryption"), derive(b"llmcc/v1 value nonce")


def _aad(target: str, vtype: ValueType, path: str) -> bytes:
    if "\0" in target or "\0" in path:
        raise SecretsError("a secret's target and path cannot contain NUL")
    return _AAD_PREFIX + target.encode() + b"\0" + vtype.encode() + b"\0" + path.encode()


def _encode(value: Scalar, path: str) -> tuple[ValueType, bytes]:
    if isinstance(value, str):
        return "str", value.encode("utf-8")
    if value is None:
        return "null", b"null"
    if isinstance(value, bool):
        return "bool", b"true" if value else b"false"
    if isinstance(value, int):
        return "int", str(value).encode()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SecretsError(f"{path}: a secret number must be finite")
        return "float", json.dumps(value).encode()
    raise SecretsError(f"{path}: a secret must be a scalar, not {type(value).__name__}")


def _decode(vtype: ValueType, plaintext: bytes, path: str) -> Scalar:
    """The value of ``plaintext`` as ``vtype``.

    Raises:
        SecretsError: it is not one; raised with no cause or context (a
            UnicodeDecodeError's ``.object`` and a JSONDecodeError's ``.doc`` hold
            the plaintext), and with no local here holding it.
    """
    value: object = _UNDECODED
    text = ""
    try:
        text = plaintext.decode("utf-8")
        value = text if vtype == "str" else json.loads(text)
    except (UnicodeDecodeError, ValueError):
        pass  # raised below, outside this handler: no __context__
    finally:
        del plaintext
        text = ""
    ok = (
        value is not _UNDECODED
        and {
            "str": isinstance(value, str),
            "null": value is None,
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, float),
        }[vtype]
    )
    if not ok:
        del value
        raise SecretsError(f"{path}: cannot decrypt secret: plaintext is not a valid {vtype}")
    return value  # type: ignore[return-value]  # a checked scalar


def _b64decode(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise SecretsError("ENC[...] value holds invalid base64") from e
    if base64.b64encode(raw).decode() != text:
        raise SecretsError("ENC[...] value holds non-canonical base64")
    return raw
