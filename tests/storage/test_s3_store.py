"""S3Store specifics against a real moto server, plus fake endpoints that do not honour conditional writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from compiler.errors import StorageError
from compiler.publish import publish_target
from compiler.storage import open_store
from compiler.storage.s3 import S3Store
from tests.services import Service
from tests.storage._cli import llmcc
from tests.storage._support import KeyPair, StoreSpec, make_body


class _LaxS3(BaseHTTPRequestHandler):
    """An "S3-compatible" endpoint that ignores If-None-Match: every PUT succeeds."""

    puts: list[str]
    reject_conditional = False

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.puts.append(self.path)
        if self.reject_conditional and self.headers.get("If-None-Match"):
            body = b"<Error><Code>NotImplemented</Code><Message>no conditional writes</Message></Error>"
            self.send_response(501)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("ETag", '"d41d8cd98f00b204e9800998ecf8427e"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_DELETE(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[False, True], ids=["ignores-if-none-match", "rejects-if-none-match"])
def lax_endpoint(request: pytest.FixtureRequest, fake_aws: None) -> Iterator[tuple[str, list[str]]]:
    puts: list[str] = []
    handler = type("Handler", (_LaxS3,), {"puts": puts, "reject_conditional": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", puts
    server.shutdown()
    server.server_close()


def test_publish_fails_closed_without_conditional_writes(lax_endpoint: tuple[str, list[str]], keypair: KeyPair) -> None:
    url, puts = lax_endpoint
    store = S3Store("bucket", "bundles", endpoint_url=url)
    with pytest.raises(StorageError, match=r"does not honour conditional writes \(If-None-Match: \*\)"):
        store.create("prod", 1, b"envelope")
    assert puts
    assert all("/.llmcc-probe/" in p for p in puts)


def test_probe_runs_once_and_cleans_up(s3_spec: StoreSpec, moto_server: Service, keypair: KeyPair) -> None:
    store = s3_spec.open()
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    publish_target(store, "prod", make_body("prod", 2), keypair.signer)
    s3 = boto3.session.Session().client("s3", endpoint_url=moto_server.url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_spec.bucket).get("Contents", [])]
    assert keys == [
        "bundles/.llmcc-deltas/prod/00000002.delta.json",  # beside the targets, not among them
        "bundles/prod/00000001.dsse.json",
        "bundles/prod/00000002.dsse.json",
        "bundles/prod/latest.dsse.json",
    ]
    assert store.targets() == ["prod"]


def test_prefixes_are_separate_stores(s3_spec: StoreSpec, keypair: KeyPair) -> None:
    a = S3Store(s3_spec.bucket, "team-a", endpoint_url=s3_spec.endpoint_url)
    b = S3Store(s3_spec.bucket, "/team-b/", endpoint_url=s3_spec.endpoint_url)
    root = S3Store(s3_spec.bucket, "", endpoint_url=s3_spec.endpoint_url)
    publish_target(a, "prod", make_body("prod", 1), keypair.signer)
    assert a.versions("prod") == [1]
    assert b.versions("prod") == []
    assert b.targets() == []
    assert root.targets() == []  # "team-a" is not a target with versions at the bucket root
    publish_target(root, "dev", make_body("dev", 1), keypair.signer)
    assert root.targets() == ["dev"]


def test_strays_are_ignored(s3_spec: StoreSpec, moto_server: Service) -> None:
    s3 = boto3.session.Session().client("s3", endpoint_url=moto_server.url)
    for key in [
        "bundles/prod/00000001.dsse.json",
        "bundles/prod/notes.txt",
        "bundles/prod/1.dsse.json",
        "bundles/x y/00000001.dsse.json",
    ]:
        s3.put_object(Bucket=s3_spec.bucket, Key=key, Body=b"x")
    store = s3_spec.open()
    assert store.versions("prod") == [1]
    assert store.targets() == ["prod"]


def test_errors_are_storage_errors(s3_spec: StoreSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    store = s3_spec.open()
    with pytest.raises(StorageError, match="prod has no version 1"):
        store.read("prod", 1)
    missing = S3Store("no-such-bucket-here", "x", endpoint_url=s3_spec.endpoint_url)
    gone = "s3://no-such-bucket-here/x/: no such bucket no-such-bucket-here (the bucket does not exist)"
    reads = (missing.targets, lambda: missing.versions("prod"), lambda: missing.read("prod", 1))
    for call in (*reads, lambda: missing.read_pointer("prod"), lambda: missing.create("prod", 1, b"x")):
        with pytest.raises(StorageError) as caught:
            call()
        assert str(caught.value) == gone  # not "nothing published", not a boto sentence
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    closed = S3Store("bucket", "", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(StorageError, match="cannot list"):
        closed.versions("prod")
    with pytest.raises(StorageError, match="cannot read"):
        closed.read("prod", 1)


def test_open_store_s3_url(s3_spec: StoreSpec, tmp_path: object) -> None:
    store = open_store(f"s3://{s3_spec.bucket}/bundles", root=tmp_path, endpoint_url=s3_spec.endpoint_url)  # type: ignore[arg-type]
    assert store.url == f"s3://{s3_spec.bucket}/bundles"
    assert store.create("prod", 1, b"x") is True
    assert s3_spec.open().read("prod", 1) == b"x"
    with pytest.raises(StorageError, match="no bucket"):
        open_store("s3:///prefix", root=tmp_path)  # type: ignore[arg-type]


def test_pull_and_verify_name_a_bucket_that_does_not_exist(
    s3_spec: StoreSpec, keypair: KeyPair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keypair.write(tmp_path / "keys", "ci")
    flags = ["--store", "s3://no-such-bucket-here/bundles", "--endpoint-url", s3_spec.endpoint_url]
    for argv in (["pull", "prod"], ["verify"]):
        assert llmcc(tmp_path, *argv, *flags, "--trusted-key", "keys/ci.pub") == 2
        assert capsys.readouterr().err == (
            "llmcc: s3://no-such-bucket-here/bundles: no such bucket no-such-bucket-here (the bucket does not exist)\n"
        )
