"""``awskms`` key provider: AWS KMS Encrypt/Decrypt through boto3.

The region comes from the key spec, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
else ``us-east-1``; the endpoint from the key spec, else ``AWS_ENDPOINT_URL_KMS``
/ ``AWS_ENDPOINT_URL`` (any KMS-compatible server). Credentials come from the
usual boto3 chain. Every call carries the encryption context ``{"llmcc": "dek"}``,
so a KMS ciphertext made for another purpose does not unwrap here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import boto3
import botocore.config
import botocore.exceptions

from compiler.errors import SecretsError
from compiler.secrets.kek.base import WrappedKey, check_provider, check_unwrapped

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

ENCRYPTION_CONTEXT = {"llmcc": "dek"}
_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


def kms_region(spec_region: str | None, env: Mapping[str, str]) -> str:
    return spec_region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


def kms_endpoint(spec_endpoint: str | None, env: Mapping[str, str]) -> str | None:
    return spec_endpoint or env.get("AWS_ENDPOINT_URL_KMS") or env.get("AWS_ENDPOINT_URL") or None


class AwsKmsKeyProvider:
    """One KMS key. The boto3 client is made per provider, never cached module-wide (STYLE R8)."""

    name = "awskms"

    def __init__(self, key_id: str, *, region: str, endpoint_url: str | None) -> None:
        if not key_id:
            raise SecretsError("an awskms key needs key_id (a key ARN, id or alias)")
        self.key_id = key_id
        self.region = region
        self.endpoint_url = endpoint_url
        self._client: KMSClient | None = None

    def __repr__(self) -> str:
        return f"AwsKmsKeyProvider(key_id={self.key_id!r}, region={self.region!r})"

    def _kms(self) -> KMSClient:
        if self._client is None:
            config = botocore.config.Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30
            )
            try:
                self._client = boto3.client(
                    "kms", region_name=self.region, endpoint_url=self.endpoint_url, config=config
                )
            except _ERRORS as e:
                raise SecretsError(f"awskms {self.key_id}: cannot create a KMS client: {e}") from e
        return self._client

    def wrap(self, dek: bytes) -> WrappedKey:
        try:
            out = self._kms().encrypt(KeyId=self.key_id, Plaintext=dek, EncryptionContext=ENCRYPTION_CONTEXT)
        except _ERRORS as e:
            raise SecretsError(f"awskms {self.key_id}: cannot wrap the data key: {e}") from e
        return WrappedKey.of(self.name, self.key_id, out["CiphertextBlob"])

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        check_provider(wrapped, self.name)
        try:
            out = self._kms().decrypt(
                CiphertextBlob=wrapped.raw(), KeyId=wrapped.key_id, EncryptionContext=ENCRYPTION_CONTEXT
            )
        except _ERRORS as e:
            raise SecretsError(f"awskms {wrapped.key_id}: cannot unwrap the data key: {e}") from e
        return check_unwrapped(out["Plaintext"], wrapped)
