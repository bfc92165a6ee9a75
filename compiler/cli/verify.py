"""``llmcc verify``: signatures, digests and the hash chain of every published version."""

from __future__ import annotations

import argparse
import sys

from compiler.audit.provenance_check import check_versions_against_git
from compiler.cli import Context
from compiler.cli._store import add_store_args, add_trust_args, load_keyring, open_store_from, read_project
from compiler.errors import VerificationError
from compiler.project import parse_target
from compiler.storage import CorruptObjectError
from compiler.verify import verify_chain


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_store_args(p)
    p.add_argument("-t", "--target", action="append", metavar="T", help="only this target (repeatable)")
    add_trust_args(p)
    p.add_argument(
        "--git",
        action="store_true",
        help="also check each version's source commit exists here and follows the previous one's",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    project = read_project(ctx.root, required=False)
    keyring = load_keyring(args, ctx.root, project)
    store = open_store_from(args, ctx.root, project)
    targets = [parse_target(t).name for t in args.target] if args.target else store.targets()
    if not targets:
        raise VerificationError(f"{store.url}: no published bundles to verify")
    failures: list[str] = []
    for target in targets:
        ctx.progress(f"verifying {target}")
        try:
            versions = store.versions(target)
            if not versions:
                raise VerificationError(f"{target}: nothing published in {store.url}")
            chain = verify_chain(target, [(v, store.read(target, v)) for v in versions], keyring)
        except (VerificationError, CorruptObjectError) as e:
            failures.append(str(e))
            continue
        latest = chain[-1]
        if args.git:
            problems = check_versions_against_git(ctx.root, [(b.version, _commit(b.metadata)) for b in chain])
            if problems:
                failures += [f"{target}: {p}" for p in problems]
                continue
        checked = " and git ancestry" if args.git else ""
        print(f"{target}: versions 1-{latest.version} verified{checked}, latest {latest.digest}")
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
