"""``age`` key provider (the default): local X25519 recipients via pyrage."""

from __future__ import annotations

import pyrage

from compiler.errors import SecretsError
from compiler.secrets.identity import Identities
from compiler.secrets.kek.base import WrappedKey, check_provider, check_unwrapped


def age_key_id(recipients: list[str]) -> str:
    """The key id of a set of recipients: sorted, de-duplicated, joined by ``,``."""
    return ",".join(sorted(set(recipients)))


class AgeKeyProvider:
    """Wraps for every recipient (any one of them can unwrap); unwraps with the caller's identities."""

    name = "age"

    def __init__(self, recipients: list[str], identities: Identities | None = None) -> None:
        """Parse the recipients.

        Raises:
            SecretsError: no recipient, or one that is not an ``age1...`` X25519 recipient.
        """
        if not recipients:
            raise SecretsError("an age key needs at least one recipient")
        self._recipients: list[pyrage.x25519.Recipient] = []
        for r in sorted(set(recipients)):
            if r.upper().startswith("AGE-SECRET-KEY-"):
                # never echo it: a private identity pasted where a recipient belongs
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
