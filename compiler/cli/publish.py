"""``llmcc publish``: compile, sign and push each target as its next version.

Idempotent for an unchanged commit; refuses a dirty working tree unless
``--allow-dirty``; signs with any key (trust is checked by readers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from compiler.build import BuildRequest, build_targets
from compiler.bundle.dsse import Signer, load_signing_key
from compiler.cli import Context
from compiler.cli._failures import raise_failures
from compiler.cli._repo import add_identity_arg, open_repository
from compiler.cli._store import add_store_args, open_store_from, resolve
from compiler.errors import LlmccError
from compiler.events import event_line, published_event
from compiler.jsontypes import JSONObject
from compiler.publish import publish_target
from compiler.repository import Repository
from compiler.secrets.access import KeyFileCheck
from compiler.secrets.identity import Identities
from compiler.secrets.sealing import KeyFileSealer
from compiler.sources.base import SourceInfo

SIGNING_KEY_ENV = "LLMCC_SIGNING_KEY_FILE"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_store_args(p)
    p.add_argument("-t", "--target", action="append", metavar="T", help="only this target (repeatable)")
    p.add_argument(
        "--signing-key",
        metavar="FILE",
        type=Path,
        help=f"Ed25519 private key, PKCS#8 PEM (default: ${SIGNING_KEY_ENV})",
    )
    p.add_argument("--allow-dirty", action="store_true", help="publish even if tracked files have uncommitted changes")
    p.add_argument(
        "--events",
        metavar="FILE",
        type=Path,
        help="append one CloudEvents 1.0 JSON line per new version to FILE",
    )
    add_identity_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    signer = _signing_key(args, ctx.root)
    repo, source, ids = open_repository(ctx, args, need_secrets=True)
    if source is None and not args.allow_dirty:
        raise LlmccError(f"{ctx.root}: not a git repository, so no commit to record; pass --allow-dirty")
    if source is not None and source.dirty and not args.allow_dirty:
        raise LlmccError("tracked files have uncommitted changes; commit them or pass --allow-dirty")
    store = open_store_from(args, ctx.root, repo.project)
    events_file = resolve(ctx.root, args.events) if args.events else None
    if events_file is not None:
        _append(events_file, b"")  # fail before publishing, not after: a lost event cannot be re-sent
    bodies = _compile(repo, source, ids, args, ctx)
    for target, body in bodies:
        ctx.progress(f"publishing {target}")
        result = publish_target(store, target, body, signer)
        if not result.created:
            print(f"{target}: unchanged at version {result.version} {result.digest}")
            continue
        print(f"{target}: published version {result.version} {result.digest}")
        if events_file is not None:
            event = published_event(
                project=repo.project.name,
                target=target,
                version=result.version,
                digest=result.digest,
                commit=source.commit if source else None,
                now=datetime.now(UTC),
            )
            _append(events_file, event_line(event))
    return 0


def _signing_key(args: argparse.Namespace, root: Path) -> Signer:
    path = resolve(root, args.signing_key) if args.signing_key else None
    if path is None and os.environ.get(SIGNING_KEY_ENV):
        path = Path(os.environ[SIGNING_KEY_ENV])
    if path is None:
        raise LlmccError(f"no signing key: pass --signing-key FILE or set {SIGNING_KEY_ENV}")
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise LlmccError(f"{path}: cannot read the signing key: {e.strerror or e}") from e
    return load_signing_key(pem, where=str(path))


def _compile(
    repo: Repository, source: SourceInfo | None, ids: Identities, args: argparse.Namespace, ctx: Context
) -> list[tuple[str, JSONObject]]:
    """Every selected target's bundle body (version and previous unset); any failure raises, naming them all."""
    request = BuildRequest(
        repo=repo,
        source=source,
        keep_bytes=True,
        seal=KeyFileSealer(repo.tree, repo.project, ids if ids else None),
        check_keys=KeyFileCheck(repo.tree, repo.project),
        progress=ctx.progress,
    )
    outcomes = build_targets(request, repo.project.select(args.target))
    raise_failures(outcomes)
    diags = [d for o in outcomes for d in o.diagnostics]
    bodies: list[tuple[str, JSONObject]] = []
    for outcome in outcomes:
        assert outcome.data is not None  # keep_bytes, and no target failed
        body = json.loads(outcome.data)
        if not isinstance(body, dict):
            raise TypeError(f"{outcome.target}: compiled bundle is not a JSON object")
        bodies.append((outcome.target, body))
    for d in diags:  # warnings only
        print(d.format(), file=sys.stderr)
    return bodies


def _append(path: Path, line: bytes) -> None:
    """Append one line with one write (O_APPEND), so concurrent writers do not interleave."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # like the store's own directory
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as e:
        raise LlmccError(f"{path}: cannot append the event: {e.strerror or e}") from e
