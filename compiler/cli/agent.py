"""``llmcc agent``: the sidecar that serves verified config over local HTTP (issue 12).

One source per ``--target`` polls the store through the verification every
reader uses; the HTTP API is in :mod:`compiler.agent.app`, the socket and
signals in :mod:`compiler.agent.server`. Needs the ``cli`` and ``agent``
extras (``pip install 'llm-config-compiler[cli,agent]'``; ``agent``: uvicorn,
Starlette, prometheus_client).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli import Context
from compiler.cli._commands import extras_for
from compiler.cli._store import (
    add_store_args,
    add_trust_args,
    open_store_from,
    read_project,
    resolve,
    trusted_key_paths,
)
from compiler.errors import UsageError
from compiler.extras import needs_extra

if TYPE_CHECKING:
    from compiler.storage.base import Store

DEFAULT_LISTEN = "127.0.0.1:2772"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-t", "--target", action="append", required=True, metavar="TARGET", help="a target to serve, repeatable"
    )
    add_store_args(p)
    add_trust_args(p)
    p.add_argument(
        "--identity", metavar="FILE", type=Path, help="age identity to open secrets (default: $SOPS_AGE_KEY_FILE)"
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        type=Path,
        help="the clients' last good versions (ciphertext) and high-water marks (default: $XDG_STATE_HOME/llmcc/agent)",
    )
    p.add_argument("--token-file", metavar="FILE", type=Path, required=True, help="bearer tokens, mode 0600")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--listen", metavar="HOST:PORT", help=f"TCP address (default {DEFAULT_LISTEN}; loopback)")
    where.add_argument("--socket", metavar="PATH", type=Path, help="a unix socket instead of TCP")
    p.add_argument(
        "--unsafe-listen-non-loopback",
        action="store_true",
        help="allow --listen on an address other hosts can reach (plain HTTP)",
    )
    p.add_argument("--poll-interval", type=_seconds, default=30.0, metavar="SECONDS", help="default 30")
    p.add_argument(
        "--max-age", type=_seconds, metavar="SECONDS", help="report stale after this long unconfirmed (default 3 polls)"
    )
    p.add_argument("--drain", type=_seconds, default=10.0, metavar="SECONDS", help="SIGTERM grace period (default 10)")


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, at least 0, in ASCII (``float`` also takes
    other scripts' digits, "nan", "inf" and "1_0")."""
    if not text.isascii() or "_" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def run(args: argparse.Namespace, ctx: Context) -> int:
    try:
        from compiler.agent.access import read_tokens
        from compiler.agent.app import AgentState
        from compiler.agent.clientsource import ClientSource
        from compiler.agent.server import bind_tcp, bind_unix, hold_sighup, parse_listen, serve
        from compiler.client import ConfigClient
    except ImportError as e:  # the cli extra is there (main checked): name both, as main does without it
        if (e.name or "").partition(".")[0] == "compiler":
            raise  # a module of ours missing is a bug (exit 70), not an extra to install
        raise UsageError(needs_extra("agent", *extras_for("agent"))) from None
    from compiler.project import parse_target  # imported here: --help loads no pydantic or cryptography
    from compiler.storage.seen import default_state_dir

    hold_sighup()
    targets = list(dict.fromkeys(parse_target(t).name for t in args.target))
    if args.poll_interval < 0.1:
        raise UsageError("--poll-interval must be at least 0.1 seconds")
    max_age = args.max_age if args.max_age is not None else 3 * args.poll_interval
    token_file = resolve(ctx.root, args.token_file)
    tokens = read_tokens(token_file)
    project = read_project(ctx.root, required=False)
    store = open_store_from(args, ctx.root, project)
    _refuse_missing_store(store)
    trusted = trusted_key_paths(args, ctx.root, project)
    identity = resolve(ctx.root, args.identity) if args.identity else os.environ.get("SOPS_AGE_KEY_FILE") or None
    cache_dir = resolve(ctx.root, args.cache_dir) if args.cache_dir else default_state_dir(os.environ).parent / "agent"
    _configure_logging()
    sources = {
        t: ClientSource(
            ConfigClient(
                store, t, trusted, identity=identity, cache_dir=cache_dir,
                poll_interval=args.poll_interval, max_age=max_age,
            ),
            t,
            retry_seconds=args.poll_interval,
        )
        for t in targets
    }  # fmt: skip
    if args.socket is not None:
        sock = bind_unix(resolve(ctx.root, args.socket))
        where = f"unix:{args.socket}"
    else:
        host, port = parse_listen(args.listen or DEFAULT_LISTEN)
        sock = bind_tcp(host, port, unsafe_non_loopback=args.unsafe_listen_non_loopback)
        bound = sock.getsockname()
        where = f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}"
    try:
        for source in sources.values():
            source.start()
        logging.getLogger("llmcc.agent").info("listening on %s, targets %s", where, ", ".join(targets))
        return serve(AgentState(sources=sources, tokens=tokens), sock, token_file=token_file, drain_seconds=args.drain)
    finally:
        for source in sources.values():
            source.stop()
        if args.socket is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(resolve(ctx.root, args.socket))


def _refuse_missing_store(store: Store) -> None:
    """A store that does not exist (a file store's directory, an S3 bucket) is a typo, not an outage:
    exit 2 at start, as ``pull``. A store that cannot be reached is the last-known-good rule's."""
    from compiler.errors import StorageError
    from compiler.storage.base import NoStoreError
    from compiler.storage.file import FileStore

    if isinstance(store, FileStore):
        store.check_root()  # a path that is a file is refused too
        return
    try:
        store.targets()
    except NoStoreError:
        raise
    except StorageError:
        pass  # down or refusing now: served from the cache, else 503 until it answers


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s llmcc agent: %(message)s"))
    logger = logging.getLogger("llmcc.agent")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    plain = logging.StreamHandler(sys.stderr)  # the runtime client's lines say "llmcc client:" themselves
    plain.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    client = logging.getLogger("llmcc.client")  # never values (issue 11 §8)
    client.handlers[:] = [plain]
    client.setLevel(logging.INFO)
    client.propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = [handler]
        logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger(name).propagate = False
