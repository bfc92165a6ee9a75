"""``age`` key provider (the default): local X25519 recipients via pyrage."""

from __future__ import annotations

from collections.abc import Sequence

import pyrage

from compiler.errors import SecretsError
from compiler.secrets.identity import Identities
from compiler.secrets.kek.base import WrappedKey, check_provider, check_unwrapped


def age_key_id(recipients: Sequence[str]) -> str:
    """The key id of a set of recipients: sorted, de-duplicated, joined by ``,``."""
    return ",".join(sorted(set(recipients)))


_HEADER = b"age-encryption.org/v1"
_PRIVATE_MARKS = ("AGE-SECRET-KEY-", "PRIVATE KEY")
PRIVATE_SHOWN = "<private key material, not shown>"


def holds_private_key(text: str) -> bool:
    """Whether ``text`` (a recipient or key id from a file) holds private key material anywhere in it.

    An age identity (``AGE-SECRET-KEY-1...``, any case) or a PEM private key
    pasted where a public key belongs; such text is never echoed.
    """
    upper = text.upper()
    return any(mark in upper for mark in _PRIVATE_MARKS)


def shown_key(text: str) -> str:
    """``text`` as a message may show it: itself, or ``PRIVATE_SHOWN`` when it holds private key material."""
    return PRIVATE_SHOWN if holds_private_key(text) else text


def age_stanza_types(raw: bytes) -> list[str] | None:
    """The stanza types in an age v1 header (``X25519``, ``ssh-ed25519``, grease...); None when not age v1.

    Format: https://age-encryption.org/v1 (a version line, ``-> TYPE ARGS``
    stanzas with base64 bodies, then ``--- MAC``); a body line never starts with ``->``.
    """
    head, sep, _ = raw.partition(b"\n---")
    lines = head.split(b"\n")
    if not sep or lines[0] != _HEADER:
        return None
    return [line[3:].split(b" ", 1)[0].decode("ascii", "replace") for line in lines[1:] if line.startswith(b"-> ")]


def unnamed_readers(wrapped: WrappedKey) -> list[str]:
    """Why an age wrap may open to readers its ``key_id`` does not name ([] when it cannot).

    Recipients are not visible in an age file, but stanzas are counted: one
    ``X25519`` stanza per named recipient and none of another kind (rage adds
    one ``<junk>-grease`` stanza that no identity opens, per the age spec).
    """
    types = age_stanza_types(wrapped.raw())
    if types is None:
        return ["the wrap is not an age file"]
    other = sorted({t for t in types if t != "X25519" and not t.endswith("-grease")})
    problems = [f"the wrap also opens to an unnamed {t} reader" for t in other]
    named = len([r for r in wrapped.key_id.split(",") if r])
    found = types.count("X25519")
    if found != named:
        problems.append(f"the wrap is for {found} age recipients but names {named}")
    return problems


class AgeKeyProvider:
    """Wraps for every recipient (any one of them can unwrap); unwraps with the caller's identities."""

    name = "age"

    def __init__(self, recipients: Sequence[str], identities: Identities | None = None) -> None:
        """Parse the recipients.

        Raises:
            SecretsError: no recipient, or one that is not an ``age1...`` X25519 recipient.
        """
        if not recipients:
            raise SecretsError("an age key needs at least one recipient")
        self._recipients: list[pyrage.x25519.Recipient] = []
        for r in sorted(set(recipients)):
            if holds_private_key(r):
                # never echo it: a private identity pasted where a recipient belongs, even with a prefix
                raise SecretsError("a recipient is a private age identity (AGE-SECRET-KEY-...); list age1... keys")
            try:
                self._recipients.append(pyrage.x25519.Recipient.from_str(r))
            except pyrage.RecipientError as e:
                raise SecretsError(f"{r!r} is not an age recipient (age1...): {e}") from e
        self.key_id = age_key_id(recipients)
        self._identities = identities

    def __repr__(self) -> str:
        return f"AgeKeyProvider(key_id={self.key_id!r})"

    def wrap(self, dek: bytes) -> WrappedKey:
        try:
            raw = pyrage.encrypt(dek, self._recipients)
        except pyrage.EncryptError as e:
            raise SecretsError(f"age: cannot wrap the data key for {self.key_id}: {e}") from e
        return WrappedKey.of(self.name, self.key_id, raw)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        check_provider(wrapped, self.name)
        if self._identities is None:
            raise SecretsError(f"no age identity to unwrap the data key for {wrapped.key_id}")
        identities = self._identities.age_identities()
        try:
            dek = pyrage.decrypt(wrapped.raw(), identities)
        except pyrage.DecryptError as e:
            raise SecretsError(
                f"age: none of the identities ({', '.join(self._identities.sources) or 'given'}) "
                f"can unwrap the data key; it is wrapped for {wrapped.key_id}"
            ) from e
        return check_unwrapped(dek, wrapped)
