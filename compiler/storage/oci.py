"""``oci://REGISTRY/REPOSITORY``: each version is an OCI artifact, tagged ``<env>[.<tenant>].vNNNNNNNN``.

An artifact is a manifest (``artifactType`` :data:`ARTIFACT_TYPE`, the empty
config) whose single layer is the DSSE envelope. Reads resolve the tag to a
manifest digest, then fetch the manifest and the layer BY DIGEST and check
both: the tag is only a hint to find the digest.

The version claim (STYLE R14). Registries have no compare-and-swap on tags, so
a PUT of an existing tag silently replaces it. We claim version N like this:

1. upload the blobs first, so steps 4-5 are two quick requests;
2. take a local advisory lock (``flock``) per registry, repository and target,
   so publishers on one machine never race at all;
3. make sure version N-1, which the new bundle links to, has settled: its tag
   is unchanged across ``settle_seconds`` and holds exactly the envelope we
   linked to (else return False: the publisher re-reads and relinks);
4. HEAD the tag of N: if it exists, the version is taken (return False);
5. PUT the manifest under the tag; if steps 4-5 took longer than
   ``settle_seconds``, raise instead of reporting success (see below);
6. wait ``settle_seconds``, HEAD the tag again: ours -> True, else False.

Across machines, two publishers can both pass step 4 and both PUT; the later
PUT wins the tag. Step 6 makes the earlier one notice, unless the later PUT
lands more than ``settle_seconds`` after the earlier one; but then the later
one took more than ``settle_seconds`` between its steps 4 and 5, so it raises.
So no publisher reports success for a version that is later replaced, and no
publisher links to a version that is later replaced (step 3), provided the
registry is read-after-write consistent on tags. Limits: a reader can see a
version during its settle window that a concurrent claim then replaces (both
are validly signed and correctly linked); a publisher that stalls between
steps 4 and 5 may replace a settled version, and then exits non-zero telling
the user to run ``llmcc verify``.

Deltas (compiler/delta.py) are artifacts tagged ``_delta.<env>[.<tenant>].vNNNNNNNN``
(artifactType and layer :data:`DELTA_ARTIFACT_TYPE`): no target name starts
with ``_``, so they are outside every target's tags.

The signed pointer is the artifact tagged ``<env>[.<tenant>].latest``
(artifactType :data:`POINTER_ARTIFACT_TYPE`). It is swapped under the same
local lock, after checking it still holds what the publisher read; across
machines, two swaps can interleave (no compare-and-swap on tags), and the
publisher then finds the other's pointer on its re-check and says so.

Reads are bounded: a manifest's layer size is checked against the limit
before the blob is fetched, and every response body is read with a cap.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from compiler.bundle.canonical import canonical_json
from compiler.delta import MAX_DELTA_BYTES
from compiler.errors import StorageError
from compiler.jsontypes import JSONObject
from compiler.storage._registry import OCI_MANIFEST, RegistryClient
from compiler.storage.base import (
    MAX_ENVELOPE_BYTES,
    MAX_POINTER_BYTES,
    CorruptObjectError,
    Listing,
    MissingObjectError,
    check_target,
    check_version,
    is_target,
)

ARTIFACT_TYPE = "application/vnd.llmcc.bundle.v1+json"
POINTER_ARTIFACT_TYPE = "application/vnd.llmcc.pointer.v1+json"
# Deltas (compiler/delta.py): artifact and layer type, and a tag prefix that no
# target name can start with, so a reader from before deltas never lists them.
DELTA_ARTIFACT_TYPE = "application/vnd.llmcc.delta.v1+json"
_DELTA_TAG_PREFIX = "_delta."
_POINTER_TAG_SUFFIX = ".latest"
ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
_EMPTY_CONFIG = b"{}"
_EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
# Environment and tenant names never contain ".", so the mapping is one-to-one.
_TAG = re.compile(r"([a-z][a-z0-9_-]*)(?:\.([a-z][a-z0-9_-]*))?\.v([0-9]{8,})")
_LOCK_WAIT_SECONDS = 120.0


def tag_for(target: str, version: int) -> str:
    """``prod@acme``, 3 -> ``prod.acme.v00000003`` (OCI tags cannot hold ``@``)."""
    tag = f"{check_target(target).replace('@', '.')}.v{check_version(version):08d}"
    if len(tag) > 128:
        raise StorageError(f"{target}: name too long for an OCI tag (at most 128 characters)")
    return tag


def delta_tag_for(target: str, version: int) -> str | None:
    """``prod@acme``, 3 -> ``_delta.prod.acme.v00000003``; None when over 128 characters (no delta)."""
    tag = _DELTA_TAG_PREFIX + tag_for(target, version)
    return tag if len(tag) <= 128 else None


def pointer_tag_for(target: str) -> str:
    """``prod@acme`` -> ``prod.acme.latest``."""
    return check_target(target).replace("@", ".") + _POINTER_TAG_SUFFIX


def sort_tags(target: str, tags: list[str]) -> Listing:
    """The :class:`Listing` of ``target`` among a repository's tags.

    A tag is in the target's prefix when it starts with ``<env>[.<tenant>].``;
    for an environment target, the versions and pointers of its tenant
    targets (``prod.acme.v00000001``, ``prod.acme.latest``) are not its own and
    are skipped. Everything else in the prefix is a stray.
    """
    base = check_target(target).replace("@", ".") + "."
    versions: list[int] = []
    strays: list[str] = []
    pointer = False
    for tag in tags:
        if not tag.startswith(base):
            continue
        parsed = parse_tag(tag)
        if parsed is not None and parsed[0] == target:
            versions.append(parsed[1])
        elif tag == pointer_tag_for(target):
            pointer = True
        elif not _belongs_to_tenant(target, tag, parsed):
            strays.append(tag)
    return Listing(versions=tuple(sorted(versions)), pointer=pointer, strays=tuple(sorted(strays)))


def _belongs_to_tenant(target: str, tag: str, parsed: tuple[str, int] | None) -> bool:
    if "@" in target:
        return False
    if parsed is not None:
        return parsed[0].startswith(target + "@")
    tenant = tag[len(target) + 1 :].removesuffix(_POINTER_TAG_SUFFIX)
    return tag.endswith(_POINTER_TAG_SUFFIX) and is_target(f"{target}@{tenant}")


def parse_tag(tag: str) -> tuple[str, int] | None:
    """The (target, version) a tag denotes, or None for foreign tags."""
    m = _TAG.fullmatch(tag)
    if m is None:
        return None
    env, tenant, digits = m.groups()
    target = f"{env}@{tenant}" if tenant else env
    version = int(digits)
    if version < 1 or f"{version:08d}" != digits:
        return None
    return target, version


class OciStore:
    """A store in one repository of an OCI distribution registry."""

    def __init__(
        self,
        registry: str,
        repository: str,
        *,
        url: str | None = None,
        lock_dir: Path | None = None,
        settle_seconds: float = 1.0,
    ) -> None:
        self._url = url or f"oci://{registry}/{repository}"
        self._client = RegistryClient(registry, repository, where=self._url)
        self._lock_dir = lock_dir or _default_lock_dir()
        self._settle = settle_seconds
        # (target, version, envelope digest) known final: confirmed by our own claim or a settle wait
        self._final: set[tuple[str, int, str]] = set()

    @property
    def url(self) -> str:
        return self._url

    @property
    def location(self) -> str:
        return self._url

    def targets(self) -> list[str]:
        found: set[str] = set()
        for tag in self._client.tags():
            parsed = parse_tag(tag)
            pointed = tag.removesuffix(_POINTER_TAG_SUFFIX).replace(".", "@", 1)
            if parsed is not None:
                found.add(parsed[0])
            elif tag.endswith(_POINTER_TAG_SUFFIX) and is_target(pointed):
                found.add(pointed)
        return sorted(found)

    def versions(self, target: str) -> list[int]:
        check_target(target)
        return sorted(v for t, v in filter(None, map(parse_tag, self._client.tags())) if t == target)

    def listing(self, target: str) -> Listing:
        return sort_tags(target, self._client.tags())

    def read(self, target: str, version: int) -> bytes:
        data = self._read_artifact(
            tag_for(target, version), ARTIFACT_TYPE, MAX_ENVELOPE_BYTES, f"{target} version {version}"
        )
        if data is None:
            raise MissingObjectError(f"{self._url}: {target} has no version {version}")
        return data

    def read_pointer(self, target: str) -> bytes | None:
        return self._read_artifact(
            pointer_tag_for(target), POINTER_ARTIFACT_TYPE, MAX_POINTER_BYTES, f"{target} pointer"
        )

    def swap_pointer(self, target: str, envelope: bytes, *, expected: bytes | None) -> bool:
        tag = pointer_tag_for(target)
        config_digest = self._client.put_blob(_EMPTY_CONFIG)
        layer_digest = self._client.put_blob(envelope)
        manifest = _build_manifest(
            target, None, config_digest, layer_digest, len(envelope), artifact_type=POINTER_ARTIFACT_TYPE
        )
        with self._lock(target):
            # Race: publishers on this machine are serialised by the lock; the check
            # below catches a pointer moved by another machine since we read it.
            if self.read_pointer(target) != expected:
                return False
            self._client.put_manifest(tag, manifest)
            return self._client.manifest_digest(tag) == "sha256:" + hashlib.sha256(manifest).hexdigest()

    def read_delta(self, target: str, version: int) -> bytes | None:
        tag = delta_tag_for(target, version)
        if tag is None:
            return None
        return self._read_artifact(
            tag,
            DELTA_ARTIFACT_TYPE,
            MAX_DELTA_BYTES,
            f"{target} version {version} delta",
            layer_type=DELTA_ARTIFACT_TYPE,
        )

    def create_delta(self, target: str, version: int, delta: bytes) -> bool:
        tag = delta_tag_for(target, version)
        if tag is None:
            return False
        config_digest = self._client.put_blob(_EMPTY_CONFIG)
        layer_digest = self._client.put_blob(delta)
        manifest = _build_manifest(
            target,
            version,
            config_digest,
            layer_digest,
            len(delta),
            artifact_type=DELTA_ARTIFACT_TYPE,
            layer_type=DELTA_ARTIFACT_TYPE,
        )
        with self._lock(target):
            # Create-only across this machine; a delta is never trusted, so a concurrent
            # overwrite from another machine costs readers only a fallback to the full version.
            if self._client.manifest_digest(tag) is not None:
                return False
            self._client.put_manifest(tag, manifest)
            return True

    def _read_artifact(
        self, tag: str, artifact_type: str, limit: int, what: str, *, layer_type: str = ENVELOPE_MEDIA_TYPE
    ) -> bytes | None:
        where = f"{self._url}: {what}"
        digest = self._client.manifest_digest(tag)
        if digest is None:
            return None
        layer_digest, size = _envelope_layer(
            self._client.get_manifest(digest), where=where, artifact_type=artifact_type, layer_type=layer_type
        )
        if size > limit:  # the manifest says how big the blob is: refuse it before fetching it
            raise CorruptObjectError(f"{where}: is {size} bytes, more than the {limit} a reader accepts")
        return self._client.get_blob(layer_digest, size)

    def create(self, target: str, version: int, envelope: bytes, *, previous: bytes | None = None) -> bool:
        tag = tag_for(target, version)
        config_digest = self._client.put_blob(_EMPTY_CONFIG)
        layer_digest = self._client.put_blob(envelope)
        manifest = _build_manifest(target, version, config_digest, layer_digest, len(envelope))
        ours = "sha256:" + hashlib.sha256(manifest).hexdigest()
        with self._lock(target):
            if previous is not None and not self._settled(target, version - 1, previous):
                return False
            started = time.monotonic()
            if self._client.manifest_digest(tag) is not None:
                return False
            self._client.put_manifest(tag, manifest)
            took = time.monotonic() - started
            if took > self._settle:
                raise StorageError(
                    f"{self._url}: claiming {target} version {version} took {took:.3f}s "
                    f"(more than {self._settle}s between checking and writing tag {tag}); "
                    "a publisher on another machine may have been overwritten: run llmcc verify"
                )
            time.sleep(self._settle)
            if self._client.manifest_digest(tag) != ours:
                return False
            self._final.add((target, version, layer_digest))
            return True

    def _settled(self, target: str, version: int, envelope: bytes) -> bool:
        """Whether ``version`` holds ``envelope`` and can no longer be replaced by a concurrent claim.

        A claim's PUT lands within ``settle_seconds`` of the tag first appearing
        (see the module doc), so a tag unchanged across ``settle_seconds`` is final.
        """
        key = (target, version, "sha256:" + hashlib.sha256(envelope).hexdigest())
        if key in self._final:
            return True
        tag = tag_for(target, version)
        first = self._client.manifest_digest(tag)
        time.sleep(self._settle)
        if first is None or self._client.manifest_digest(tag) != first:
            return False
        layer_digest, _ = _envelope_layer(self._client.get_manifest(first), where=f"{self._url}: {tag}")
        if layer_digest != key[2]:
            return False
        self._final.add(key)
        return True

    @contextlib.contextmanager
    def _lock(self, target: str) -> Iterator[None]:
        """An exclusive flock per (store, target); released by the kernel if we die."""
        name = hashlib.sha256(f"{self._url}\n{target}".encode()).hexdigest()[:32]
        try:
            self._lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StorageError(f"{self._url}: cannot open the publish lock in {self._lock_dir}: {e}") from e
        try:
            deadline = time.monotonic() + _LOCK_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StorageError(
                            f"{self._url}: another publisher on this machine holds the lock for {target}"
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def _default_lock_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "llmcc" / "oci-locks"


def _build_manifest(
    target: str,
    version: int | None,
    config_digest: str,
    layer_digest: str,
    size: int,
    *,
    artifact_type: str = ARTIFACT_TYPE,
    layer_type: str = ENVELOPE_MEDIA_TYPE,
) -> bytes:
    annotations: JSONObject = {"dev.llmcc.target": target}
    if version is not None:
        annotations["dev.llmcc.version"] = str(version)
    manifest: JSONObject = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": _EMPTY_MEDIA_TYPE, "digest": config_digest, "size": len(_EMPTY_CONFIG)},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": size}],
        "annotations": annotations,
    }
    return canonical_json(manifest)


def _envelope_layer(
    manifest_bytes: bytes, *, where: str, artifact_type: str = ARTIFACT_TYPE, layer_type: str = ENVELOPE_MEDIA_TYPE
) -> tuple[str, int]:
    """Digest and size of the envelope layer of one of our manifests."""
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as e:
        raise CorruptObjectError(f"{where}: manifest is not JSON: {e}") from e
    except RecursionError as e:  # json's C scanner: nesting past the interpreter's recursion limit
        raise CorruptObjectError(f"{where}: manifest is not JSON (nested too deep)") from e
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    layer = layers[0] if isinstance(layers, list) and len(layers) == 1 else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("mediaType") != OCI_MANIFEST
        or manifest.get("artifactType") != artifact_type
        or not isinstance(layer, dict)
        or layer.get("mediaType") != layer_type
    ):
        raise CorruptObjectError(f"{where}: not an llmcc bundle artifact with one envelope layer")
    digest, size = layer.get("digest"), layer.get("size")
    if not isinstance(digest, str) or not isinstance(size, int) or isinstance(size, bool):
        raise CorruptObjectError(f"{where}: the envelope layer has no valid digest and size")
    return digest, size
