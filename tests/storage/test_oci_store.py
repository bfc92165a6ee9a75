"""OciStore specifics against a real docker-registry: tags, artifacts by digest, the version claim."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.bundle.canonical import canonical_json
from compiler.errors import LlmccError, StorageError
from compiler.publish import PublishResult, publish_target
from compiler.storage import CorruptObjectError, _registry, open_store
from compiler.storage._registry import OCI_MANIFEST, RegistryClient
from compiler.storage.oci import ARTIFACT_TYPE, ENVELOPE_MEDIA_TYPE, OciStore, parse_tag, tag_for
from compiler.verify import verify_chain
from tests.services import Service
from tests.storage._support import KeyPair, StoreSpec, keyring_of, make_body


def test_tags_map_targets_one_to_one() -> None:
    assert tag_for("prod", 3) == "prod.v00000003"
    assert tag_for("prod@acme", 12) == "prod.acme.v00000012"
    assert tag_for("a_b-c@d", 123456789) == "a_b-c.d.v123456789"
    for target, version in [("prod", 1), ("prod@acme", 7), ("prod@v00000001", 2), ("x", 99999999)]:
        assert parse_tag(tag_for(target, version)) == (target, version)
    for foreign in [
        "latest",
        "prod.v1",
        "prod.v000000003",
        "prod.v00000000",
        "Prod.v00000001",
        "a.b.c.v00000001",
        "prod.acme",
    ]:
        assert parse_tag(foreign) is None
    with pytest.raises(StorageError, match="too long for an OCI tag"):
        tag_for("a" * 63 + "@" + "b" * 63, 1)


def test_each_version_is_an_artifact_pulled_by_digest(oci_spec: StoreSpec, registry: Service, keypair: KeyPair) -> None:
    store = oci_spec.open()
    publish_target(store, "prod@acme", make_body("prod@acme", 1), keypair.signer)
    base = f"{registry.url}/v2/{oci_spec.repository}"  # plain http on loopback: the S310 noqa below
    tags = json.loads(urllib.request.urlopen(f"{base}/tags/list").read())["tags"]  # noqa: S310
    assert sorted(tags) == ["prod.acme.latest", "prod.acme.v00000001"]
    request = urllib.request.Request(f"{base}/manifests/prod.acme.v00000001", headers={"Accept": OCI_MANIFEST})  # noqa: S310
    with urllib.request.urlopen(request) as response:  # noqa: S310
        raw = response.read()
        assert response.headers["Docker-Content-Digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    manifest = json.loads(raw)
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["mediaType"] == OCI_MANIFEST
    [layer] = manifest["layers"]
    assert layer["mediaType"] == ENVELOPE_MEDIA_TYPE
    envelope = urllib.request.urlopen(f"{base}/blobs/{layer['digest']}").read()  # noqa: S310
    assert envelope == store.read("prod@acme", 1)
    assert layer["size"] == len(envelope)


def test_foreign_tags_and_artifacts(oci_spec: StoreSpec, keypair: KeyPair) -> None:
    store = oci_spec.open()
    client = RegistryClient(oci_spec.registry, oci_spec.repository, where="test")
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    ours = client.get_manifest(client.manifest_digest("prod.v00000001") or "")
    client.put_manifest("latest", ours)  # a foreign tag: ignored
    assert store.versions("prod") == [1]
    assert store.targets() == ["prod"]
    config = client.put_blob(b"{}")
    for change in ({"artifactType": "application/vnd.other"}, {"layers": []}):
        manifest = {**json.loads(ours), **change}
        client.put_manifest("prod.v00000002", canonical_json(manifest))
        with pytest.raises(CorruptObjectError, match="not an llmcc bundle artifact") as info:
            store.read("prod", 2)
        assert info.value.exit_code == 3
    layer = {"mediaType": "application/octet-stream", "digest": config, "size": 2}
    client.put_manifest("prod.v00000002", canonical_json({**json.loads(ours), "layers": [layer]}))
    with pytest.raises(CorruptObjectError):
        store.read("prod", 2)
    with pytest.raises(StorageError, match="prod has no version 3"):
        store.read("prod", 3)


def test_a_slow_claim_refuses_to_report_success(oci_spec: StoreSpec, keypair: KeyPair, tmp_path: Path) -> None:
    slow = OciStore(oci_spec.registry, oci_spec.repository, lock_dir=tmp_path / "l", settle_seconds=0.0)
    with pytest.raises(StorageError, match=r"took .* run llmcc verify"):
        publish_target(slow, "prod", make_body("prod", 1), keypair.signer)


def test_publishers_on_different_machines_never_silently_overwrite(
    oci_spec: StoreSpec, keypair: KeyPair, tmp_path: Path
) -> None:
    """No shared lock (one lock dir per "machine"): the check-put-settle-confirm protocol alone."""
    barrier = threading.Barrier(4)
    outcomes: dict[int, PublishResult | LlmccError] = {}

    def publish(n: int) -> None:
        store = oci_spec.open(lock_dir=str(tmp_path / f"machine-{n}"))
        barrier.wait(timeout=30)
        try:
            outcomes[n] = publish_target(store, "prod", make_body("prod", n), keypair.signer, max_attempts=8)
        except LlmccError as e:
            outcomes[n] = e

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    store = oci_spec.open()
    chain = verify_chain(
        "prod", [(v, store.read("prod", v)) for v in store.versions("prod")], keyring_of(keypair.signer)
    )
    won = [o for o in outcomes.values() if isinstance(o, PublishResult)]
    assert len(won) == len({r.version for r in won}) >= 1
    for r in won:  # what each winner reported is what the store holds
        assert chain[r.version - 1].digest == r.digest
    for o in outcomes.values():
        if not isinstance(o, PublishResult):
            assert "took" in str(o)


def test_a_claim_never_links_to_a_replaced_version(oci_spec: StoreSpec, keypair: KeyPair, tmp_path: Path) -> None:
    """Another machine replaced version 1 after we read it: our claim of version 2 is refused."""
    ours = oci_spec.open(lock_dir=str(tmp_path / "a"))
    publish_target(ours, "prod", make_body("prod", 1), keypair.signer)
    linked_to = ours.read("prod", 1)
    theirs = oci_spec.open(lock_dir=str(tmp_path / "b"))
    client = RegistryClient(oci_spec.registry, oci_spec.repository, where="test")
    assert theirs.create("prod", 2, b"placeholder")  # a real artifact to copy the shape of
    replaced = client.get_manifest(client.manifest_digest("prod.v00000002") or "")
    client.put_manifest("prod.v00000001", replaced)  # what a concurrent claim of version 1 looks like
    fresh = oci_spec.open(lock_dir=str(tmp_path / "c"))
    assert fresh.create("prod", 3, b"next", previous=linked_to) is False
    assert fresh.versions("prod") == [1, 2]
    assert fresh.create("prod", 3, b"next", previous=fresh.read("prod", 2)) is True


def test_tag_listing_follows_pagination(oci_spec: StoreSpec, keypair: KeyPair, monkeypatch: pytest.MonkeyPatch) -> None:
    store = OciStore(oci_spec.registry, oci_spec.repository, lock_dir=Path(oci_spec.lock_dir), settle_seconds=0.1)
    for n in range(1, 6):
        publish_target(store, "dev", make_body("dev", n), keypair.signer)
    monkeypatch.setattr(_registry, "PAGE_SIZE", 2)
    assert store.versions("dev") == [1, 2, 3, 4, 5]


def test_bad_urls_and_unreachable_registries(tmp_path: Path) -> None:
    for url in ["oci://127.0.0.1:1/Upper/Case", "oci://127.0.0.1:1", "oci:///repo", "oci://host/a//b"]:
        with pytest.raises(StorageError, match="expected oci://REGISTRY/REPOSITORY"):
            open_store(url, root=tmp_path)
    closed = open_store("oci://127.0.0.1:9/llmcc/bundles", root=tmp_path)
    assert closed.url == "oci://127.0.0.1:9/llmcc/bundles"
    with pytest.raises(StorageError, match="Connection refused"):
        closed.targets()


class _LyingRegistry(BaseHTTPRequestHandler):
    """Serves a manifest or blob whose bytes do not match the digest asked for."""

    manifest = canonical_json(
        {
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "layers": [{"mediaType": ENVELOPE_MEDIA_TYPE, "digest": "sha256:" + "b" * 64, "size": 5}],
        }
    )
    lie_about = "manifest"

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(self.manifest).hexdigest())
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body = self.manifest
        if "/blobs/" in self.path:
            body = b"bytes"
        elif self.lie_about == "manifest":
            body = body + b" "
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["manifest", "blob"])
def lying_registry(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_LyingRegistry,), {"lie_about": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_content_not_matching_its_digest_is_refused(lying_registry: str, tmp_path: Path) -> None:
    store = OciStore(lying_registry, "llmcc/bundles", lock_dir=tmp_path)
    with pytest.raises(CorruptObjectError, match="does not match its digest"):
        store.read("prod", 1)


def test_pagination_links_stay_on_the_registry() -> None:
    origin = "http://127.0.0.1:5000"
    assert _registry._next_link(None, origin) is None
    assert _registry._next_link('<https://x>; rel="prev"', origin) is None
    assert (
        _registry._next_link('</v2/r/tags/list?last=b&n=2>; rel="next"', origin)
        == f"{origin}/v2/r/tags/list?last=b&n=2"
    )
    with pytest.raises(StorageError, match="another origin"):
        _registry._next_link('<http://evil.example/v2/r/tags/list>; rel="next"', origin)


class _FlakyRegistry(BaseHTTPRequestHandler):
    """Answers 500 to the first two requests (as distribution can mid-overwrite), then 404."""

    seen: list[str]

    def do_HEAD(self) -> None:
        self.seen.append(self.command)
        self.send_response(500 if len(self.seen) <= 2 else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_HEAD

    def log_message(self, *args: object) -> None:
        pass


def test_transient_server_errors_are_retried_for_reads_only() -> None:
    seen: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_FlakyRegistry,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = RegistryClient(f"127.0.0.1:{server.server_address[1]}", "llmcc/bundles", where="flaky")
        assert client.manifest_digest("prod.v00000001") is None
        assert seen == ["HEAD"] * 3
        seen.clear()
        with pytest.raises(StorageError, match="HTTP 500"):
            client.put_manifest("prod.v00000001", b"{}")
        assert seen == ["PUT"]
    finally:
        server.shutdown()
        server.server_close()


class _HugeRegistry(BaseHTTPRequestHandler):
    """Answers a tag list far larger than any registry sends: declared in Content-Length, or just streamed."""

    declared = True

    def do_GET(self) -> None:
        self.send_response(200)
        if self.declared:
            self.send_header("Content-Length", str(10 * 1024**3))
            self.end_headers()
            return
        self.end_headers()  # HTTP/1.0: the body runs until the connection closes
        chunk = b" " * 65536
        for _ in range(_registry._MAX_REPLY_BYTES // len(chunk) + 2):
            self.wfile.write(chunk)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("declared", [True, False])
def test_a_reply_over_the_bound_is_refused_unread(declared: bool, tmp_path: Path) -> None:
    """Issue 9 §3's bound, on the registry client: manifests, tag lists and errors are capped too."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_HugeRegistry,), {"declared": declared}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = OciStore(f"127.0.0.1:{server.server_address[1]}", "llmcc/bundles", lock_dir=tmp_path)
        with pytest.raises(CorruptObjectError, match="more than the 4194304"):
            store.versions("prod")
    finally:
        server.shutdown()
        server.server_close()
