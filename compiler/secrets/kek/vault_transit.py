"""``vault-transit`` key provider: HashiCorp Vault / OpenBao transit engine through hvac.

The address comes from the key spec, else ``VAULT_ADDR``; the token from
``VAULT_TOKEN``. The token is a credential: it never appears in a repr or an
error. ``WrappedKey.ciphertext`` is base64 of transit's ``vault:v1:...`` text.
"""

from __future__ import annotations

import base64
import binascii

import hvac
import hvac.exceptions
import requests

from compiler.errors import SecretsError
from compiler.secrets.envelope import SecretValue
from compiler.secrets.kek.base import WrappedKey, check_provider, check_unwrapped

_ERRORS = (hvac.exceptions.VaultError, requests.exceptions.RequestException)


class VaultTransitKeyProvider:
    """One transit key, ``key_id`` being its name under ``mount``."""

    name = "vault-transit"

    def __init__(self, key_id: str, *, address: str | None, token: SecretValue | None, mount: str) -> None:
        if not key_id:
            raise SecretsError("a vault-transit key needs key_id (the transit key name)")
        self.key_id = key_id
        self.address = address
        self.mount = mount
        self._token = token

    def __repr__(self) -> str:
        return f"VaultTransitKeyProvider(key_id={self.key_id!r}, address={self.address!r}, mount={self.mount!r})"

    def _client(self) -> hvac.Client:
        if not self.address:
            raise SecretsError(f"vault-transit {self.key_id}: no Vault address: set VAULT_ADDR or keys.*.address")
        if self._token is None:
            raise SecretsError(f"vault-transit {self.key_id}: no Vault token: set VAULT_TOKEN")
        return hvac.Client(url=self.address, token=self._token.reveal().decode(), timeout=30)

    def wrap(self, dek: bytes) -> WrappedKey:
        client = self._client()
        try:
            out = client.secrets.transit.encrypt_data(
                name=self.key_id, plaintext=base64.b64encode(dek).decode("ascii"), mount_point=self.mount
            )
            ciphertext = out["data"]["ciphertext"]
        except _ERRORS as e:
            raise SecretsError(f"vault-transit {self.mount}/{self.key_id}: cannot wrap the data key: {e}") from e
        except (KeyError, TypeError) as e:
            raise SecretsError(f"vault-transit {self.mount}/{self.key_id}: unexpected encrypt response") from e
        return WrappedKey.of(self.name, self.key_id, str(ciphertext).encode("utf-8"))

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        check_provider(wrapped, self.name)
        client = self._client()
        try:
            ciphertext = wrapped.raw().decode("utf-8")
            out = client.secrets.transit.decrypt_data(
                name=wrapped.key_id, ciphertext=ciphertext, mount_point=self.mount
            )
            dek = base64.b64decode(out["data"]["plaintext"], validate=True)
        except _ERRORS as e:
            raise SecretsError(f"vault-transit {self.mount}/{wrapped.key_id}: cannot unwrap the data key: {e}") from e
        except (KeyError, TypeError, UnicodeDecodeError, binascii.Error) as e:
            raise SecretsError(f"vault-transit {self.mount}/{wrapped.key_id}: unexpected decrypt response") from e
        return check_unwrapped(dek, wrapped)
