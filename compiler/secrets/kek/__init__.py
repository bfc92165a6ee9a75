"""Key-encryption-key providers, chosen by name from an explicit table (STYLE R8).

``provider_for(spec, identities)`` builds the provider for one ``KekSpec``: of
llmcc.yaml (``Project.key_spec(target).kek()`` or ``keys.compiler``), or named by
a bundle (compiler/secrets/bundlekek.py). Providers read their credentials from
the process environment here, at the IO edge.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from compiler.errors import SecretsError
from compiler.extras import AWS_PACKAGES, VAULT_PACKAGES, is_missing, needs_extra
from compiler.secrets.identity import Identities
from compiler.secrets.kek.age import AgeKeyProvider, age_key_id
from compiler.secrets.kek.base import KekSpec, KeyProvider, WrappedKey


def _age(spec: KekSpec, identities: Identities | None) -> KeyProvider:
    return AgeKeyProvider(spec.recipients, identities)


def _awskms(spec: KekSpec, identities: Identities | None) -> KeyProvider:
    # boto3 and hvac load only for the providers that use them: `llmcc validate` stays quick,
    # and a service installed without the kms/vault extra reads age-sealed bundles.
    try:
        from compiler.secrets.kek.awskms import AwsKmsKeyProvider, kms_endpoint, kms_region
    except ModuleNotFoundError as e:
        if not is_missing(e, AWS_PACKAGES):
            raise
        raise SecretsError(needs_extra("the awskms key provider", "kms")) from e

    return AwsKmsKeyProvider(
        spec.key_id or "",
        region=kms_region(spec.region, os.environ),
        endpoint_url=kms_endpoint(spec.endpoint_url, os.environ),
    )


def _vault_transit(spec: KekSpec, identities: Identities | None) -> KeyProvider:
    from compiler.secrets.envelope import SecretValue  # the AEAD stack, with a provider that needs it

    token = os.environ.get("VAULT_TOKEN")
    try:
        from compiler.secrets.kek.vault_transit import VaultTransitKeyProvider
    except ModuleNotFoundError as e:
        if not is_missing(e, VAULT_PACKAGES):
            raise
        raise SecretsError(needs_extra("the vault-transit key provider", "vault")) from e

    return VaultTransitKeyProvider(
        spec.key_id or "",
        address=spec.address or os.environ.get("VAULT_ADDR"),
        token=SecretValue(token.encode()) if token else None,
        mount=spec.mount,
    )


ProviderFactory = Callable[[KekSpec, Identities | None], KeyProvider]

PROVIDERS: dict[str, ProviderFactory] = {
    "age": _age,
    "awskms": _awskms,
    "vault-transit": _vault_transit,
}


def provider_for(spec: KekSpec, identities: Identities | None) -> KeyProvider:
    """The provider for one key spec.

    Raises:
        SecretsError: an unknown provider, a spec it cannot use, or a provider
            whose extra (``kms``, ``vault``) is not installed.
    """
    factory = PROVIDERS.get(spec.provider)
    if factory is None:
        raise SecretsError(f"unknown key provider {spec.provider!r}; known: {', '.join(PROVIDERS)}")
    return factory(spec, identities)


def spec_key_id(spec: KekSpec) -> str:
    """The key id a spec wraps for, without building a provider (see ``WrappedKey.key_id``)."""
    return age_key_id(spec.recipients) if spec.provider == "age" else spec.key_id or ""


__all__ = [
    "PROVIDERS",
    "AgeKeyProvider",
    "KekSpec",
    "KeyProvider",
    "ProviderFactory",
    "WrappedKey",
    "provider_for",
    "spec_key_id",
]
