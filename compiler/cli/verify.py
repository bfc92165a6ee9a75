"""``llmcc verify``: signatures, digests, the hash chain and the signed pointer of every published target.

With ``--since-state``, also against the versions this reader accepted
before (the high-water marks ``pull`` keeps), which it then advances; the
targets it has marks for are checked even if the store no longer lists them.
The targets of llmcc.yaml that have nothing published are listed (not a
failure: a new target is published by the next run; ``--target T`` makes it one).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from compiler.cli._context import MANIFEST, Context
from compiler.cli._output import add_format_arg, print_json
from compiler.cli._store import (
    add_state_args,
    add_store_args,
    add_trust_args,
    load_keyring,
    open_store_from,
    read_project,
    seen_file,
)
from compiler.errors import VerificationError


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_store_args(p)
    p.add_argument("-t", "--target", action="append", metavar="T", help="only this target (repeatable)")
    add_trust_args(p)
    p.add_argument(
        "--git",
        action="store_true",
        help="also check each version's source commit exists here and follows the previous one's",
    )
    p.add_argument(
        "--since-state",
        action="store_true",
        help="also refuse anything older than what this reader accepted before (see --state-dir), then record it",
    )
    add_state_args(p)
    add_format_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.audit.provenance_check import check_versions_against_git
    from compiler.freshness import Seen
    from compiler.project import parse_target
    from compiler.reader import check_known, read_target
    from compiler.storage import CorruptObjectError

    project = read_project(ctx.root, required=False)
    keyring = load_keyring(args, ctx.root, project)
    store = open_store_from(args, ctx.root, project)
    marks_file = seen_file(args, ctx.root, store) if args.since_state else None
    marks = marks_file.load() if marks_file else {}
    named = [parse_target(t).name for t in args.target or []]
    defined = {t.name for t in project.targets()} if project is not None else set()
    # a named target nothing proves (store, llmcc.yaml, this reader's marks) is a typo: exit 2, before any check
    check_known(store, [t for t in named if t not in marks], defined=defined)
    targets = named or sorted({*store.targets(), *marks})
    if not targets:
        raise VerificationError(f"{store.url}: no published bundles to verify")
    # targets of llmcc.yaml the store has nothing of: listed, so a missing one is seen (issue 13 §6)
    unpublished = [] if named else sorted(defined - set(targets))
    now = datetime.now(UTC)
    failures: list[str] = []
    advanced: dict[str, Seen] = {}
    report: list[dict[str, object]] = []
    for target in targets:
        ctx.progress(f"verifying {target}")
        try:
            state = read_target(store, target, keyring, now=now, seen=marks.get(target), full=True)
            if state.latest is None or state.seen is None or state.pointer is None:
                raise VerificationError(f"{target}: nothing published in {store.url}")
        except (VerificationError, CorruptObjectError) as e:
            failures.append(str(e))
            report.append({"target": target, "status": "failed", "errors": [str(e)]})
            continue
        chain, latest = state.chain, state.latest
        if args.git:
            problems = [
                f"{target}: {p}"
                for p in check_versions_against_git(
                    ctx.root, [(b.version, _commit(b.metadata)) for b in chain], pointer_commit=state.pointer.commit
                )
            ]
            if problems:
                failures += problems
                report.append({"target": target, "status": "failed", "errors": problems})
                continue
        advanced[target] = state.seen
        expires = state.pointer.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        commit = f", at commit {state.pointer.commit[:12]}" if state.pointer.commit else ""
        report.append(
            {
                "target": target,
                "status": "verified",
                "versions": latest.version,
                "latest_digest": latest.digest,
                "pointer_expires": expires,
                "pointer_commit": state.pointer.commit,
                "git_checked": bool(args.git),
            }
        )
        if args.format == "text":
            checked = " and git ancestry" if args.git else ""
            print(
                f"{target}: versions 1-{latest.version} verified{checked}, latest {latest.digest}, "
                f"pointer valid until {expires}{commit}"
            )
    ctx.clear_progress()
    if marks_file is not None and advanced:
        marks_file.advance(advanced)
    report += [{"target": t, "status": "unpublished"} for t in unpublished]
    if args.format == "json":
        code = VerificationError.exit_code if failures else 0
        print_json({"ok": not failures, "exit_code": code, "store": store.url, "targets": report})
        return code
    for target in unpublished:
        print(f"{target}: nothing published (a target of {MANIFEST})")
    if failures:
        # every failure on its own line; the last one is the error the boundary prints (exit 3)
        for message in failures[:-1]:
            print(f"llmcc: {message}", file=sys.stderr)
        raise VerificationError(failures[-1])
    return 0


def _commit(metadata: object) -> str:
    """The ``metadata.source.commit`` of a verified bundle ('' when it has none)."""
    source = metadata.get("source") if isinstance(metadata, dict) else None
    commit = source.get("commit") if isinstance(source, dict) else None
    return commit if isinstance(commit, str) else ""
