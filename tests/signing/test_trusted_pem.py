"""``validate`` reads a trusted signing key's usual PEM form without the crypto library (issue 14 §1).

``compiler.trust.plain_ed25519_pem`` may leave a file to ``load_public_key`` (cryptography), never
accept one that it refuses.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.bundle.dsse import load_public_key
from compiler.errors import LlmccError
from compiler.trust import plain_ed25519_pem

B64 = b"MCowBQYDK2VwAyEA7oIjhTkEpGH2fL5CPJM8bzhcXGfg/KtCZTfUoQ1elzs="
BEGIN, END = b"-----BEGIN PUBLIC KEY-----", b"-----END PUBLIC KEY-----"
SPKI = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo


def pem_of(der: bytes) -> bytes:
    b64 = base64.b64encode(der)
    body = b"\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return b"-----BEGIN PUBLIC KEY-----\n" + body + b"\n-----END PUBLIC KEY-----\n"


def library_accepts(data: bytes) -> bool:
    try:
        load_public_key(data)
    except LlmccError:
        return False
    return True


@settings(deadline=None, max_examples=200)
@given(st.binary(min_size=32, max_size=32))
def test_any_ed25519_key_in_the_usual_form_is_read_by_both(raw: bytes) -> None:
    der = bytes.fromhex("302a300506032b6570032100") + raw
    assert plain_ed25519_pem(pem_of(der))
    assert library_accepts(pem_of(der))


def test_a_generated_key_takes_the_plain_path() -> None:
    data = Ed25519PrivateKey.generate().public_key().public_bytes(*SPKI)
    assert plain_ed25519_pem(data)
    assert isinstance(serialization.load_pem_public_key(data), Ed25519PublicKey)


@pytest.mark.parametrize(
    "data",
    [
        X25519PrivateKey.generate().public_key().public_bytes(*SPKI),  # another curve
        pem_of(bytes.fromhex("302a300506032b6570032100") + b"\0" * 31),  # short
        pem_of(bytes.fromhex("302b300506032b6570032200") + b"\0" * 33),  # long
        pem_of(bytes.fromhex("302a300506032b6571032100") + b"\0" * 32),  # another OID (X448's neighbour)
        BEGIN + b"\n" + B64.replace(b"s=", b"!=") + b"\n" + END + b"\n",
        BEGIN.replace(b"PUBLIC", b"RSA PUBLIC") + b"\n" + B64 + b"\n" + END.replace(b"PUBLIC", b"RSA PUBLIC") + b"\n",
        BEGIN + b"\r\n" + B64 + b"\r\n" + END + b"\r\n",
        b"junk\n" + BEGIN + b"\n" + B64 + b"\n" + END + b"\n",
        BEGIN + b"\n" + END + b"\n",
        b"",
    ],
    ids=["x25519", "short", "long", "oid", "bad-base64", "rsa-label", "crlf", "leading-text", "empty-block", "empty"],
)
def test_any_other_form_goes_to_the_library(data: bytes) -> None:
    assert not plain_ed25519_pem(data)  # the library decides (it reads CRLF and leading text; it refuses the rest)
