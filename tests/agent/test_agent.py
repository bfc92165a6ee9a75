"""A real ``llmcc agent`` process, read over real HTTP by httpx (issue 12)."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.agent._agent import TRUSTED_KEY, Agent, child_env, running, start_agent, status, write_tokens
from tests.agent.conftest import Published, publish, set_value
from tests.conftest import DEMO_IDENTITY
from tests.services import Service


def agent_args(p: Published, tmp_path: Path, *targets: str, poll: str = "0.2") -> list[str]:
    return [
        *(a for t in targets or ("prod",) for a in ("-t", t)),
        "--store", p.store,
        "--trusted-key", str(TRUSTED_KEY),
        "--cache-dir", str(tmp_path / "state"),
        "--token-file", str(tmp_path / "tokens"),
        "--identity", str(DEMO_IDENTITY),
        "--poll-interval", poll,
    ]  # fmt: skip


def start(p: Published, tmp_path: Path, *targets: str, **kw: object) -> tuple[Agent, str, str]:
    read, full = write_tokens(tmp_path / "tokens")
    if "prod@acme" in targets:  # one identity file, both readers' keys (acme's data key is only acme's)
        both = tmp_path / "identities.agekey"
        both.write_text(DEMO_IDENTITY.read_text() + (DEMO_IDENTITY.parent / "demo-acme.agekey").read_text())
        both.chmod(0o600)
        args = [a if a != str(DEMO_IDENTITY) else str(both) for a in agent_args(p, tmp_path, *targets)]
        agent = start_agent(tmp_path, tmp_path / "agent.log", *args, **kw)  # type: ignore[arg-type]
        return agent, read, full
    agent = start_agent(tmp_path, tmp_path / "agent.log", *agent_args(p, tmp_path, *targets), **kw)  # type: ignore[arg-type]
    return agent, read, full


def metrics(agent: Agent, token: str) -> str:
    with agent.client(token) as c:
        return c.get("/metrics").text


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_reads_masks_and_opens(published: Published, tmp_path: Path) -> None:
    agent, read, full = start(published, tmp_path, "prod", "prod@acme")
    with running(agent), agent.client(read) as c, agent.client(full) as s:
        r = c.get("/v1/targets/prod/config")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-llmcc-version"] == "1"
        config = r.json()
        assert config["data-pipeline"]["db"]["password"] == "<secret>"
        assert config["inference-engine"]["model"]["temperature"] == 0.3
        assert published.canary not in r.text
        assert c.get("/v1/targets/prod/config/inference-engine.model.temperature").json() == 0.3
        assert c.get("/v1/targets/prod/config/data-pipeline.db.password").json() == "<secret>"
        assert c.get("/v1/targets/prod/config/data-pipeline$.db").json()["password"] == "<secret>"
        # the secrets scope, asked for
        got = s.get("/v1/targets/prod/config/data-pipeline.db.password", params={"secrets": "true"})
        assert got.status_code == 200
        assert got.json() == published.canary
        assert s.get("/v1/targets/prod/config?secrets=1").json()["data-pipeline"]["db"]["password"] == published.canary
        # without asking, the secrets token gets the masked config too
        assert s.get("/v1/targets/prod/config/data-pipeline.db.password").json() == "<secret>"
        denied = c.get("/v1/targets/prod/config/data-pipeline.db.password", params={"secrets": "true"})
        assert (denied.status_code, denied.json()) == (
            403,
            {"error": "this token may not read secrets (it has no 'secrets' scope)"},
        )
        # ETag / If-None-Match, per representation
        etag = r.headers["etag"]
        assert c.get("/v1/targets/prod/config", headers={"If-None-Match": etag}).status_code == 304
        assert c.get("/v1/targets/prod/config", headers={"If-None-Match": f'W/{etag}, "x"'}).status_code == 304
        opened = s.get("/v1/targets/prod/config?secrets=true", headers={"If-None-Match": etag})
        assert opened.status_code == 200
        assert opened.headers["etag"] != etag
        assert c.get("/v1/targets/prod@acme/config/inference-engine.model.temperature").status_code == 200
    assert published.canary not in agent.log_text()


@pytest.mark.parametrize(
    ("path", "code", "error"),
    [
        ("/v1/targets/dev/config", 404, "target 'dev' is not served by this agent"),
        ("/v1/targets/prod/config/nope.x", 400, "unknown module 'nope'"),
        ("/v1/targets/prod/config/inference-engine.model.nope", 404, ": inference-engine$.model.nope: no value"),
        ("/v1/targets/prod/config/../../etc/passwd", 400, "'..' and '.' segments are not part of a config path"),
        ("/v1/targets/prod/config/inference-engine/../x", 400, "'..' and '.' segments are not part of a config path"),
        ("/v1/targets/prod/config?secret=true", 400, "the only query parameter is secrets=true|false"),
        ("/v1/targets/prod/config?secrets=yes", 400, "the only query parameter is secrets=true|false"),
        ("/v1/targets/prod/config/..", 400, "'..' and '.' segments are not part of a config path"),
        ("/v1/targets/prod/config/%2e%2e", 400, "'..' and '.' segments are not part of a config path"),
        ("/v1/targets/prod/config/.", 400, "'..' and '.' segments are not part of a config path"),
        ("/etc/passwd", 404, "no such endpoint: GET /etc/passwd (see /v1/targets/TARGET/config)"),
    ],
)
def test_clear_4xx(published_agent: tuple[Agent, str, str], path: str, code: int, error: str) -> None:
    agent, read, _ = published_agent
    # http.client sends the path as written (httpx would resolve the ..)
    conn = http.client.HTTPConnection(agent.base.removeprefix("http://"), timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {read}"})
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    assert r.status == code, text
    assert error in json.loads(text)["error"]
    assert "Traceback" not in text


@pytest.fixture(scope="module")
def published_agent(published_base: Published, tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("agent-4xx")
    agent, read, full = start(published_base, tmp_path)
    with running(agent):
        yield agent, read, full
    assert published_base.canary not in agent.log_text()


def test_tokens(published_agent: tuple[Agent, str, str]) -> None:
    agent, read, _ = published_agent
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {read}"}, {"Authorization": read}):
        with httpx.Client(base_url=agent.base) as c:
            r = c.get("/healthz", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="llmcc-agent"'
        assert read not in r.text
    with agent.client(read) as c:
        assert c.post("/v1/targets/prod/config").status_code == 405
        # two Authorization headers are ambiguous (which one did a proxy check?): refused
        two = c.get("/healthz", headers=[("Authorization", "Bearer nope"), ("Authorization", f"Bearer {read}")])
        assert (two.status_code, two.json()) == (400, {"error": "more than one Authorization header"})
        big = c.get("/healthz", headers={"X-Big": "x" * 9000})
        assert (big.status_code, big.json()) == (431, {"error": "request headers over 8192 bytes"})
        huge = c.get("/healthz", headers={"X-Huge": "x" * 100_000})
        assert huge.status_code in (400, 431)
        metrics = c.get("/metrics").text
    assert 'llmcc_agent_requests_total{code="401",route="healthz"}' in metrics
    assert 'llmcc_agent_version{target="prod"} 1.0' in metrics


def test_the_token_file_must_be_private(published: Published, tmp_path: Path) -> None:
    args = agent_args(published, tmp_path)
    write_tokens(tmp_path / "tokens")
    (tmp_path / "tokens").chmod(0o640)
    agent = start_agent(tmp_path, tmp_path / "agent.log", *args)
    assert agent.proc.wait(timeout=60) == 2
    assert (
        f"llmcc: {tmp_path / 'tokens'}: the token file is readable or writable by group or others (mode 0640)"
        in agent.log_text()
    )
    (tmp_path / "tokens").write_text("short\n")
    (tmp_path / "tokens").chmod(0o600)
    agent = start_agent(tmp_path, tmp_path / "agent2.log", *args)
    assert agent.proc.wait(timeout=60) == 2
    assert f"{tmp_path / 'tokens'}:1: not a token" in agent.log_text()
    assert "short" not in agent.log_text()


def test_only_loopback_unless_unsafe(published: Published, tmp_path: Path) -> None:
    write_tokens(tmp_path / "tokens")
    agent = start_agent(tmp_path, tmp_path / "agent.log", *agent_args(published, tmp_path), "--listen", "0.0.0.0:0")
    assert agent.proc.wait(timeout=60) == 2
    assert "--listen 0.0.0.0:0 is not a loopback address" in agent.log_text()


def test_unix_socket_and_sse_across_a_publish(published: Published, tmp_path: Path) -> None:
    sock = tmp_path / "run" / "agent.sock"
    sock.parent.mkdir()
    agent, read, _ = start(published, tmp_path, socket_path=sock)
    events: list[dict] = []
    with running(agent):
        assert oct(sock.stat().st_mode & 0o777) == "0o660"
        connected = threading.Event()

        def subscribe() -> None:
            with agent.client(read) as c, c.stream("GET", "/v1/targets/prod/events", timeout=60) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                kind = None
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        events.append({"event": kind, **json.loads(line[6:])})
                        connected.set()
                        if kind == "version":
                            return

        t = threading.Thread(target=subscribe)
        t.start()
        assert connected.wait(30)
        set_value(published.root, "temperature: 0.3", "temperature: 0.25")
        publish(published.root, "prod")
        t.join(60)
        assert not t.is_alive()
        with agent.client(read) as c:
            assert c.get("/v1/targets/prod/config/inference-engine.model.temperature").json() == 0.25
        assert agent.stop() == 0
    assert not sock.exists()
    assert [e["event"] for e in events] == ["current", "version"]
    assert events[1]["version"] == 2
    assert events[1]["changed"] == ["inference-engine$.model.temperature"]


def test_sigterm_drains_open_streams_and_exits_0(published: Published, tmp_path: Path) -> None:
    agent, read, _ = start(published, tmp_path)
    with running(agent):
        ended = threading.Event()

        def subscribe() -> None:
            with agent.client(read) as c, c.stream("GET", "/v1/targets/prod/events", timeout=60) as r:
                for _ in r.iter_lines():
                    pass
            ended.set()

        t = threading.Thread(target=subscribe)
        t.start()
        wait_for(lambda: 'llmcc_agent_sse_subscribers{target="prod"} 1.0' in metrics(agent, read))
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(timeout=30) == 0
        assert ended.wait(30)
    assert "SIGTERM: draining" in agent.log_text()


def test_sighup_rereads_the_token_file(published: Published, tmp_path: Path) -> None:
    agent, read, _ = start(published, tmp_path)
    with running(agent):
        new_read, _ = write_tokens(tmp_path / "tokens")
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(agent, new_read) == 200)
        assert status(agent, read) == 401
        # emptied to revoke every token: every request is refused, none let through on old tokens
        (tmp_path / "tokens").write_text("# revoked\n")
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(agent, new_read) == 401)
        assert "SIGHUP: the token file holds no token: every request is refused" in agent.log_text()
        # back, then a file that fails its checks: fail closed too (its tokens may be known to others)
        newer, _ = write_tokens(tmp_path / "tokens")
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(agent, newer) == 200)
        (tmp_path / "tokens").chmod(0o644)
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(agent, newer) == 401)
        assert "SIGHUP: every request is refused until the token file passes its checks" in agent.log_text()
        # a symlink put in its place is refused as well
        (tmp_path / "tokens").chmod(0o600)
        (tmp_path / "tokens").rename(tmp_path / "real-tokens")
        (tmp_path / "tokens").symlink_to(tmp_path / "real-tokens")
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: agent.log_text().count("every request is refused until") == 2)
        assert status(agent, newer) == 401
        assert agent.stop() == 0


def test_store_outage_keeps_the_last_good_version(published: Published, tmp_path: Path) -> None:
    args = agent_args(published, tmp_path)
    write_tokens(tmp_path / "tokens")
    read = (tmp_path / "tokens").read_text().splitlines()[1]
    agent = start_agent(tmp_path, tmp_path / "agent.log", *args, "--max-age", "0.5")
    store = Path(published.store.removeprefix("file://"))
    with running(agent), agent.client(read) as c:
        assert c.get("/healthz").json()["targets"]["prod"]["stale"] is False
        shutil.move(store / "prod", tmp_path / "away")  # the store loses the target
        wait_for(lambda: c.get("/healthz").json()["targets"]["prod"]["last_error"] is not None)
        health = c.get("/healthz")
        assert health.status_code == 200  # a verified version is held
        prod = health.json()["targets"]["prod"]
        assert prod["version"] == 1
        wait_for(lambda: c.get("/healthz").json()["targets"]["prod"]["stale"] is True)
        assert c.get("/v1/targets/prod/config/inference-engine.model.temperature").json() == 0.3
        assert 'llmcc_agent_stale{target="prod"} 1.0' in c.get("/metrics").text
        shutil.move(tmp_path / "away", store / "prod")
        wait_for(lambda: c.get("/healthz").json()["targets"]["prod"]["stale"] is False)
        assert agent.stop() == 0
    assert "prod: update refused, keeping version 1" in agent.log_text()


@pytest.mark.parametrize(
    ("target", "published_here", "line"),
    [
        (
            "prdo",
            True,
            "llmcc: unknown target 'prdo' (did you mean 'prod'?); published in {store}: dev, prod, prod@acme\n",
        ),
        ("staging", True, "llmcc: unknown target 'staging'; published in {store}: dev, prod, prod@acme\n"),
        ("prod", False, "llmcc: unknown target 'prod'; published in {store}: nothing\n"),
    ],
)
def test_a_target_the_store_never_published_refuses_to_start(
    published: Published, tmp_path: Path, target: str, published_here: bool, line: str
) -> None:
    """A reachable store that lists other targets, or none, but not this one: exit 2, one line, no server."""
    if not published_here:  # a store that answers and holds nothing (a wrong prefix looks like this)
        store = Path(published.store.removeprefix("file://"))
        shutil.rmtree(store)
        store.mkdir()
    write_tokens(tmp_path / "tokens")
    agent = start_agent(tmp_path, tmp_path / "agent.log", *agent_args(published, tmp_path, target))
    assert agent.proc.wait(timeout=60) == 2
    assert agent.log_text() == line.format(store=published.store)


def test_a_cached_target_the_store_no_longer_lists_is_served(published: Published, tmp_path: Path) -> None:
    """The cache proves the target: a store that lost it is an outage (last good served), not a typo."""
    agent, read, _ = start(published, tmp_path)
    with running(agent), agent.client(read) as c:
        assert c.get("/healthz").status_code == 200
        assert agent.stop() == 0
    shutil.rmtree(Path(published.store.removeprefix("file://")) / "prod")
    agent = start_agent(tmp_path, tmp_path / "again.log", *agent_args(published, tmp_path))
    with running(agent), agent.client(read) as c:
        assert c.get("/v1/targets/prod/config/inference-engine.model.temperature").json() == 0.3
        assert agent.stop() == 0


def test_a_store_down_at_start_is_503_until_it_answers(published: Published, tmp_path: Path) -> None:
    """Down at start, no cache: the last-known-good rule (503, retried); an unknown target then is logged.

    The store's directory is there (a missing one is a typo: the next test); its target fails to read."""
    store = Path(published.store.removeprefix("file://")) / "prod"
    shutil.move(store, tmp_path / "away")
    store.write_text("not a target directory\n")
    agent, read, _ = start(published, tmp_path, "prod", "prdo")
    with running(agent), agent.client(read) as c:
        health = c.get("/healthz")
        assert health.status_code == 503
        assert health.json()["targets"]["prod"]["version"] is None
        r = c.get("/v1/targets/prod/config")
        assert (r.status_code, r.headers["retry-after"]) == (503, "1")
        store.unlink()
        shutil.move(tmp_path / "away", store)
        wait_for(lambda: c.get("/v1/targets/prod/config").status_code == 200)
        unknown = "unknown target 'prdo' (did you mean 'prod'?)"
        wait_for(lambda: unknown in (c.get("/healthz").json()["targets"]["prdo"]["last_error"] or ""))
        assert c.get("/v1/targets/prdo/config").status_code == 503
        assert agent.stop() == 0
    assert f"WARNING llmcc agent: prdo: no verified version yet (answering 503): {unknown}" in agent.log_text()


@pytest.mark.parametrize("make", ["missing", "file"])
def test_a_file_store_that_is_not_a_directory_refuses_to_start(published: Published, tmp_path: Path, make: str) -> None:
    """``--store`` naming a path that does not exist (a typo) or is a file: exit 2, one line, as
    ``pull`` says it, never a server answering 503 as if the store were down."""
    store = tmp_path / "no-such-store"
    if make == "file":
        store.write_text("")
    args = agent_args(published, tmp_path)
    args[args.index("--store") + 1] = str(store)
    write_tokens(tmp_path / "tokens")
    agent = start_agent(tmp_path, tmp_path / "agent.log", *args)
    assert agent.proc.wait(timeout=60) == 2
    why = "the directory does not exist" if make == "missing" else "it is not a directory"
    assert agent.log_text() == f"llmcc: file://{store}: no store at {store} ({why})\n"


def test_a_rollback_in_the_store_is_refused(published: Published, tmp_path: Path) -> None:
    set_value(published.root, "temperature: 0.3", "temperature: 0.2")
    publish(published.root, "prod")
    agent, read, _ = start(published, tmp_path)
    store = Path(published.store.removeprefix("file://")) / "prod"
    with running(agent), agent.client(read) as c:
        assert c.get("/v1/targets/prod/config").headers["x-llmcc-version"] == "2"
        (store / "00000002.dsse.json").unlink()
        wait_for(lambda: c.get("/healthz").json()["targets"]["prod"]["last_error"] is not None)
        assert c.get("/v1/targets/prod/config/inference-engine.model.temperature").json() == 0.2
        assert agent.stop() == 0


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: agent\r\n"])
def test_a_request_whose_headers_never_end_is_closed(published_agent: tuple[Agent, str, str], sent: bytes) -> None:
    # slowloris: without a header deadline an idle or half-sent request held its connection (and fd) forever
    agent, read, _ = published_agent
    host, _, port = agent.base.removeprefix("http://").rpartition(":")
    with socket.create_connection((host, int(port))) as s:
        s.settimeout(120)  # far above the deadline: a hang fails the test, a close passes it
        s.sendall(sent)
        assert s.recv(100) == b""
    assert status(agent, read) == 200  # the agent still answers


@pytest.mark.usefixtures("fake_aws")
def test_an_s3_bucket_that_does_not_exist_refuses_to_start(
    published: Published, tmp_path: Path, moto_server: Service
) -> None:
    """As a missing file store: a deleted or mistyped bucket is no store (exit 2, as ``pull``), not an
    outage to answer 503 for ever (was: the agent ran, 503, retrying)."""
    args = agent_args(published, tmp_path)
    args[args.index("--store") + 1] = "s3://no-such-bucket-here/bundles"
    write_tokens(tmp_path / "tokens")
    env = {**child_env(), "AWS_ENDPOINT_URL_S3": moto_server.url}
    agent = start_agent(tmp_path, tmp_path / "agent.log", *args, env=env)
    assert agent.proc.wait(timeout=60) == 2
    assert agent.log_text() == (
        "llmcc: s3://no-such-bucket-here/bundles: no such bucket no-such-bucket-here (the bucket does not exist)\n"
    )
