"""``llmcc publish``: compile, sign and push each target as its next version, and move its signed pointer.

A target whose content did not change gets no new version: its signed
pointer records the commit instead (issue 13 §4). Idempotent for an unchanged
commit; refuses a dirty working tree unless
``--allow-dirty``; refuses a signing key outside ``signing.trusted`` and a
stored chain that does not verify, before writing anything (issue 9 §2).
``--refresh-pointer`` only re-signs each target's pointer with a new expiry
(the scheduled CI job): no compile, no git.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli._context import Context
from compiler.cli._output import add_format_arg, print_json
from compiler.cli._repo import add_identity_arg, add_shard_arg, open_repository, select_targets, shard_summary
from compiler.cli._store import (
    add_store_args,
    add_trust_args,
    check_ci_store,
    load_keyring,
    open_store_from,
    read_project,
    resolve,
)
from compiler.errors import LlmccError, VerificationError
from compiler.fileops import is_key_text

if TYPE_CHECKING:
    from compiler.bundle.dsse import Keyring, Signer
    from compiler.compile.repository import Repository
    from compiler.jsontypes import JSONObject
    from compiler.project import Project, Target
    from compiler.secrets.identity import Identities
    from compiler.sources.base import SourceInfo

SIGNING_KEY_ENV = "LLMCC_SIGNING_KEY_FILE"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_store_args(p)
    p.add_argument("-t", "--target", action="append", metavar="T", help="only this target (repeatable)")
    add_shard_arg(p)
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
        help="append one CloudEvents 1.0 JSON line to FILE per new version, "
        "and per target that a new commit left unchanged",
    )
    p.add_argument(
        "--refresh-pointer",
        action="store_true",
        help="only re-sign each published target's pointer with a new expiry (storage.pointer_expiry); no compile",
    )
    p.add_argument(
        "--allow-worktree-store",
        action="store_true",
        help="in CI (CI=true), publish to a file:// store inside the work tree anyway (the job keeps it)",
    )
    add_trust_args(p)
    add_identity_arg(p)
    add_format_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.events import UNCHANGED, event_line, published_event
    from compiler.publish import publish_target

    signer = _signing_key(args, ctx.root)
    if args.refresh_pointer:
        return _refresh(args, ctx, signer)
    repo, source, ids = open_repository(ctx, args, need_secrets=True)
    trusted = _trusted_signer(args, ctx, repo.project, signer)
    if source is None and not args.allow_dirty:
        raise LlmccError(f"{ctx.root}: not a git repository, so no commit to record; pass --allow-dirty")
    if source is not None and source.dirty and not args.allow_dirty:
        raise LlmccError("tracked files have uncommitted changes; commit them or pass --allow-dirty")
    store = open_store_from(args, ctx.root, repo.project)
    check_ci_store(store, ctx.root, allowed=args.allow_worktree_store)
    events_file = resolve(ctx.root, args.events) if args.events else None
    if events_file is not None:
        _append(events_file, b"")  # fail before publishing, not after: a lost event cannot be re-sent
    selected, targets = select_targets(repo.project, args)
    bodies = _compile(repo, source, ids, targets, ctx)
    done: list[dict[str, object]] = []
    for target, body in bodies:
        ctx.progress(f"publishing {target}")
        result = publish_target(
            store,
            target,
            body,
            signer,
            trusted=trusted,
            now=datetime.now(UTC),
            expires_after=repo.project.manifest.storage.pointer_expiry_delta,
            behind=lambda commit, recorded: _behind(ctx.root, commit, recorded),
        )
        commit = source.commit if source else None
        recorded = not result.created and result.recorded and commit is not None
        status = "published" if result.created else "unchanged"
        entry: dict[str, object] = {"target": target, "status": status, "version": result.version}
        entry["digest"] = result.digest
        if recorded:
            entry["commit"] = commit
        done.append(entry)
        if args.format == "text":
            if result.created:
                print(f"{target}: published version {result.version} {result.digest}")
            else:
                now_at = f", now at commit {commit[:12]}" if recorded and commit else ""
                print(f"{target}: unchanged at version {result.version}{now_at} {result.digest}")
        if not result.created and not result.recorded:
            continue
        if events_file is not None:
            event = published_event(
                project=repo.project.name,
                target=target,
                version=result.version,
                digest=result.digest,
                commit=commit,
                now=datetime.now(UTC),
                **({} if result.created else {"kind": UNCHANGED}),
            )
            _append(events_file, event_line(event))
    _finish(args, ctx, done, len(selected))
    return 0


def _finish(args: argparse.Namespace, ctx: Context, done: list[dict[str, object]], selected: int) -> None:
    """The JSON document, or under ``--shard`` the summary line naming the shard."""
    shard = shard_summary(args.shard, len(done), selected)
    if args.format == "json":
        print_json({"ok": True, "exit_code": 0, "targets": done, **({"shard": shard} if shard else {})})
    elif shard is not None and not ctx.quiet:
        counts = Counter(str(entry["status"]) for entry in done)
        tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        print(
            f"llmcc: shard {args.shard}: {len(done)} of {selected} targets{f' ({tally})' if tally else ''}",
            file=sys.stderr,
        )


def _refresh(args: argparse.Namespace, ctx: Context, signer: Signer) -> int:
    """Re-sign the pointer of every selected target that has something published."""
    from compiler.publish import refresh_pointer

    project = read_project(ctx.root, required=True)
    assert project is not None  # required=True
    trusted = _trusted_signer(args, ctx, project, signer)
    store = open_store_from(args, ctx.root, project)
    check_ci_store(store, ctx.root, allowed=args.allow_worktree_store)
    published = set(store.targets())
    selected, part = select_targets(project, args)
    targets = [t.name for t in part if args.target or t.name in published]
    if not targets and (part or args.shard is None):  # an empty shard (more shards than targets) has nothing to do
        raise VerificationError(f"{store.url}: nothing published, so no pointer to refresh")
    done: list[dict[str, object]] = []
    for target in targets:
        ctx.progress(f"refreshing the pointer of {target}")
        pointer = refresh_pointer(
            store,
            target,
            signer,
            trusted=trusted,
            now=datetime.now(UTC),
            expires_after=project.manifest.storage.pointer_expiry_delta,
        )
        until = pointer.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        done.append({"target": target, "status": "pointer-refreshed", "version": pointer.version, "expires": until})
        if args.format == "text":
            print(f"{target}: pointer to version {pointer.version} valid until {until}")
    _finish(args, ctx, done, len(selected))
    return 0


def _trusted_signer(args: argparse.Namespace, ctx: Context, project: Project, signer: Signer) -> Keyring:
    """The trusted keys, once the signing key is among them (before anything is written).

    ``--trusted-key`` cannot widen what a publisher may sign with: readers take
    ``signing.trusted`` of llmcc.yaml, so the key must be there whenever it lists any.
    """
    from compiler.publish import check_signer_trusted

    trusted = load_keyring(args, ctx.root, project)
    where = str(args.signing_key) if args.signing_key else f"${SIGNING_KEY_ENV}"
    check_signer_trusted(signer, trusted, where=where)
    if args.trusted_key and project.manifest.signing.trusted:
        check_signer_trusted(signer, load_keyring(argparse.Namespace(trusted_key=None), ctx.root, project), where=where)
    return trusted


def _signing_key(args: argparse.Namespace, root: Path) -> Signer:
    from compiler.bundle.dsse import load_signing_key

    path = resolve(root, args.signing_key) if args.signing_key else None
    if path is None and os.environ.get(SIGNING_KEY_ENV):
        path = Path(os.environ[SIGNING_KEY_ENV])
    if path is None:
        raise LlmccError(f"no signing key: pass --signing-key FILE or set {SIGNING_KEY_ENV}")
    if is_key_text(path):
        raise LlmccError(
            f"--signing-key / {SIGNING_KEY_ENV} holds key material, not the path of a key file (not shown): "
            "pass the file's path"
        )
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise LlmccError(f"{path}: cannot read the signing key: {e.strerror or e}") from e
    return load_signing_key(pem, where=str(path))


def _compile(
    repo: Repository, source: SourceInfo | None, ids: Identities, targets: list[Target], ctx: Context
) -> list[tuple[str, JSONObject]]:
    """Every selected target's bundle body (version and previous unset); any failure raises, naming them all."""
    from compiler.cli._failures import raise_failures
    from compiler.compile.build import BuildRequest, build_targets, iter_diagnostics
    from compiler.secrets.access import KeyFileCheck
    from compiler.secrets.sealing import KeyFileSealer

    request = BuildRequest(
        repo=repo,
        source=source,
        keep_bytes=True,
        seal=KeyFileSealer(repo.tree, repo.project, ids if ids else None),
        check_keys=KeyFileCheck(repo.tree, repo.project),
        progress=ctx.progress,
    )
    outcomes = build_targets(request, targets)
    raise_failures(outcomes)
    diags = list(iter_diagnostics(outcomes))
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


def _behind(root: Path, commit: str, recorded: str) -> bool:
    """Whether ``commit`` is an ancestor of ``recorded`` here (False when git does not know ``recorded``)."""
    from compiler.audit.revisions import is_ancestor
    from compiler.errors import InputError

    try:
        return is_ancestor(root, commit, recorded)
    except InputError:
        return False  # a pointer commit this clone lacks (shallow, another repository): nothing to compare


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
