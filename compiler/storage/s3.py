"""``s3://BUCKET/PREFIX``: objects ``PREFIX/<target>/<version:08d>.dsse.json`` on any S3 endpoint.

Deltas (compiler/delta.py): ``PREFIX/.llmcc-deltas/<target>/<version:08d>.delta.json``,
created like versions.

The pointer ``PREFIX/<target>/latest.dsse.json`` is replaced by a conditional
PUT (``If-Match`` the ETag of the bytes the publisher read, or
``If-None-Match: *`` for the first one): a compare-and-swap on the endpoint.

The version claim is a create-only PUT (``If-None-Match: *``): the endpoint
refuses the second writer of a key with 412, so two publishers never get the
same version and an object, once written, is never replaced (STYLE R14). An
S3 PUT is atomic: readers see the whole object or none. Endpoints that ignore
the header would silently let publishers overwrite each other, so before the
first write the store probes that the endpoint honours it, and fails closed.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import boto3
import botocore.exceptions

from compiler.delta import MAX_DELTA_BYTES
from compiler.errors import StorageError
from compiler.storage.base import (
    DELTA_DIR,
    MAX_ENVELOPE_BYTES,
    MAX_POINTER_BYTES,
    POINTER_OBJECT_NAME,
    CorruptObjectError,
    Listing,
    MissingObjectError,
    NoStoreError,
    check_target,
    delta_object_name,
    is_target,
    sort_names,
    version_object_name,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_PROBE_DIR = ".llmcc-probe"  # not a target name, so never listed as one
_CLAIM_LOST = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
_MISSING = frozenset({"NoSuchKey", "404"})
_BotoError = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class S3Store:
    """A store in an S3 bucket (AWS, MinIO, moto, ...), under an optional key prefix."""

    def __init__(
        self, bucket: str, prefix: str = "", *, url: str | None = None, endpoint_url: str | None = None
    ) -> None:
        if not bucket:
            raise StorageError(f"{url or 's3://'}: no bucket (expected s3://BUCKET/PREFIX)")
        self._bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._url = url or f"s3://{bucket}/{self._prefix}"
        self._probed = False
        try:
            # one session per store: the default session is not thread-safe
            self._s3: S3Client = boto3.session.Session().client("s3", endpoint_url=endpoint_url)
        except (*_BotoError, ValueError) as e:
            raise StorageError(f"{self._url}: cannot create an S3 client: {e}") from e

    @property
    def url(self) -> str:
        return self._url

    def targets(self) -> list[str]:
        names: list[str] = []
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._prefix, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = common.get("Prefix", "")[len(self._prefix) :].rstrip("/")
                    if is_target(name):
                        names.append(name)
        except _BotoError as e:
            raise self._failed(e, "cannot list the store") from e
        return sorted(n for n in names if self._published(n))

    @property
    def location(self) -> str:
        endpoint = self._s3.meta.endpoint_url
        return f"s3://{self._bucket}/{self._prefix}" + (f" at {endpoint}" if endpoint else "")

    def versions(self, target: str) -> list[int]:
        return list(self.listing(target).versions)

    def _published(self, target: str) -> bool:
        listing = self.listing(target)
        return bool(listing.versions or listing.pointer)

    def listing(self, target: str) -> Listing:
        prefix = f"{self._prefix}{check_target(target)}/"
        names: list[str] = []
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                names += [obj.get("Key", "")[len(prefix) :] for obj in page.get("Contents", [])]
                # "prefix/prod/x/..." is not something a target holds either
                names += [common.get("Prefix", "")[len(prefix) :] for common in page.get("CommonPrefixes", [])]
        except _BotoError as e:
            raise self._failed(e, f"cannot list {target}") from e
        return sort_names(names)

    def read(self, target: str, version: int) -> bytes:
        data = self._get(self._key(target, version), MAX_ENVELOPE_BYTES, where=f"{target} version {version}")
        if data is None:
            raise MissingObjectError(f"{self._url}: {target} has no version {version}")
        return data[0]

    def read_pointer(self, target: str) -> bytes | None:
        data = self._get(self._pointer_key(target), MAX_POINTER_BYTES, where=f"{target} pointer")
        return None if data is None else data[0]

    def read_delta(self, target: str, version: int) -> bytes | None:
        data = self._get(self._delta_key(target, version), MAX_DELTA_BYTES, where=f"{target} version {version} delta")
        return None if data is None else data[0]

    def create_delta(self, target: str, version: int, delta: bytes) -> bool:
        self._probe_conditional_writes()
        try:
            self._put_if_absent(self._delta_key(target, version), delta)
        except botocore.exceptions.ClientError as e:
            if _code(e) in _CLAIM_LOST:
                return False
            raise StorageError(f"{self._url}: cannot write the delta of {target} version {version}: {e}") from e
        except botocore.exceptions.BotoCoreError as e:
            raise StorageError(f"{self._url}: cannot write the delta of {target} version {version}: {e}") from e
        return True

    def swap_pointer(self, target: str, envelope: bytes, *, expected: bytes | None) -> bool:
        key = self._pointer_key(target)
        self._probe_conditional_writes()
        current = self._get(key, MAX_POINTER_BYTES, where=f"{target} pointer")
        if (current[0] if current else None) != expected:
            return False
        # Race: another publisher moves the pointer between our GET and PUT. The
        # endpoint applies If-Match / If-None-Match atomically: the later PUT gets 412.
        try:
            if current is None:
                self._put_if_absent(key, envelope)
            else:
                self._s3.put_object(
                    Bucket=self._bucket, Key=key, Body=envelope, IfMatch=current[1], ContentType="application/json"
                )
        except botocore.exceptions.ClientError as e:
            if _code(e) in _CLAIM_LOST or _code(e) in _MISSING:
                return False
            raise StorageError(f"{self._url}: cannot write the pointer of {target}: {e}") from e
        except botocore.exceptions.BotoCoreError as e:
            raise StorageError(f"{self._url}: cannot write the pointer of {target}: {e}") from e
        return True

    def _get(self, key: str, limit: int, *, where: str) -> tuple[bytes, str] | None:
        """(bytes, ETag) of ``key``, None if absent; refused unread when over ``limit`` bytes."""
        try:
            reply = self._s3.get_object(Bucket=self._bucket, Key=key)
            body = reply["Body"]
            try:
                size = reply.get("ContentLength", 0)
                if size > limit:
                    raise CorruptObjectError(
                        f"{self._url}: {where}: is {size} bytes, more than the {limit} a reader accepts"
                    )
                data = body.read(limit + 1)
            finally:
                body.close()
        except botocore.exceptions.ClientError as e:
            if _code(e) in _MISSING:
                return None
            raise self._failed(e, f"cannot read {where}") from e
        except botocore.exceptions.BotoCoreError as e:
            raise StorageError(f"{self._url}: cannot read {where}: {e}") from e
        if len(data) > limit:
            raise CorruptObjectError(f"{self._url}: {where}: is more than the {limit} bytes a reader accepts")
        return data, str(reply.get("ETag", ""))

    def create(self, target: str, version: int, envelope: bytes, *, previous: bytes | None = None) -> bool:
        """Create-only PUT. False also covers S3's 409 ConditionalRequestConflict
        (a concurrent conditional write on the key): the caller re-reads and retries.
        ``previous`` needs no check: a version, once written, never changes."""
        key = self._key(target, version)
        self._probe_conditional_writes()
        try:
            # Race: two publishers PUT the same version key at once. With
            # If-None-Match: * the endpoint stores exactly one; the other gets 412.
            self._put_if_absent(key, envelope)
        except botocore.exceptions.ClientError as e:
            if _code(e) in _CLAIM_LOST:
                return False
            raise self._failed(e, f"cannot write {target} version {version}") from e
        except botocore.exceptions.BotoCoreError as e:
            raise StorageError(f"{self._url}: cannot write {target} version {version}: {e}") from e
        return True

    def _failed(self, e: Exception, doing: str) -> StorageError:
        """The error for ``e``: one line naming the bucket when it does not exist, else ``doing: e``."""
        if isinstance(e, botocore.exceptions.ClientError) and _code(e) == "NoSuchBucket":
            # not "nothing published": a mistyped or deleted bucket is a store that is not there
            return NoStoreError(f"{self._url}: no such bucket {self._bucket} (the bucket does not exist)")
        return StorageError(f"{self._url}: {doing}: {e}")

    def _key(self, target: str, version: int) -> str:
        return f"{self._prefix}{check_target(target)}/{version_object_name(version)}"

    def _delta_key(self, target: str, version: int) -> str:
        return f"{self._prefix}{DELTA_DIR}/{check_target(target)}/{delta_object_name(version)}"

    def _pointer_key(self, target: str) -> str:
        return f"{self._prefix}{check_target(target)}/{POINTER_OBJECT_NAME}"

    def _put_if_absent(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json")

    def _probe_conditional_writes(self) -> None:
        """Fail closed unless a second create-only PUT of one key is refused with 412."""
        if self._probed:
            return
        key = f"{self._prefix}{_PROBE_DIR}/{os.urandom(16).hex()}"
        refusal = (
            f"{self._url}: the endpoint does not honour conditional writes (If-None-Match: *); "
            "refusing to publish, since concurrent publishers could overwrite each other"
        )
        try:
            try:
                self._put_if_absent(key, b"probe")
            except botocore.exceptions.ClientError as e:
                if _code(e) in {"NotImplemented", "501"}:
                    raise StorageError(f"{refusal}: {e}") from e
                raise
            try:
                self._put_if_absent(key, b"probe")
            except botocore.exceptions.ClientError as e:
                if _code(e) not in {"PreconditionFailed", "412"}:
                    raise StorageError(f"{refusal}: {e}") from e
            else:
                raise StorageError(refusal)
        except _BotoError as e:
            raise self._failed(e, f"cannot write the conditional-write probe {key}") from e
        finally:
            with contextlib.suppress(*_BotoError):
                self._s3.delete_object(Bucket=self._bucket, Key=key)
        self._probed = True


def _code(e: botocore.exceptions.ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))
