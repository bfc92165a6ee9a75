"""The agent's parts in process: the ASGI app over a fake source, tokens, the polling source."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest

from compiler.agent import app as app_module
from compiler.agent.access import Scope, read_tokens
from compiler.agent.app import AgentState, _publish, _stream, create_app
from compiler.agent.clientsource import ClientSource
from compiler.agent.snapshot import MASK, Snapshot
from compiler.agent.source import SourceHealth
from compiler.client import ConfigClient, NoStoreError
from compiler.errors import LlmccError, SecretsError
from compiler.publish import publish_target
from compiler.storage.file import FileStore
from tests.secrets._secrets_support import new_canary
from tests.storage._support import make_body, new_keypair

TOKEN = "r" * 40
SECRETS = "s" * 40


class FakeSource:
    """A ConfigSource holding one snapshot; ``broken`` makes ``current`` raise (a bug)."""

    def __init__(self, snap: Snapshot | None, *, broken: bool = False) -> None:
        self.snap, self.broken, self.callbacks = snap, broken, []

    @property
    def target(self) -> str:
        return "prod"

    @property
    def current(self) -> Snapshot | None:
        if self.broken:
            raise RuntimeError("a bug")
        return self.snap

    def on_change(self, callback) -> None:
        self.callbacks.append(callback)

    def health(self) -> SourceHealth:
        v = self.snap.version if self.snap else None
        return SourceHealth(target="prod", version=v, digest=None, checked_at=None, age=None, stale=True,
                            last_error=None, refusals=0, polls=0)  # fmt: skip

    def start(self) -> None: ...

    def stop(self) -> None: ...


def snapshot(open_all, version: int = 1) -> Snapshot:
    masked = {"m": {"x": 1, "pw": MASK, "list": [MASK, "a"]}}
    return Snapshot(target="prod", version=version, digest="sha256:" + "ab" * 32, masked=masked, open_all=open_all)


class SyncASGI:
    """httpx's ASGI transport, driven from sync test code (one event loop per test)."""

    def __init__(self, app: object) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),  # type: ignore[arg-type]
            base_url="http://agent",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )

    def __enter__(self) -> SyncASGI:
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()

    def request(self, method: str, url: str, **kw: object) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kw))  # type: ignore[arg-type]

    def get(self, url: str, **kw: object) -> httpx.Response:
        return self.request("GET", url, **kw)

    def delete(self, url: str, **kw: object) -> httpx.Response:
        return self.request("DELETE", url, **kw)


def client(source: FakeSource, tmp_path: Path) -> SyncASGI:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n{SECRETS} secrets\n")
    tokens.chmod(0o600)
    state = AgentState(sources={"prod": source}, tokens=read_tokens(tokens))
    return SyncASGI(create_app(state))


def test_only_http(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    tokens.chmod(0o600)
    app = create_app(AgentState(sources={}, tokens=read_tokens(tokens)))
    sent: list[object] = []

    async def send(message: object) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "websocket.connect"}

    asyncio.run(app({"type": "websocket", "path": "/"}, receive, send))  # type: ignore[operator]
    assert sent == []  # not accepted: uvicorn closes it


def test_value_reads_etags_and_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    canary = new_canary()

    def refuse() -> dict:
        raise SecretsError("no identity opens this data key")

    with client(FakeSource(snapshot(refuse)), tmp_path) as c:
        r = c.get("/v1/targets/prod/config/m.list")
        assert r.json() == ["<secret>", "a"]
        assert c.get("/v1/targets/prod/config/m.x", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
        assert c.get("/v1/targets/prod/config/m.x", headers={"If-None-Match": "*"}).status_code == 304
        assert c.get("/v1/targets/prod/config/m.nope").json() == {"error": "prod version 1: m$.nope: no value"}
        assert c.get("/v1/targets/prod/config/m[").status_code == 400
        assert c.delete("/v1/targets/prod/config").json() == {"error": "DELETE is not allowed here: use GET"}
        opened = c.get("/v1/targets/prod/config/m.pw?secrets=true", headers={"Authorization": f"Bearer {SECRETS}"})
        assert (opened.status_code, opened.json()) == (503, {"error": "prod version 1: secrets cannot be opened"})
    assert "secrets cannot be opened: no identity opens this data key" in caplog.text
    assert canary not in caplog.text
    with client(FakeSource(snapshot(lambda: {"m": {"x": 1, "pw": canary, "list": ["b", "a"]}})), tmp_path) as c:
        s = {"Authorization": f"Bearer {SECRETS}"}
        assert c.get("/v1/targets/prod/config/m.pw?secrets=true", headers=s).json() == canary
        etag = c.get("/v1/targets/prod/config?secrets=true", headers=s).headers["etag"]
        assert c.get("/v1/targets/prod/config/m.pw?secrets=1", headers={**s, "If-None-Match": etag}).status_code == 304


def test_a_bug_is_500_without_its_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with client(FakeSource(None, broken=True), tmp_path) as c:
        r = c.get("/v1/targets/prod/config")
    assert (r.status_code, r.json()) == (500, {"error": "internal error"})
    assert "internal error on config: RuntimeError" in caplog.text
    assert "a bug" not in caplog.text


def test_a_native_panic_opening_secrets_is_500_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PyO3's PanicException is a BaseException: the framework's handler let it through to the
    server, which logged its traceback. Now one log line and 500, the masked view still served."""
    from tests.core.test_native_panics import panic

    def panicking() -> dict:
        panic()
        return {}

    with client(FakeSource(snapshot(panicking)), tmp_path) as c:
        s = {"Authorization": f"Bearer {SECRETS}"}
        r = c.get("/v1/targets/prod/config/m.pw?secrets=true", headers=s)
        assert (r.status_code, r.json()) == (500, {"error": "internal error"})
        assert c.get("/v1/targets/prod/config/m.x").json() == 1
    assert "internal error on prod version 1: a native library panicked opening secrets" in caplog.text
    assert "Traceback" not in caplog.text


def test_event_stream_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> list[bytes]:
        snap = snapshot(dict, version=3)
        state = AgentState(sources={"prod": FakeSource(snap)}, tokens=None)  # type: ignore[arg-type]
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
        state.subscribers["prod"] = set()
        monkeypatch.setattr(app_module, "KEEPALIVE_SECONDS", 0.01)
        stream = _stream(state, "prod", queue, "2")  # the subscriber last saw version 2
        got = [await anext(stream), await anext(stream), await anext(stream)]
        _publish(state, "prod", b"one")
        _publish(state, "prod", b"two")  # the queue is full: that subscriber is ended
        got += [m async for m in stream]
        assert state.subscribers["prod"] == set()
        return got

    got = asyncio.run(scenario())
    assert got[0] == b"retry: 1000\n\n"
    assert got[1].startswith(b"id: 3\nevent: version\n")
    assert got[2] == b": keepalive\n\n"
    assert got[3:] == []


def test_token_file_checks(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    cases = {
        "": "holds no token",
        f"{TOKEN} admin\n": ":1: after the token only the word 'secrets' may follow",
        "x" * (1 << 20) + "y\n": "the token file is over 1 MiB",
    }
    for text, message in cases.items():
        path.write_text(text)
        path.chmod(0o600)
        with pytest.raises(LlmccError, match=message):
            read_tokens(path)
    with pytest.raises(LlmccError, match="cannot read the token file: No such file"):
        read_tokens(tmp_path / "missing")
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(LlmccError, match="is not a regular file"):
        read_tokens(tmp_path / "dir")
    path.write_text(f"{TOKEN}\n")
    tokens = read_tokens(path)
    assert repr(tokens) == "Tokens(<1 tokens>)"
    assert tokens.scopes(f"Bearer {TOKEN}".encode()) == frozenset({Scope.READ})
    assert tokens.scopes(f"Basic {TOKEN}".encode()) is None
    assert tokens.scopes(None) is None
    if os.geteuid() == 0:  # only root can give a file away
        os.chown(path, os.geteuid() + 1, -1)
        with pytest.raises(LlmccError, match="belongs to another user"):
            read_tokens(path)


def client_source(tmp_path: Path, store: FileStore, keys) -> tuple[ClientSource, ConfigClient]:
    pub = tmp_path / "ci.pub"
    keys.write(tmp_path / "keys", "ci")
    pub = tmp_path / "keys" / "ci.pub"
    client = ConfigClient(store, "prod", [pub], cache_dir=tmp_path / "cache", poll_interval=60, max_age=60)
    return ClientSource(client, "prod", retry_seconds=0.05), client


def test_client_source_views_and_callbacks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keys = new_keypair()
    store = FileStore(tmp_path / "store")
    publish_target(store, "prod", make_body("prod", 1), keys.signer)
    source, client = client_source(tmp_path, store, keys)
    assert source.target == "prod"
    seen: list[tuple[int | None, int, list[str]]] = []

    def broken(old: Snapshot | None, new: Snapshot, changed: list[str]) -> None:
        raise RuntimeError("subscriber bug")

    source.on_change(broken)
    source.on_change(lambda old, new, changed: seen.append((old and old.version, new.version, changed)))
    source.start()
    try:
        first = source.current
        assert first is not None
        assert first.version == 1
        assert source.current is first  # one view per client snapshot
        assert first.opened() == first.masked  # no secrets: nothing to open
        publish_target(store, "prod", make_body("prod", 2), keys.signer)
        assert client.refresh() is True
        assert source.current is not None
        assert source.current.version == 2
        health = source.health()
        assert (health.version, health.stale, health.last_error) == (2, False, None)
    finally:
        source.stop()
    assert seen[0][:2] == (None, 1)
    assert seen[1][:2] == (1, 2)
    assert "inference-engine$.model.max_tokens" in seen[1][2]
    assert "prod: a change callback failed" in caplog.text


def test_client_source_keeps_starting_until_a_version_verifies(tmp_path: Path) -> None:
    keys = new_keypair()
    store = FileStore(tmp_path / "store")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "prod").write_text("not a target directory\n")  # its target cannot be read
    source, _ = client_source(tmp_path, store, keys)
    source.start()  # no version, no exception, retried in the background
    try:
        assert source.current is None
        assert source.health().version is None
        (tmp_path / "store" / "prod").unlink()
        publish_target(store, "prod", make_body("prod", 1), keys.signer)
        deadline = time.monotonic() + 30
        while source.current is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        source.stop()


def test_client_source_refuses_a_store_directory_that_does_not_exist(tmp_path: Path) -> None:
    """A typo, not an outage: the agent exits 2 with it (was: retried for ever, 503)."""
    keys = new_keypair()
    source, _ = client_source(tmp_path, FileStore(tmp_path / "no-such-store"), keys)
    with pytest.raises(NoStoreError, match=r"no store at .*/no-such-store \(the directory does not exist\)$"):
        source.start()
    source.stop()


def test_an_event_stream_dropped_before_it_starts_leaves_no_subscriber(tmp_path: Path) -> None:
    # the queue was registered by the handler and removed by the stream's finally: a client gone
    # before the stream's first step left its queue in the subscriber set (and the gauge) for good
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    tokens.chmod(0o600)
    state = AgentState(sources={"prod": FakeSource(snapshot(dict))}, tokens=read_tokens(tokens))
    app = create_app(state)
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": "/v1/targets/prod/events", "raw_path": b"/v1/targets/prod/events",
        "query_string": b"", "root_path": "", "headers": [(b"authorization", f"Bearer {TOKEN}".encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
    }  # fmt: skip

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        await asyncio.sleep(0.01)  # the client is gone while the headers are being written

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert state.subscribers["prod"] == set()
