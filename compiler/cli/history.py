"""`llmcc history TARGET MODULE.PATH`: the commits that changed an effective value, newest first."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from compiler.cli._context import Context
from compiler.cli._repo import add_identity_arg, identities
from compiler.diagnostics import plural
from compiler.errors import UsageError
from compiler.jsonpath import format_path, split_address

if TYPE_CHECKING:
    from compiler.audit.history import History, ValueChange
    from compiler.compile.repository import Repository

NOTE = "secrets compared by SOPS ciphertext; provide an identity to compare values"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="e.g. prod or prod@acme")
    p.add_argument("address", metavar="MODULE.PATH", help="e.g. inference-engine.model.temperature")
    p.add_argument("path", metavar="PATH", nargs="?", help="the path apart from the module, e.g. \"$.labels['a.b']\"")
    p.add_argument("--rev", metavar="REV", default="HEAD", help="start from this revision (default HEAD)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    add_identity_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.audit.history import value_history
    from compiler.audit.revisions import resolve_commit, rev_file_ids
    from compiler.compile.sharing import ParseCache, SharingRepository
    from compiler.diff.compute import INPUT_ROOTS
    from compiler.project import parse_target
    from compiler.secrets.sources import SopsOpener
    from compiler.sources.gitrev import GitRevTree

    ids = identities(args)
    opener = SopsOpener(ids if ids else None)
    cache = ParseCache()

    def open_repo(commit: str) -> Repository:
        files = rev_file_ids(ctx.root, commit, INPUT_ROOTS)
        tree = GitRevTree(ctx.root, commit)
        return SharingRepository(tree, files=files, cache=cache, open_secrets=opener, secrets_opaque=not ids)

    head = resolve_commit(ctx.root, args.rev)
    if head is None:
        raise UsageError(f"unknown revision {args.rev!r}")
    module, query = split_address(args.address, open_repo(head).modules, args.path)
    history = value_history(
        ctx.root,
        parse_target(args.target),
        module,
        query,
        open_repo=open_repo,
        key=os.urandom(32),
        start=head,
        progress=ctx.progress,
    )
    ctx.clear_progress()
    opaque = not ids and any(c.secret for c in history.changes)
    print(render_json(history, opaque) if args.format == "json" else render_text(history, opaque))
    return 0


def render_text(h: History, opaque: bool) -> str:
    lines = [
        f"{h.location}: {plural(len(h.changes), 'change')} in {plural(h.examined, 'commit')} that touched its files"
    ]
    if opaque:
        lines.append(f"note: {NOTE}")
    for c in h.changes:
        date = c.commit.date[:10]
        lines.append(f"{c.commit.short}  {date}  {c.commit.author}  {c.commit.subject}")
        lines.append(f"    {_describe(c)}")
    for commit, reason in h.skipped:
        lines.append(f"skipped {commit.short} ({commit.subject}): does not compile: {reason}")
    return "\n".join(lines)


def _describe(c: ValueChange) -> str:
    from compiler.diff.render import show_value

    if c.secret:
        return f"<secret {'added' if c.kind == 'introduced' else c.kind}>"
    if c.kind == "introduced":
        return f"introduced: {show_value(c.new)}"
    if c.kind == "removed":
        return f"removed: {show_value(c.old)}"
    return f"{show_value(c.old)} -> {show_value(c.new)}"


def render_json(h: History, opaque: bool) -> str:
    from compiler.diff.masking import public

    doc = {
        "target": h.target,
        "module": h.module,
        "path": format_path(h.path),
        "secrets_compared_by": "sops-ciphertext" if opaque else "value",
        "examined": h.examined,
        "changes": [
            {
                "commit": c.commit.sha,
                "author": c.commit.author,
                "date": c.commit.date,
                "subject": c.commit.subject,
                "kind": c.kind,
                "secret": c.secret,
                **({} if c.secret else {"old": public(c.old), "new": public(c.new)}),
            }
            for c in h.changes
        ],
        "skipped": [{"commit": c.sha, "reason": r} for c, r in h.skipped],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
