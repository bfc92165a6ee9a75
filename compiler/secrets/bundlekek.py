"""The key provider a published bundle names: the reader side of envelope encryption.

A bundle's ``encryption.kek`` block names its KEK (``{"provider", "key_id"}``;
docs/bundle-format.md). Readers (``pull --decrypt``, the runtime client) build
the provider from that block alone, never from ``llmcc.yaml``: a service has no
config repository, and loads none of its models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from compiler.errors import SecretsError
from compiler.jsontypes import JSONValue
from compiler.secrets.identity import Identities
from compiler.secrets.kek import PROVIDERS, provider_for
from compiler.secrets.kek.base import KekSpec, KeyProvider


def bundle_key_provider(bundle: Mapping[str, JSONValue], identities: Callable[[str], Identities | None]) -> KeyProvider:
    """The provider that unwraps ``bundle``'s data key.

    ``identities(provider_name)`` is called once, for the provider the bundle
    names (age needs identities; KMS and Vault read their credentials from the
    environment and may get None).

    Raises:
        SecretsError: the bundle has no encryption block, or names no known KEK.
    """
    encryption = bundle.get("encryption")
    if not isinstance(encryption, dict):
        raise SecretsError("bundle has no encryption block")
    kek = encryption.get("kek")
    provider = kek.get("provider") if isinstance(kek, dict) else None
    key_id = kek.get("key_id") if isinstance(kek, dict) else None
    if not isinstance(provider, str) or provider not in PROVIDERS or not isinstance(key_id, str) or not key_id:
        raise SecretsError("encryption.kek names no known key")
    # the bundle names its KEK: age key ids are the recipients joined by ","
    spec = (
        KekSpec(provider=provider, recipients=tuple(key_id.split(",")))
        if provider == "age"
        else KekSpec(provider=provider, key_id=key_id)
    )
    return provider_for(spec, identities(provider))
