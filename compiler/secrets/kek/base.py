"""The key-provider interface: wrap and unwrap a target's data key (docs/bundle-format.md).

A provider is built from a :class:`KekSpec`: a plain value, so the runtime
tier builds providers without llmcc.yaml's models (``KeySpec.kek()`` of
compiler/project.py converts one; a bundle's ``encryption.kek`` block names
another, compiler/secrets/bundlekek.py). Only ``SecretsError`` escapes a
provider (STYLE R6): foreign exceptions are wrapped where they enter.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Protocol

from compiler.errors import SecretsError
from compiler.jsontypes import JSONObject, JSONValue
from compiler.suggestions import unknown_field


@dataclass(frozen=True, slots=True, kw_only=True)
class KekSpec:
    """One key-encryption key: which provider, and what it needs to reach the key.

    ``provider`` is ``age``, ``awskms`` or ``vault-transit`` (an unknown one is
    refused when a provider is built); ``recipients`` are age public keys;
    ``key_id`` the KMS key ARN/alias or the transit key name; ``region`` and
    ``endpoint_url`` (KMS) and ``address`` and ``mount`` (Vault) override the
    environment's defaults (docs/manifest.md, ``keys``).
    """

    provider: str = "age"
    recipients: tuple[str, ...] = ()
    key_id: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    address: str | None = None
    mount: str = "transit"


@dataclass(frozen=True, slots=True, kw_only=True)
class WrappedKey:
    """A data key encrypted for one key-encryption key. Ciphertext only: safe to show and store.

    ``key_id`` names the KEK: for ``age`` the sorted recipients joined by ``,``,
    for ``awskms`` the key ARN or alias, for ``vault-transit`` the transit key name.
    ``ciphertext`` is standard padded base64 of the provider's bytes.
    """

    provider: str
    key_id: str
    ciphertext: str

    def __post_init__(self) -> None:
        if not self.provider or not self.key_id:
            raise SecretsError("a wrapped key needs a provider and a key_id")
        try:
            raw = base64.b64decode(self.ciphertext, validate=True)
        except binascii.Error as e:
            raise SecretsError(f"wrapped key for {self.key_id}: ciphertext is not base64") from e
        if not raw:
            raise SecretsError(f"wrapped key for {self.key_id}: ciphertext is empty")

    def raw(self) -> bytes:
        return base64.b64decode(self.ciphertext, validate=True)

    def to_json(self) -> JSONObject:
        return {"provider": self.provider, "key_id": self.key_id, "ciphertext": self.ciphertext}

    @classmethod
    def from_json(cls, value: JSONValue, *, where: str = "wrapped key") -> WrappedKey:
        """Read ``{"provider", "key_id", "ciphertext"}``.

        Raises:
            SecretsError: a missing, extra or non-string field.
        """
        if not isinstance(value, dict):
            raise SecretsError(f"{where}: must be a mapping with provider, key_id and ciphertext")
        fields = ("provider", "key_id", "ciphertext")
        extra = sorted(set(value) - set(fields))
        if extra:
            raise SecretsError(f"{where}: {unknown_field(extra[0], fields)}")
        out: dict[str, str] = {}
        for name in fields:
            item = value.get(name)
            if not isinstance(item, str) or not item:
                raise SecretsError(f"{where}: {name} must be a non-empty string")
            out[name] = item
        try:
            return cls(**out)
        except SecretsError as e:
            raise SecretsError(f"{where}: {e}") from e

    @classmethod
    def of(cls, provider: str, key_id: str, raw: bytes) -> WrappedKey:
        return cls(provider=provider, key_id=key_id, ciphertext=base64.b64encode(raw).decode("ascii"))


class KeyProvider(Protocol):
    """Wraps data keys for one key-encryption key, and unwraps them with the caller's credentials."""

    @property
    def name(self) -> str:
        """The provider name of llmcc.yaml (``age``, ``awskms``, ``vault-transit``)."""
        ...

    @property
    def key_id(self) -> str:
        """The key id this provider wraps for (see ``WrappedKey.key_id``)."""
        ...

    def wrap(self, dek: bytes) -> WrappedKey:
        """Encrypt ``dek`` for this KEK.

        Raises:
            SecretsError: the KEK refused or could not be reached.
        """
        ...

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """Decrypt a wrapped data key with the caller's credentials.

        Raises:
            SecretsError: another provider's key, no credentials, or the wrong ones.
        """
        ...


def check_provider(wrapped: WrappedKey, name: str) -> None:
    if wrapped.provider != name:
        raise SecretsError(f"the data key is wrapped by provider {wrapped.provider!r} ({wrapped.key_id}), not {name!r}")


def check_unwrapped(dek: bytes, wrapped: WrappedKey) -> bytes:
    from compiler.secrets.envelope import DEK_BYTES  # the AEAD stack, once there is a key to open

    if len(dek) != DEK_BYTES:
        raise SecretsError(f"the data key unwrapped by {wrapped.provider} ({wrapped.key_id}) is not {DEK_BYTES} bytes")
    return dek
