"""What the client trusts and decrypts with: the publishers' public keys, and its identity for secrets.

Built without the CLI or llmcc.yaml (a service has no config repository): the
keys come as paths or PEM bytes, the identity as an age identity file or a
:class:`~compiler.secrets.kek.base.KeyProvider`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from compiler.bundle.dsse import Keyring, PublicKey, load_public_key
from compiler.errors import LlmccError
from compiler.fileops import is_key_text
from compiler.jsontypes import JSONObject
from compiler.secrets.kek.base import KeyProvider


def load_keyring(trusted_keys: Iterable[str | os.PathLike[str] | bytes]) -> Keyring:
    """The Keyring of ``trusted_keys``: PEM file paths or PEM bytes (Ed25519 SubjectPublicKeyInfo).

    Raises:
        LlmccError: a key cannot be read or is not an Ed25519 public key, or there is none.
    """
    keys: list[PublicKey] = []
    for key in trusted_keys:
        if isinstance(key, bytes):
            keys.append(load_public_key(key, where="trusted key (PEM bytes)"))
            continue
        if is_key_text(key):
            raise LlmccError("a trusted key given as text, not a path (not shown): pass PEM bytes or the file's path")
        try:
            pem = Path(key).read_bytes()
        except OSError as e:
            raise LlmccError(f"{key}: cannot read the trusted key: {e.strerror or e}") from e
        keys.append(load_public_key(pem, where=str(key)))
    if not keys:
        raise LlmccError("no trusted keys: pass the publisher's public keys (paths or PEM bytes)")
    return Keyring(keys)


class FromEnvironment:
    """The type of :data:`FROM_ENVIRONMENT` (one instance)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FROM_ENVIRONMENT"


FROM_ENVIRONMENT = FromEnvironment()
"""``identity=FROM_ENVIRONMENT``: the provider the bundle's KEK names, credentials from the
environment, as ``llmcc pull --decrypt`` builds it: ``age`` from ``SOPS_AGE_KEY_FILE`` /
``SOPS_AGE_KEY``, ``awskms`` from the AWS chain, ``vault-transit`` from ``VAULT_ADDR`` and
``VAULT_TOKEN``. A service opts in: ``identity=None`` stays "no secrets", so a service
that reads none never calls KMS or Vault because their variables happen to be set."""

Identity = str | os.PathLike[str] | KeyProvider | FromEnvironment | None


def key_provider_factory(identity: Identity) -> Callable[[JSONObject], KeyProvider] | None:
    """How a snapshot gets its key provider: the one the bundle's KEK names, or the one given.

    Raises:
        SecretsError: an identity file cannot be read or holds no age identity.
    """
    if identity is None:
        return None
    if isinstance(identity, FromEnvironment):
        from compiler.secrets.bundlekek import bundle_key_provider
        from compiler.secrets.identity import load_identities

        # read when a version is opened, as pull --decrypt does: age identities are needed for age only
        return lambda bundle: bundle_key_provider(
            bundle, lambda name: load_identities(None, os.environ, required=name == "age")
        )
    if isinstance(identity, str | os.PathLike):
        from compiler.secrets.bundlekek import bundle_key_provider
        from compiler.secrets.identity import load_identities

        identities = load_identities(Path(identity), {}, required=True)
        return lambda bundle: bundle_key_provider(bundle, lambda _name: identities)
    provider = identity
    return lambda _bundle: provider
