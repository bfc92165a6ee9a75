"""The agent's listening socket and its life: uvicorn, signals, drain (issue 12 §2, §4).

- **Where.** A TCP address must be loopback (``127.0.0.0/8``, ``::1``, or a
  name that resolves only to those) unless the caller passes the unsafe flag;
  a unix socket is created mode 0660 (a stale socket left by a killed agent is
  replaced; any other file at the path is refused) and removed on exit.
- **SIGTERM** (and SIGINT): stop accepting, end the event streams, let requests
  in flight finish (up to ``drain_seconds``), exit 0 (130 for SIGINT).
- **SIGHUP**: re-read the token file. Fail closed: a file emptied of tokens
  revokes them all, and a file that fails its checks (its tokens may be known to
  others, or it is not the file meant) is logged and every request is refused
  until a SIGHUP reads a good one; the tokens held before are never kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from compiler.agent.access import Tokens, read_tokens
from compiler.agent.app import AgentState, create_app
from compiler.errors import LlmccError, UsageError

log = logging.getLogger("llmcc.agent")

HEADER_TIMEOUT_SECONDS = 10.0


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` as (host, port).

    Raises:
        UsageError: not of that form, or a port outside 0-65535.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise UsageError(f"--listen {text}: expected HOST:PORT, e.g. 127.0.0.1:2772")
    return host.removeprefix("[").removesuffix("]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def bind_tcp(host: str, port: int, *, unsafe_non_loopback: bool) -> socket.socket:
    """A listening TCP socket.

    Raises:
        UsageError: a non-loopback address without the unsafe flag, or the address is in use.
    """
    if not is_loopback(host):
        if not unsafe_non_loopback:
            raise UsageError(
                f"--listen {host}:{port} is not a loopback address: the agent serves config in plain HTTP; "
                "pass --unsafe-listen-non-loopback to listen there anyway"
            )
        log.warning(
            "listening on non-loopback %s:%d (plain HTTP): anyone who can reach it and holds a token reads the config",
            host,
            port,
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given: asyncio sets TCP_NODELAY only on sockets whose proto says TCP; without it
    # each response's second write waits for the client's delayed ACK (40 ms on Linux)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UsageError(f"--listen {host}:{port}: cannot listen: {e.strerror or e}") from None
    sock.listen(1024)
    return sock


def bind_unix(path: Path) -> socket.socket:
    """A listening unix socket at ``path``, mode 0660.

    Raises:
        UsageError: something other than a stale socket is at ``path``, or it cannot be created.
    """
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if not stat.S_ISSOCK(st.st_mode):
            raise UsageError(f"--socket {path}: a file that is not a socket is there; remove it or pick another path")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            os.unlink(path)  # a socket nobody listens on: left by an agent that was killed
        else:
            raise UsageError(f"--socket {path}: another process is listening there")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)  # created 0660: no window in which others could connect
    try:
        sock.bind(str(path))
    except OSError as e:
        sock.close()
        raise UsageError(f"--socket {path}: cannot listen: {e.strerror or e}") from None
    finally:
        os.umask(old)
    sock.listen(1024)
    return sock


class _Protocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on the request line and headers (slowloris).

    uvicorn times out only idle keep-alive connections: one that is opened and sends
    nothing, or headers a byte at a time, was held (with its fd) for ever, before any
    token is checked. Each request's headers must now be in within
    :data:`HEADER_TIMEOUT_SECONDS` of the connection or of the request's first byte.
    """

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn, with our exit: no re-raised signal after the drain (uvicorn would die of SIGTERM)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.received: list[int] = []
        self._on_exit = on_exit

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        original = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, handler in original.items():
                signal.signal(s, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.received.append(sig)
        if not self.should_exit:
            log.info("%s: draining", signal.Signals(sig).name)
        self.should_exit = True
        self._on_exit()


def serve(state: AgentState, sock: socket.socket, *, token_file: Path, drain_seconds: float) -> int:
    """Serve until SIGTERM/SIGINT; the exit code (0 for SIGTERM, 130 for SIGINT)."""
    app = create_app(state)
    config = uvicorn.Config(
        app,
        http=_Protocol,
        loop="asyncio",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=int(max(1, drain_seconds)),
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=16384,
    )

    def on_exit() -> None:
        loop = state.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(state.close_streams)

    server = _Server(config, on_exit)

    def reload_tokens(_sig: int, _frame: FrameType | None) -> None:
        try:
            tokens: Tokens = read_tokens(token_file, allow_empty=True)
        except LlmccError as e:
            state.tokens = Tokens(())
            log.error("SIGHUP: every request is refused until the token file passes its checks: %s", e)
            return
        state.tokens = tokens
        if not tokens.entries:
            log.warning("SIGHUP: the token file holds no token: every request is refused")
            return
        log.info("SIGHUP: token file re-read (%d tokens)", len(tokens.entries))

    previous = signal.signal(signal.SIGHUP, reload_tokens)
    if early_hup:  # a SIGHUP that came while the agent was starting
        reload_tokens(signal.SIGHUP, None)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGHUP, previous)
    return 130 if signal.SIGINT in server.received else 0


early_hup: list[int] = []


def hold_sighup() -> None:
    """Until :func:`serve` runs, a SIGHUP is remembered (its default action would end the agent)."""
    signal.signal(signal.SIGHUP, lambda sig, _frame: early_hup.append(sig))
