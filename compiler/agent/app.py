"""The agent's HTTP API, an ASGI app (Starlette) over one :class:`ConfigSource` per target (issue 12 §1-§2).

=============================================  ==========================================================
``GET /v1/targets/{target}/config``           the effective config, secrets masked (``?secrets=true``
                                               opens them, with a token of the ``secrets`` scope)
``GET /v1/targets/{target}/config/{path}``     one value; ``path`` as ``explain`` takes it
                                               (``inference-engine.model.temperature``)
``GET /v1/targets/{target}/events``            Server-Sent Events: ``current`` on connect, then
                                               ``version`` per swap (version, digest, changed paths)
``GET /healthz``                               200 while every target holds a verified version, 503
                                               before; per target version, age, stale, last error
``GET /metrics``                               Prometheus text format (``prometheus_client``)
=============================================  ==========================================================

Every request needs ``Authorization: Bearer <token>`` (:mod:`compiler.agent.access`).
Config reads carry an ``ETag`` per version and representation, and answer
``If-None-Match`` with 304 (RFC 9110 §13.1.2). Errors are ``{"error": "..."}``
with a 4xx code: no traceback, no value, no token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from compiler.agent.access import Scope as TokenScope
from compiler.agent.access import Tokens
from compiler.agent.snapshot import Snapshot, encode
from compiler.agent.source import ConfigSource
from compiler.errors import LlmccError, is_panic
from compiler.jsonpath import no_value, resolve, split_address
from compiler.jsontypes import JSONObject

log = logging.getLogger("llmcc.agent")

MAX_HEADER_BYTES = 8192
KEEPALIVE_SECONDS = 15.0
_JSON = "application/json"


@dataclass(slots=True)
class AgentState:
    """What the app reads per request; ``tokens`` is replaced whole on SIGHUP."""

    sources: Mapping[str, ConfigSource]
    tokens: Tokens
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    subscribers: dict[str, set[asyncio.Queue[bytes | None]]] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None
    requests: Counter | None = None

    def close_streams(self) -> None:
        """End every SSE stream (the drain on SIGTERM: they would keep the server open)."""
        for queues in self.subscribers.values():
            for q in queues:
                q.put_nowait(None)


def create_app(state: AgentState) -> Starlette:
    """The ASGI app; subscribes to every source's changes for the SSE streams."""
    state.requests = Counter(
        "llmcc_agent_requests", "HTTP requests by route and status", ["route", "code"], registry=state.registry
    )
    state.registry.register(_SourceCollector(state))
    for name, source in state.sources.items():
        state.subscribers[name] = set()
        source.on_change(_broadcaster(state, name))

    async def healthz(request: Request) -> Response:
        targets = {}
        for name, source in state.sources.items():
            h = source.health()
            targets[name] = {
                "version": h.version,
                "digest": h.digest,
                "age_seconds": None if h.age is None else round(h.age, 3),
                "stale": h.stale,
                "last_error": h.last_error,
            }
        ok = all(t["version"] is not None for t in targets.values())
        body = {"status": "ok" if ok else "unavailable", "targets": targets}
        return _json(200 if ok else 503, body)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(state.registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def config(request: Request) -> Response:
        snap, secrets = _read_request(state, request)
        etag = snap.etag(secrets=secrets)
        if _not_modified(request, etag):
            return Response(status_code=304, headers=_headers(snap, etag))
        body = encode(_opened(snap)) if secrets else snap.masked_body
        return Response(body, media_type=_JSON, headers=_headers(snap, etag))

    async def value(request: Request) -> Response:
        snap, secrets = _read_request(state, request)
        text = request.path_params["path"]
        segments = text.split("/")
        if any(segment in ("", ".", "..") for segment in segments[1:]) or segments[0] in (".", ".."):
            raise HTTPException(400, "'..' and '.' segments are not part of a config path")
        try:
            module, query = split_address(text, list(snap.masked))
        except LlmccError as e:
            raise HTTPException(400, str(e)) from None
        found = resolve(snap.masked[module], query)
        if found is None:
            raise HTTPException(
                404, no_value(f"{snap.target} version {snap.version}", module, snap.masked[module], query)
            )
        etag = snap.etag(secrets=secrets)
        if _not_modified(request, etag):
            return Response(status_code=304, headers=_headers(snap, etag))
        if secrets:
            opened = resolve(_opened(snap)[module], found[0])
            assert opened is not None  # the same version, the same shape
            body = encode(opened[1])  # type: ignore[arg-type]  # a JSON value of the bundle
        else:
            body = encode(found[1])  # type: ignore[arg-type]  # a JSON value of the bundle
        return Response(body, media_type=_JSON, headers=_headers(snap, etag))

    async def events(request: Request) -> Response:
        target = _target(state, request)
        _check_query(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)
        return StreamingResponse(
            _stream(state, target, queue, request.headers.get("last-event-id")),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/targets/{target}/config", config, methods=["GET"]),
        Route("/v1/targets/{target}/config/{path:path}", value, methods=["GET"]),
        Route("/v1/targets/{target}/events", events, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},  # type: ignore[dict-item]
    )
    return _Guard(app, state)  # type: ignore[return-value]  # an ASGI app, as Starlette is


class _Guard:
    """Pure ASGI middleware: header size, bearer token, request counting; before any route runs."""

    def __init__(self, app: ASGIApp, state: AgentState) -> None:
        self._app, self._state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no websockets; no lifespan events (uvicorn runs with lifespan="off")
        if self._state.loop is None:
            self._state.loop = asyncio.get_running_loop()
        counter = self._state.requests
        assert counter is not None
        route = _route_name(scope["path"])
        size = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        authorizations = [v for k, v in scope["headers"] if k == b"authorization"]
        authorization = authorizations[0] if authorizations else None
        if size > MAX_HEADER_BYTES:
            await _send_error(send, 431, f"request headers over {MAX_HEADER_BYTES} bytes")
            counter.labels(route, "431").inc()
            return
        if len(authorizations) > 1:  # which one did a proxy in front check? refused, not guessed
            await _send_error(send, 400, "more than one Authorization header")
            counter.labels(route, "400").inc()
            return
        scopes = self._state.tokens.scopes(authorization)
        if scopes is None:
            why = "no bearer token" if authorization is None else "the bearer token is not accepted"
            await _send_error(send, 401, why, [(b"www-authenticate", b'Bearer realm="llmcc-agent"')])
            counter.labels(route, "401").inc()
            return
        scope["llmcc.scopes"] = scopes
        status = [500]

        async def counting_send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])  # type: ignore[call-overload]  # ASGI: an int
            await send(message)

        try:
            await self._app(scope, receive, counting_send)  # type: ignore[arg-type]  # an ASGI send
        finally:
            counter.labels(route, str(status[0])).inc()


def _route_name(path: str) -> str:
    """A bounded label for metrics: the route's shape, never the path's text."""
    parts = path.split("/")
    if len(parts) >= 5 and parts[1:3] == ["v1", "targets"]:
        return {"config": "value" if len(parts) > 5 else "config", "events": "events"}.get(parts[4], "other")
    return {"/healthz": "healthz", "/metrics": "metrics"}.get(path, "other")


async def _send_error(send: Send, code: int, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = encode({"error": message})
    headers = [(b"content-type", _JSON.encode()), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json(code: int, body: object) -> Response:
    return Response(encode(body), status_code=code, media_type=_JSON)  # type: ignore[arg-type]  # JSON-able


async def _http_error(request: Request, exc: HTTPException) -> Response:
    message = exc.detail  # our own words: no value, no traceback
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path} (see /v1/targets/TARGET/config)"
    if exc.status_code == 405:
        message = f"{request.method} is not allowed here: use GET"
    headers = dict(exc.headers or {})
    return Response(encode({"error": message}), status_code=exc.status_code, media_type=_JSON, headers=headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # the type only: a message could carry anything the failing code held
    log.error("internal error on %s: %s", _route_name(request.url.path), type(exc).__name__)
    return _json(500, {"error": "internal error"})


def _target(state: AgentState, request: Request) -> str:
    target: str = request.path_params["target"]
    if target not in state.sources:
        raise HTTPException(404, f"target {target!r} is not served by this agent")
    return target


def _check_query(request: Request) -> bool:
    """Whether ``?secrets=true`` was asked; any other parameter is refused (a typo would mask silently)."""
    secrets = False
    for key, val in request.query_params.multi_items():
        if key != "secrets" or val not in ("true", "false", "1", "0"):
            raise HTTPException(400, "the only query parameter is secrets=true|false")
        secrets = val in ("true", "1")
    return secrets


def _read_request(state: AgentState, request: Request) -> tuple[Snapshot, bool]:
    target = _target(state, request)
    secrets = _check_query(request)
    if secrets and TokenScope.SECRETS not in request.scope["llmcc.scopes"]:
        raise HTTPException(403, "this token may not read secrets (it has no 'secrets' scope)")
    snap = state.sources[target].current
    if snap is None:
        raise HTTPException(503, f"{target}: no verified version yet (see /healthz)", {"Retry-After": "1"})
    return snap, secrets


def _opened(snap: Snapshot) -> JSONObject:
    try:
        return snap.opened()
    except LlmccError as e:
        log.error("%s version %d: secrets cannot be opened: %s", snap.target, snap.version, e)
        raise HTTPException(503, f"{snap.target} version {snap.version}: secrets cannot be opened") from None
    except BaseException as e:
        # A native library (pyrage, cryptography) panicked: a BaseException, which the framework's
        # error handler (``except Exception``) lets through to the server's traceback. A bug: 500.
        if not is_panic(e):
            raise
        log.error(
            "internal error on %s version %d: a native library panicked opening secrets", snap.target, snap.version
        )
        raise HTTPException(500, "internal error") from None


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _headers(snap: Snapshot, etag: str) -> dict[str, str]:
    return {
        "ETag": etag,
        "Cache-Control": "no-cache",
        "X-Llmcc-Version": str(snap.version),
        "X-Llmcc-Digest": snap.digest,
    }


def _event(kind: str, snap: Snapshot, changed: list[str]) -> bytes:
    data = json.dumps(
        {"target": snap.target, "version": snap.version, "digest": snap.digest, "changed": changed},
        separators=(",", ":"),
    )
    return f"id: {snap.version}\nevent: {kind}\ndata: {data}\n\n".encode()


def _broadcaster(state: AgentState, target: str) -> Callable[[Snapshot | None, Snapshot, list[str]], None]:
    """The source's change callback: one ``version`` event to every subscriber (from the poll thread)."""

    def changed(old: Snapshot | None, new: Snapshot, paths: list[str]) -> None:
        message = _event("version", new, paths)
        loop = state.loop
        if loop is None or loop.is_closed():
            return  # nobody has connected yet
        loop.call_soon_threadsafe(_publish, state, target, message)

    return changed


def _publish(state: AgentState, target: str, message: bytes) -> None:
    for q in list(state.subscribers[target]):
        try:
            q.put_nowait(message)
        except asyncio.QueueFull:  # a subscriber that does not read is ended, not buffered forever
            state.subscribers[target].discard(q)
            q.get_nowait()
            q.put_nowait(None)


async def _stream(
    state: AgentState, target: str, queue: asyncio.Queue[bytes | None], last_id: str | None
) -> AsyncIterator[bytes]:
    """One subscriber's events. The queue joins the subscribers here, in the ``try`` whose
    ``finally`` removes it (a stream dropped before its first step left it there for good),
    and before ``current`` is read (a swap in between is then sent, not missed)."""
    state.subscribers[target].add(queue)
    try:
        current = state.sources[target].current
        yield b"retry: 1000\n\n"
        if current is not None:
            kind = (
                "version"
                if last_id is not None and last_id.isascii() and last_id.isdigit() and int(last_id) < current.version
                else None
            )
            yield _event(kind or "current", current, [])
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if message is None:
                return
            yield message
    finally:
        state.subscribers[target].discard(queue)


class _SourceCollector(Collector):
    """Per-target gauges read at scrape time (no work on the request path)."""

    def __init__(self, state: AgentState) -> None:
        self._state = state

    def collect(self) -> list[Metric]:
        version = GaugeMetricFamily("llmcc_agent_version", "verified version served", labels=["target"])
        age = GaugeMetricFamily("llmcc_agent_age_seconds", "seconds since the store confirmed it", labels=["target"])
        stale = GaugeMetricFamily("llmcc_agent_stale", "1 when older than --max-age", labels=["target"])
        refused = CounterMetricFamily("llmcc_agent_refusals", "polls refused or failed", labels=["target"])
        subs = GaugeMetricFamily("llmcc_agent_sse_subscribers", "open event streams", labels=["target"])
        for name, source in self._state.sources.items():
            h = source.health()
            if h.version is not None:
                version.add_metric([name], h.version)
            if h.age is not None:
                age.add_metric([name], h.age)
            stale.add_metric([name], 1.0 if h.stale else 0.0)
            refused.add_metric([name], h.refusals)
            subs.add_metric([name], len(self._state.subscribers.get(name, ())))
        return [version, age, stale, refused, subs]
