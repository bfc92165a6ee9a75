"""`llmcc diff [BASE [HEAD]]`: what a change does to the effective config of every target.

BASE defaults to the merge-base of HEAD with the default branch (see
``compiler.audit.revisions.default_base``: on the default branch that is HEAD,
so the diff shows uncommitted changes); HEAD defaults to the working tree.
Both sides are compiled in memory from git objects; nothing is checked out.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from compiler.cli._context import Context, colour_enabled
from compiler.cli._repo import add_identity_arg, identities, open_tree

if TYPE_CHECKING:
    from compiler.diff.compute import FileIds, Side
    from compiler.diff.sharing import ParseCache
    from compiler.repository import Repository
    from compiler.secrets.identity import Identities
    from compiler.sources.base import SourceTree


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", nargs="?", metavar="BASE", help="git revision (default: merge-base with the default branch)")
    p.add_argument("head", nargs="?", metavar="HEAD", help="git revision (default: the working tree)")
    p.add_argument("-t", "--target", action="append", metavar="T", help="only this target (repeatable)")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when anything changed")
    add_identity_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    import sys

    from compiler.audit.revisions import default_base, resolve_commit
    from compiler.diff.compute import compute_diff
    from compiler.diff.render import render_json, render_markdown, render_text
    from compiler.diff.sharing import ParseCache

    ids = identities(args)
    cache = ParseCache()
    if args.base is not None:
        base = _rev_side(ctx, args.base, args.base, cache, ids)
    else:
        commit = default_base(ctx.root)
        base = _rev_side(
            ctx, commit, "HEAD" if commit == resolve_commit(ctx.root, "HEAD") else "merge-base", cache, ids
        )
    head = _rev_side(ctx, args.head, args.head, cache, ids) if args.head else _worktree_side(ctx, cache, ids)
    result = compute_diff(base, head, key=os.urandom(32), only=args.target, opaque=not ids, progress=ctx.progress)
    ctx.clear_progress()
    if args.format == "json":
        print(render_json(result))
    elif args.format == "markdown":
        print(render_markdown(result), end="")
    else:
        print(render_text(result, colour=colour_enabled(sys.stdout)))
    return 1 if args.exit_code and result.changed else 0


def _rev_side(ctx: Context, rev: str, name: str, cache: ParseCache, ids: Identities) -> Side:
    from compiler.audit.revisions import rev_file_ids
    from compiler.diff.compute import INPUT_ROOTS, Side
    from compiler.sources.gitrev import GitRevTree

    tree = GitRevTree(ctx.root, rev)
    info = tree.source_info()
    assert info is not None
    label = info.commit[:7] if name == info.commit else f"{name} ({info.commit[:7]})"
    files = rev_file_ids(ctx.root, info.commit, INPUT_ROOTS)
    return Side(repo=_repository(tree, files, cache, ids), label=label, files=files)


def _worktree_side(ctx: Context, cache: ParseCache, ids: Identities) -> Side:
    from compiler.audit.revisions import worktree_file_ids
    from compiler.diff.compute import INPUT_ROOTS, Side

    tree = open_tree(ctx, None)
    files = worktree_file_ids(ctx.root, INPUT_ROOTS)
    return Side(repo=_repository(tree, files, cache, ids), label="working tree", files=files)


def _repository(tree: SourceTree, files: FileIds, cache: ParseCache, ids: Identities) -> Repository:
    from compiler.diff.sharing import SharingRepository
    from compiler.secrets.sources import SopsOpener

    opener = SopsOpener(ids if ids else None)
    return SharingRepository(tree, files=files, cache=cache, open_secrets=opener, secrets_opaque=not ids)
