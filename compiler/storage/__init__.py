"""Storage backends, chosen by URL scheme from an explicit table (docs/store-layout.md, STYLE R8)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from compiler.errors import StorageError
from compiler.extras import AWS_PACKAGES, is_missing, needs_extra
from compiler.storage.base import CorruptObjectError, Store
from compiler.storage.file import FileStore

__all__ = ["BACKENDS", "CorruptObjectError", "Store", "open_store"]


def _open_file(url: str, rest: str, root: Path, endpoint_url: str | None) -> Store:
    if not rest:
        raise StorageError(f"{url}: no path (expected file://PATH or file:///ABSOLUTE/PATH)")
    path = Path(rest)
    return FileStore(path if path.is_absolute() else root / path, url=url)


def _open_s3(url: str, rest: str, root: Path, endpoint_url: str | None) -> Store:
    try:
        from compiler.storage.s3 import S3Store
    except ModuleNotFoundError as e:
        if not is_missing(e, AWS_PACKAGES):
            raise
        raise StorageError(f"{url}: {needs_extra('an s3:// store', 's3')}") from e

    bucket, _, prefix = rest.partition("/")
    if endpoint_url and "@" in endpoint_url.partition("://")[2].partition("/")[0]:
        # never echo it: the part before "@" is a key or password
        raise StorageError("--endpoint-url cannot hold credentials: AWS credentials come from the environment")
    return S3Store(bucket, prefix, url=url, endpoint_url=endpoint_url)


def _open_oci(url: str, rest: str, root: Path, endpoint_url: str | None) -> Store:
    from compiler.storage.oci import OciStore

    registry, _, repository = rest.partition("/")
    return OciStore(registry, repository.strip("/"), url=url)


# scheme -> opener(url, everything after "scheme://", repository root, S3 endpoint)
BACKENDS: dict[str, Callable[[str, str, Path, str | None], Store]] = {
    "file": _open_file,
    "s3": _open_s3,
    "oci": _open_oci,
}


def open_store(url: str, *, root: Path, endpoint_url: str | None = None) -> Store:
    """The store at ``url``: ``file://PATH``, ``s3://BUCKET/PREFIX`` or ``oci://REGISTRY/REPO``.

    ``file://.llmcc/store`` is relative to ``root`` (the config repository);
    ``file:///srv/store`` is absolute. ``endpoint_url`` is for S3-compatible
    endpoints (MinIO, moto, ...); other backends ignore it.

    Raises:
        StorageError: unknown scheme or malformed URL, or an ``s3://`` URL
            in an install without the ``s3`` extra (boto3).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in BACKENDS:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise StorageError(f"{url}: unknown store (expected one of {known})")
    return BACKENDS[scheme](url, rest, root, endpoint_url)
