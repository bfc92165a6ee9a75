"""Opening the config repository a command works on: tree, identity, secrets.

Light at import (issue 14 §1): the ``add_*`` helpers serve ``llmcc CMD --help``;
the compile stack is imported by the functions that open the repository.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cli._context import MANIFEST, Context

if TYPE_CHECKING:
    from compiler.compile.repository import Repository
    from compiler.project import Project, Target
    from compiler.secrets.identity import Identities
    from compiler.shards import Shard
    from compiler.sources.base import SourceInfo, SourceTree


def add_target_args(p: argparse.ArgumentParser, *, rev: bool = True) -> None:
    p.add_argument("-t", "--target", action="append", metavar="T", help="only this target (repeatable)")
    if rev:
        p.add_argument("--rev", metavar="REV", help="a git revision, read from git objects (no checkout)")


def add_jobs_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--jobs", type=_positive, metavar="N", help="worker processes (default: one per core)")


def whole_number(text: str) -> int:
    """An argparse type: ASCII digits only (``int`` also takes other scripts' digits, " 1", "1_0", "+1", "-1")."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (digits 0-9)")
    return int(text)


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of workers")
    return int(text)


def add_cache_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor fill the result cache .llmcc/cache/ (also: LLMCC_NO_CACHE=1, true or yes)",
    )


def add_shard_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="only shard I of N of the selected targets, a tenant's targets together (one CI runner's part; "
        'README "Sharding across CI runners")',
    )


def _shard(text: str) -> Shard:
    from compiler.errors import UsageError
    from compiler.shards import parse_shard

    try:
        return parse_shard(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def select_targets(project: Project, args: argparse.Namespace) -> tuple[list[Target], list[Target]]:
    """(the targets ``--target`` selects, the part of them that ``--shard`` gives this run)."""
    selected = project.select(args.target)
    shard = getattr(args, "shard", None)
    if shard is None:  # the shard module waits for --shard (issue 14 §1)
        return selected, list(selected)
    from compiler.shards import select_shard

    return selected, select_shard(selected, shard)


def shard_summary(shard: Shard | None, targets: int, selected: int) -> dict[str, int] | None:
    """What ``--format json`` reports of this run's shard: its index, N, its targets and all selected."""
    if shard is None:
        return None
    return {"index": shard.index, "total": shard.total, "targets": targets, "all_targets": selected}


def add_identity_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--identity",
        metavar="FILE",
        type=Path,
        help="age identity file (default: SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, sops's keys.txt)",
    )


def open_tree(ctx: Context, rev: str | None) -> SourceTree:
    from compiler.errors import UsageError

    root: Path = ctx.root
    if rev is not None:
        from compiler.sources.gitrev import GitRevTree

        return GitRevTree(root, rev)
    if not (root / MANIFEST).is_file():
        raise UsageError(
            f"{root}: no {MANIFEST} here or in a directory above (use -C DIR, or `llmcc init DIR` for a new repository)"
        )
    from compiler.sources.worktree import WorkTree

    return WorkTree(root)


def identities(args: argparse.Namespace) -> Identities:
    from compiler.secrets.identity import load_identities

    explicit: Path | None = getattr(args, "identity", None)
    return load_identities(explicit, os.environ, required=explicit is not None)


def open_repository(
    ctx: Context, args: argparse.Namespace, *, need_secrets: bool = False, list_files: bool = False
) -> tuple[Repository, SourceInfo | None, Identities]:
    """The repository at ``--rev`` (or the working tree), with SOPS layers decrypted when an
    identity is at hand; ``need_secrets`` makes a missing identity an error at the first SOPS file.

    The working tree's git processes start first and run while the compile stack is imported:
    the source info, and with ``list_files`` the files git can take (``WorkTree.start_git``).
    """
    tree = open_tree(ctx, getattr(args, "rev", None))
    from compiler.sources.worktree import WorkTree

    if isinstance(tree, WorkTree):
        tree.start_git(files=list_files)
    from compiler.compile.repository import Repository
    from compiler.policy.clock import policy_time
    from compiler.secrets.sources import SopsOpener

    ids = identities(args)
    opener = SopsOpener(ids if ids else None, required=need_secrets)
    repo = Repository(tree, open_secrets=opener, secrets_opaque=not ids)
    source = tree.source_info()
    repo.policy_now = policy_time(source, wall=datetime.now(UTC))
    return repo, source, ids
