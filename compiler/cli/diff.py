"""`llmcc diff [BASE [HEAD]]`: what a change does to the effective config of every target.

BASE defaults to the merge-base of HEAD with the default branch (see
``compiler.audit.revisions.default_base``: on the default branch that is HEAD,
so the diff shows uncommitted changes); HEAD defaults to the working tree.
An explicit BASE is resolved the same way, to the merge-base of BASE and HEAD
(``git diff A...B``; issue 13 §3): a branch behind BASE does not show BASE's
later changes reversed. ``A...B`` and ``A..B`` are accepted as ``A B``.
Both sides are compiled in memory from git objects; nothing is checked out.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from compiler.cli._context import Context, colour_enabled
from compiler.cli._repo import add_identity_arg, identities, open_tree
from compiler.errors import UsageError

if TYPE_CHECKING:
    from compiler.compile.pipeline import CompileCaches
    from compiler.compile.repository import Repository
    from compiler.compile.sharing import ParseCache
    from compiler.diff.compute import FileIds, Side
    from compiler.secrets.identity import Identities
    from compiler.sources.base import SourceTree


# render.MARKDOWN_LIMIT, spelled here so `llmcc diff --help` imports no diff engine (issue 14 §1)
MARKDOWN_LIMIT = 60_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "base",
        nargs="?",
        metavar="BASE",
        help="git revision, compared through its merge-base with HEAD; A...B as in git "
        "(default: merge-base with the default branch)",
    )
    p.add_argument("head", nargs="?", metavar="HEAD", help="git revision (default: the working tree)")
    p.add_argument("-t", "--target", action="append", metavar="T", help="only this target (repeatable)")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when anything changed")
    p.add_argument(
        "--max-chars",
        type=_max_chars,
        default=MARKDOWN_LIMIT,
        metavar="N",
        help=f"cut markdown at N characters (default {MARKDOWN_LIMIT:,}; 0: never, for a CI artifact)",
    )
    add_identity_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    import sys

    from compiler.audit.revisions import default_base, merge_base, resolve_commit
    from compiler.compile.sharing import ParseCache
    from compiler.diff.compute import compute_diff
    from compiler.diff.render import render_json, render_markdown, render_text

    ids = identities(args)
    cache = ParseCache()
    base_rev, head_rev = split_range(args.base, args.head)
    if base_rev is not None:
        head_commit = _commit(ctx, head_rev or "HEAD")
        named = _commit(ctx, base_rev)
        commit = merge_base(ctx.root, named, head_commit)
        if commit == named:
            base = _rev_side(ctx, commit, base_rev, cache, ids)
        else:
            base = _rev_side(ctx, commit, base_rev, cache, ids, label=f"{base_rev} (merge-base {commit[:7]})")
    else:
        commit = default_base(ctx.root)
        base = _rev_side(
            ctx, commit, "HEAD" if commit == resolve_commit(ctx.root, "HEAD") else "merge-base", cache, ids
        )
    head = _rev_side(ctx, head_rev, head_rev, cache, ids) if head_rev else _worktree_side(ctx, cache, ids)
    result = compute_diff(base, head, key=os.urandom(32), only=args.target, opaque=not ids, progress=ctx.progress)
    ctx.clear_progress()
    if args.format == "json":
        print(render_json(result))
    elif args.format == "markdown":
        print(render_markdown(result, limit=args.max_chars or sys.maxsize), end="")
    else:
        print(render_text(result, colour=colour_enabled(sys.stdout)))
    return 1 if args.exit_code and result.changed else 0


def split_range(base: str | None, head: str | None) -> tuple[str | None, str | None]:
    """(BASE, HEAD) of ``A...B`` / ``A..B`` (an empty side is HEAD, as in git), or the two arguments.

    Raises:
        UsageError: a range and a second revision.
    """
    if base is None or ".." not in base:
        return base, head
    if head is not None:
        raise UsageError(f"diff: give either a range {base!r} or BASE HEAD, not both")
    sep = "..." if "..." in base else ".."
    left, _, right = base.partition(sep)
    return left or "HEAD", right or "HEAD"


def _commit(ctx: Context, rev: str) -> str:
    from compiler.audit.revisions import git, resolve_commit

    commit = resolve_commit(ctx.root, rev)
    if commit is None:
        if git(ctx.root, "rev-parse", "--git-dir")[0] != 0:
            raise UsageError(f"{ctx.root}: not a git repository (diff compares git revisions)")
        raise UsageError(f"unknown revision {rev!r}")
    return commit


def _rev_side(
    ctx: Context, rev: str, name: str, cache: ParseCache, ids: Identities, *, label: str | None = None
) -> Side:
    from compiler.audit.revisions import rev_file_ids
    from compiler.diff.compute import INPUT_ROOTS, Side
    from compiler.sources.gitrev import GitRevTree

    tree = GitRevTree(ctx.root, rev)
    info = tree.source_info()
    assert info is not None
    if label is None:
        label = info.commit[:7] if name == info.commit else f"{name} ({info.commit[:7]})"
    files = rev_file_ids(ctx.root, info.commit, INPUT_ROOTS)
    return Side(repo=_repository(tree, files, cache, ids), label=label, files=files, caches=_caches(cache))


def _worktree_side(ctx: Context, cache: ParseCache, ids: Identities) -> Side:
    from compiler.audit.revisions import worktree_file_ids
    from compiler.diff.compute import INPUT_ROOTS, Side

    tree = open_tree(ctx, None)
    files = worktree_file_ids(ctx.root, INPUT_ROOTS)
    return Side(repo=_repository(tree, files, cache, ids), label="working tree", files=files, caches=_caches(cache))


def _caches(cache: ParseCache) -> CompileCaches:
    """One revision's compile caches; rendered scalars are shared with the other revision."""
    from compiler.compile.pipeline import CompileCaches

    return CompileCaches(render=cache.render)


def _repository(tree: SourceTree, files: FileIds, cache: ParseCache, ids: Identities) -> Repository:
    from compiler.compile.sharing import SharingRepository
    from compiler.secrets.sources import SopsOpener

    opener = SopsOpener(ids if ids else None)
    return SharingRepository(tree, files=files, cache=cache, open_secrets=opener, secrets_opaque=not ids)


def _max_chars(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of characters (0: no limit)")
    return int(text)
