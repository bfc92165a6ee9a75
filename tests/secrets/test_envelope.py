"""Laws of the value envelope: round trip, determinism, AAD binding, tamper evidence (STYLE R18)."""

from __future__ import annotations

import hashlib
import hmac
import math
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.errors import SecretsError
from compiler.secrets.envelope import (
    ALG,
    SecretValue,
    check_commitment,
    dek_commitment,
    format_enc,
    is_enc,
    new_dek,
    open_value,
    parse_enc,
    seal_value,
)
from tests.secrets._secrets_support import new_canary

DEK = bytes(range(32))
OTHER = bytes(range(1, 33))
scalars = st.one_of(
    st.text(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
paths = st.text(min_size=1).filter(lambda s: "\0" not in s)
targets = st.from_regex(r"[a-z][a-z0-9_-]{0,10}(@[a-z][a-z0-9_-]{0,10})?", fullmatch=True)
keys = st.binary(min_size=32, max_size=32)


def same(a: object, b: object) -> bool:
    return type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)))


@given(dek=keys, target=targets, path=paths, value=scalars)
def test_seal_open_round_trip(dek: bytes, target: str, path: str, value: object) -> None:
    enc = seal_value(dek, target=target, path=path, value=value)  # type: ignore[arg-type]
    assert is_enc(enc)
    assert same(open_value(dek, target=target, path=path, enc=enc), value)


@given(dek=keys, target=targets, path=paths, value=scalars)
def test_seal_is_deterministic(dek: bytes, target: str, path: str, value: object) -> None:
    a = seal_value(dek, target=target, path=path, value=value)  # type: ignore[arg-type]
    b = seal_value(dek, target=target, path=path, value=value)  # type: ignore[arg-type]
    assert a == b


@given(target=targets, path=paths, other_path=paths, value=scalars)
def test_ciphertext_moved_to_another_path_fails(target: str, path: str, other_path: str, value: object) -> None:
    enc = seal_value(DEK, target=target, path=path, value=value)  # type: ignore[arg-type]
    if other_path != path:
        with pytest.raises(SecretsError, match="authentication failed"):
            open_value(DEK, target=target, path=other_path, enc=enc)


@given(target=targets, other=targets, path=paths, value=scalars)
def test_ciphertext_moved_to_another_target_fails(target: str, other: str, path: str, value: object) -> None:
    enc = seal_value(DEK, target=target, path=path, value=value)  # type: ignore[arg-type]
    if other != target:
        with pytest.raises(SecretsError):
            open_value(DEK, target=other, path=path, enc=enc)


@given(value=scalars)
def test_wrong_key_fails(value: object) -> None:
    enc = seal_value(DEK, target="prod", path="m$.a", value=value)  # type: ignore[arg-type]
    with pytest.raises(SecretsError, match=r"m\$\.a"):
        open_value(OTHER, target="prod", path="m$.a", enc=enc)


@settings(max_examples=60)
@given(value=scalars, data=st.data())
def test_any_changed_character_fails(value: object, data: st.DataObject) -> None:
    enc = seal_value(DEK, target="prod", path="m$.a", value=value)  # type: ignore[arg-type]
    i = data.draw(st.integers(0, len(enc) - 1))
    replacement = data.draw(st.sampled_from("AQgw+/=0Z]a,:"))
    tampered = enc[:i] + replacement + enc[i + 1 :]
    if tampered == enc:
        return
    with pytest.raises(SecretsError):
        open_value(DEK, target="prod", path="m$.a", enc=tampered)


@settings(max_examples=60)
@given(value=st.text(min_size=1), data=st.data())
def test_any_flipped_bit_fails(value: str, data: st.DataObject) -> None:
    enc = parse_enc(seal_value(DEK, target="prod", path="m$.a", value=value))
    field = data.draw(st.sampled_from(["data", "iv", "tag"]))
    raw = bytearray(getattr(enc, field))
    if not raw:
        return
    i = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[i // 8] ^= 1 << (i % 8)
    kwargs = {
        "alg": enc.alg,
        "data": enc.data,
        "iv": enc.iv,
        "tag": enc.tag,
        "type": enc.type,
        field: bytes(raw),
    }
    tampered = format_enc(type(enc)(**kwargs))
    with pytest.raises(SecretsError):
        open_value(DEK, target="prod", path="m$.a", enc=tampered)


def test_type_field_is_bound() -> None:
    enc = seal_value(DEK, target="prod", path="m$.port", value="8080")
    with pytest.raises(SecretsError, match="authentication failed"):
        open_value(DEK, target="prod", path="m$.port", enc=enc.replace("type:str", "type:int"))


def test_format_and_types() -> None:
    for value, vtype in [("x", "str"), (1, "int"), (1.0, "float"), (True, "bool"), (None, "null")]:
        enc = seal_value(DEK, target="prod", path="m$.a", value=value)
        assert enc.startswith(f"ENC[{ALG},data:")
        assert enc.endswith(f",type:{vtype}]")
        parsed = parse_enc(enc)
        assert len(parsed.iv) == 12
        assert len(parsed.tag) == 16
        assert format_enc(parsed) == enc
    assert (
        open_value(DEK, target="prod", path="m$.a", enc=seal_value(DEK, target="prod", path="m$.a", value=1.0)) == 1.0
    )


def test_empty_string_round_trips() -> None:
    enc = seal_value(DEK, target="prod", path="m$.a", value="")
    assert open_value(DEK, target="prod", path="m$.a", enc=enc) == ""


def test_ciphertext_does_not_contain_plaintext() -> None:
    secret = new_canary()
    enc = seal_value(DEK, target="prod", path="m$.a", value=secret)
    assert secret not in enc
    assert secret.encode() not in parse_enc(enc).data


def test_different_values_have_different_ciphertexts() -> None:
    a = seal_value(DEK, target="prod", path="m$.a", value=new_canary())
    b = seal_value(DEK, target="prod", path="m$.a", value=new_canary())
    assert parse_enc(a).iv != parse_enc(b).iv


def test_error_names_the_path_never_the_value() -> None:
    secret = new_canary()
    enc = seal_value(DEK, target="prod", path="data-pipeline$.db.password", value=secret)
    with pytest.raises(SecretsError) as info:
        open_value(OTHER, target="prod", path="data-pipeline$.db.password", enc=enc)
    assert "data-pipeline$.db.password" in str(info.value)
    assert secret not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",  # sops's form, not ours
        f"ENC[{ALG},data:AA==,iv:AA==,tag:AA==,type:str]",  # iv/tag of the wrong length
        f"ENC[{ALG},data:A===,iv:AAAAAAAAAAAAAAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]",
        f"ENC[{ALG},data:AB==,iv:AAAAAAAAAAAAAAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]",  # non-canonical
        f"ENC[{ALG},data:,iv:AAAAAAAAAAAAAAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:bytes]",
    ],
)
def test_malformed_enc_is_refused(text: str) -> None:
    with pytest.raises(SecretsError, match=r"m\$\.a: cannot decrypt"):
        open_value(DEK, target="prod", path="m$.a", enc=text)


def test_bad_inputs_to_seal() -> None:
    with pytest.raises(SecretsError, match="32 bytes"):
        seal_value(b"short", target="prod", path="m$.a", value="x")
    with pytest.raises(SecretsError, match="finite"):
        seal_value(DEK, target="prod", path="m$.a", value=math.nan)
    with pytest.raises(SecretsError, match="NUL"):
        seal_value(DEK, target="prod", path="m$.a\0b", value="x")
    with pytest.raises(SecretsError, match="scalar"):
        seal_value(DEK, target="prod", path="m$.a", value=[1])  # type: ignore[arg-type]


def test_new_dek_uses_the_injected_rng() -> None:
    assert new_dek(lambda n: b"\x07" * n) == b"\x07" * 32
    assert len(new_dek()) == 32
    assert new_dek() != new_dek()
    with pytest.raises(SecretsError):
        new_dek(lambda n: b"\x00" * (n - 1))


def test_commitment() -> None:
    c = dek_commitment(DEK)
    assert c.startswith("hmac-sha256:")
    assert len(c) == len("hmac-sha256:") + 64
    check_commitment(DEK, c)
    with pytest.raises(SecretsError, match="commitment"):
        check_commitment(OTHER, c)
    assert dek_commitment(OTHER) != c


def test_secret_value_is_redacted() -> None:
    secret = new_canary()
    v = SecretValue(secret.encode())
    assert repr(v) == f"SecretValue(<{len(secret)} bytes redacted>)"
    assert str(v) == repr(v)
    assert f"{v}" == repr(v)
    assert secret not in repr([v, {"k": v}])
    assert v.reveal() == secret.encode()
    assert v == SecretValue(secret.encode())
    assert v != SecretValue(b"other")
    assert (v == "x") is False
    assert len(v) == len(secret)
    with pytest.raises(TypeError):
        hash(v)
    with pytest.raises(TypeError, match="cannot be pickled"):
        v.__reduce__()


_TESTS = str(Path(__file__).parents[1])


def _reachable_text(error: BaseException) -> str:
    """What an error reporter can reach from ``error``: messages, attributes, chained errors, frame locals."""
    seen: set[int] = set()
    out: list[str] = []
    todo: list[BaseException] = [error]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        out += [str(e), repr(e.args), *(repr(getattr(e, a, "")) for a in ("doc", "object"))]
        tb = e.__traceback__
        while tb is not None:
            if not tb.tb_frame.f_code.co_filename.startswith(_TESTS):  # not a test's own frame
                out += [repr(v) for v in tb.tb_frame.f_locals.values()]
            tb = tb.tb_next
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return "\n".join(out)


@pytest.mark.parametrize(("vtype", "tail"), [("int", b""), ("bool", b""), ("float", b"\xff"), ("str", b"\xff")])
def test_a_value_that_does_not_decode_leaks_no_plaintext_through_the_error(vtype: str, tail: bytes) -> None:
    """Chained JSONDecodeError.doc / UnicodeDecodeError.object and frame locals held the plaintext."""
    from compiler.secrets import envelope

    canary = new_canary()
    dek = envelope.new_dek()
    aad = envelope._aad("prod", vtype, "m$.p")  # type: ignore[arg-type]  # a type the plaintext is not
    enc_key, nonce_key = envelope._subkeys(dek)
    plaintext = canary.encode() + tail  # not JSON, or not UTF-8
    nonce = hmac.new(nonce_key, aad + b"\0" + plaintext, hashlib.sha256).digest()[:12]
    sealed = AESGCMSIV(enc_key).encrypt(nonce, plaintext, aad)
    enc = envelope.format_enc(
        envelope.EncValue(alg=envelope.ALG, data=sealed[:-16], iv=nonce, tag=sealed[-16:], type=vtype)  # type: ignore[arg-type]
    )
    del plaintext
    with pytest.raises(SecretsError, match="plaintext is not a valid") as info:
        envelope.open_value(dek, target="prod", path="m$.p", enc=enc)
    assert canary not in _reachable_text(info.value)
