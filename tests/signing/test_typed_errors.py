"""Errors carry their kind as a type, not in their words (issue 14 §5).

``verify`` and ``dsse`` told "not canonical" from "not valid JSON" by
comparing the message text; the project and policy loaders recognised a
pydantic pattern error by the start of pydantic's English message.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from compiler.bundle.canonical import InvalidJsonError, NotCanonicalError, loads_canonical
from compiler.bundle.dsse import sign_envelope, verify_envelope
from compiler.errors import VerificationError
from compiler.fields import pattern_mismatch
from compiler.verify import verify_chain
from tests.storage._support import keyring_of, new_keypair


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b'{"a": 1}', NotCanonicalError),
        (b'{"a":1e-400}', NotCanonicalError),
        (b'{"a":1,"a":1}', InvalidJsonError),
        (b"\xff", InvalidJsonError),
        (b'{"a":NaN}', InvalidJsonError),
    ],
)
def test_loads_canonical_raises_a_typed_error(data: bytes, kind: type[ValueError]) -> None:
    with pytest.raises(kind) as info:
        loads_canonical(data)
    assert isinstance(info.value, ValueError)  # callers that catch ValueError still do


def test_verification_keeps_the_typed_cause() -> None:
    pair = new_keypair()
    keyring = keyring_of(pair.signer)
    with pytest.raises(VerificationError, match="signed payload is not canonical JSON") as info:
        verify_chain("prod", [(1, sign_envelope(b'{"kind": "Bundle"}', pair.signer))], keyring)
    assert isinstance(info.value.__cause__, NotCanonicalError)
    with pytest.raises(VerificationError, match="envelope is not in canonical JSON form") as info:
        verify_envelope(b'{"payload": ""}', keyring, where="x")
    assert isinstance(info.value.__cause__, NotCanonicalError)
    assert info.value.reason == "signature"
    with pytest.raises(VerificationError, match="envelope is not valid JSON") as info:
        verify_envelope(b"{", keyring, where="x")
    assert isinstance(info.value.__cause__, InvalidJsonError)


class _Named(BaseModel):
    name: str = Field(pattern=r"^[a-z]+$")
    size: int = 0


def test_a_pattern_error_is_known_by_its_type() -> None:
    with pytest.raises(PydanticValidationError) as info:
        _Named.model_validate({"name": "Nope", "size": "x"})
    assert pattern_mismatch(info.value, ("name",))
    assert not pattern_mismatch(info.value, ("size",))
