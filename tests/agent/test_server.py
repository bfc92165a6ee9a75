"""The agent's sockets (compiler/agent/server.py), in process."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from compiler.agent.server import bind_tcp, bind_unix, is_loopback, parse_listen
from compiler.errors import UsageError


def test_tcp_responses_are_not_held_for_the_clients_delayed_ack() -> None:
    # asyncio turns on TCP_NODELAY only when the socket's proto says TCP; without it every
    # response's second write waited for a delayed ACK: 44 ms per read in the benchmark
    sock = bind_tcp("127.0.0.1", 0, unsafe_non_loopback=False)
    with sock:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("127.0.0.1:2772", ("127.0.0.1", 2772)), ("[::1]:80", ("::1", 80)), ("localhost:0", ("localhost", 0))],
)
def test_parse_listen(text: str, parsed: tuple[str, int]) -> None:
    assert parse_listen(text) == parsed


@pytest.mark.parametrize("text", ["2772", ":2772", "host:", "host:99999", "host:x"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        parse_listen(text)


def test_loopback() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.9.9.9")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")  # noqa: S104 - the point of the test
    assert not is_loopback("10.0.0.1")
    with pytest.raises(UsageError, match="pass --unsafe-listen-non-loopback"):
        bind_tcp("0.0.0.0", 0, unsafe_non_loopback=False)  # noqa: S104 - refused


def test_address_in_use() -> None:
    with bind_tcp("127.0.0.1", 0, unsafe_non_loopback=False) as first:
        port = first.getsockname()[1]
        with pytest.raises(UsageError, match=f"--listen 127.0.0.1:{port}: cannot listen"):
            bind_tcp("127.0.0.1", port, unsafe_non_loopback=False)


def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    sock = bind_unix(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    with pytest.raises(UsageError, match="another process is listening there"):
        bind_unix(path)
    sock.close()  # a stale socket: replaced
    bind_unix(path).close()
    os.unlink(path)
    path.write_text("not a socket")
    with pytest.raises(UsageError, match="a file that is not a socket is there"):
        bind_unix(path)
    with pytest.raises(UsageError, match="cannot listen"):
        bind_unix(tmp_path / "missing" / "agent.sock")
