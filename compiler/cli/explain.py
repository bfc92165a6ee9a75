"""`llmcc explain TARGET MODULE.PATH`: the effective value, every line that set it, and who wrote each.

The path is in the one path syntax (``compiler.jsonpath``): what ``diff``,
``history`` and diagnostics print. ``explain TARGET MODULE PATH`` (three
words, as ``explain`` and ``history`` print their first line) works too.

Each line that set or overrode the value (for a template-derived value: the
template line and the variable's layer line) is followed by the commit that
last touched it (``git blame`` at the working tree, or at ``--rev``).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, cast

from compiler.cli._context import Context
from compiler.cli._repo import add_identity_arg, open_repository
from compiler.errors import UsageError
from compiler.jsonpath import ItemKey, JsonPath, Query, format_path, no_value, resolve, select, split_address
from compiler.masking import SECRET_TEXT, mask_text

if TYPE_CHECKING:
    from compiler import provenance
    from compiler.audit.blame import LineBlame
    from compiler.load.yaml import Value

_LABELS = {
    "set": "set",
    "override": "!override",
    "append": "!append",
    "prepend": "!prepend",
    "delete": "!delete",
    "template": "template",
    "variable": "variable",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="e.g. prod or prod@acme")
    p.add_argument("address", metavar="MODULE.PATH", help="e.g. inference-engine.model.temperature")
    p.add_argument("path", metavar="PATH", nargs="?", help="the path apart from the module, e.g. \"$.labels['a.b']\"")
    p.add_argument("--rev", metavar="REV", help="explain at a git revision")
    p.add_argument("--format", choices=["text", "json"], default="text")
    add_identity_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler import provenance
    from compiler.compile.pipeline import compile_target
    from compiler.diff.masking import secret_fields
    from compiler.project import parse_target

    repo, _, _ = open_repository(ctx, args)
    target = repo.project.select([args.target])[0] if args.target else parse_target(args.target)
    module, query = split_address(args.address, repo.modules, args.path)
    result = compile_target(repo, target, validate=False)
    secrets = secret_fields(result).get(module, [])  # marked x-secret, or set by a SOPS file
    _refuse_secret_items(result.modules[module], query, secrets)
    found = resolve(result.modules[module], query)
    if found is None:
        raise UsageError(f"{no_value(target.name, module, result.modules[module], query)} in this target")
    path, value = found[0], cast("Value", found[1])
    secret = any(path[: len(p)] == p for p in secrets)  # the value is (inside) a secret
    if not secret:
        value = mask_text(value, [p[len(path) :] for p in secrets if p[: len(path)] == path])
    shown = SECRET_TEXT if secret else json.dumps(value, ensure_ascii=False, sort_keys=True)
    contributions = provenance.trace(repo, result.stack, module, path, shadowed=True)
    blames = _blame(ctx, args.rev, contributions)
    if args.format == "json":
        doc = {
            "target": target.name,
            "module": module,
            "path": format_path(path),
            "secret": secret,
            "value": None if secret else value,
            "sources": [
                {
                    "kind": c.kind,
                    "file": c.origin.path,
                    "line": c.origin.line,
                    "column": c.origin.column,
                    "layer": c.origin.layer,
                    "detail": c.detail,
                    "effective": c.effective,
                    "commit": _blame_json(b),
                }
                for c, b in zip(contributions, blames, strict=True)
            ],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print(f"{target.name} {module} {format_path(path)} = {_truncate(shown)}")
    if not contributions:
        print("  (no file sets this value)")
    width = max((len(c.origin.location()) for c in contributions), default=0)
    for c, b in zip(contributions, blames, strict=True):
        label = _LABELS[c.kind]
        detail = f" {c.detail.strip()}" if c.detail else ""
        if c.kind == "template" and c.detail:
            detail = f" {c.detail.strip()!r}"
        tail = "" if c.effective else "  (overridden)"
        layer = f"  (layer {c.origin.layer_name})" if c.origin.layer_name else ""
        print(f"  {c.origin.location():<{width}}  {label}{detail}{layer}{tail}")
        if b is not None:
            print(f"  {'':<{width}}    {b.describe()}")
    return 0


def _blame(ctx: Context, rev: str | None, contributions: list[provenance.Contribution]) -> list[LineBlame | None]:
    """The commit behind each contributing line (one git call per distinct line)."""
    from compiler.audit.blame import blame_line

    seen: dict[tuple[str, int], LineBlame | None] = {}
    out = []
    for c in contributions:
        where = (c.origin.path, c.origin.line)
        if where not in seen:
            seen[where] = blame_line(ctx.root, c.origin.path, c.origin.line, rev=rev)
        out.append(seen[where])
    return out


def _blame_json(b: LineBlame | None) -> dict[str, object] | None:
    if b is None:
        return None
    if b.commit is None:
        return {"committed": False}
    return {"committed": True, "sha": b.commit, "author": b.author, "date": b.date, "summary": b.summary}


def _refuse_secret_items(value: object, query: Query, secrets: list[JsonPath]) -> None:
    """``[field=value]`` must not compare a secret field: found or not found would tell its value.

    Raises:
        UsageError: a segment selects list items by a field that is (inside) a secret.
    """
    path: list[str | int] = []
    for segment in query:
        if isinstance(segment, ItemKey):
            at = tuple(path)
            for s in secrets:
                above = len(s) <= len(at) and at[: len(s)] == s  # the whole list is secret
                if above or (len(s) > len(at) + 1 and s[: len(at)] == at and s[len(at) + 1] == segment.field):
                    raise UsageError(
                        f"{format_path(at)}[{segment.field}=...]: {segment.field} is a secret field; "
                        "select the item by its index"
                    )
        key = select(value, segment)
        if key is None:
            return
        path.append(key)
        value = value[key]  # type: ignore[index]


def _truncate(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."
