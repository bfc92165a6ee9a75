"""A loaded YAML ``Document`` as plain JSON bytes and back, for the parsed-input cache. Pure.

``compiler.load.yaml`` builds a ``Document``: plain JSON values, ``Tagged``
wrappers for merge tags, and the (line, column) of every node. This module
writes one as JSON (``encode_document``) and reads it back
(``decode_document``) equal to what parsing the file gives: the same values in
the same key order, the same ``Tagged`` nodes with their origins, the same
positions, node count and flags. JSON, not pickle or marshal: decoding data
runs no code, and what ``json.loads`` returns is already made of the value
types a ``Document`` holds; a ``Tagged`` node is written as its inner value plus
an entry in a side table of ``[path, tag, line, column]``.

``decode_document`` trusts nothing: any other shape, a NaN or infinity, a tag
that is not a merge tag or does not fit its node, a position that is not two
integers, a path through a node that is not there, raises ``EntryError`` and the
caller parses the file instead (issue 14 §2: a damaged or foreign entry is
ignored and rebuilt). Nesting deeper than ``json.loads`` reads (its recursion
guard) is refused too; no tighter depth is checked, as the loader itself builds
values deeper than ``MAX_DEPTH`` through aliases of aliases.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import cast

from compiler.diagnostics import Origin
from compiler.incremental.entry import EntryError
from compiler.jsonpath import JsonPath
from compiler.load.yaml import MERGE_TAGS, Document, MergeTag, Tagged, Value

SCHEME = "document/1"  # bump when the encoding below changes
_KEYS = frozenset({"scheme", "path", "layer", "rev", "nodes", "tagged", "value", "tags", "positions"})
_TAGS = frozenset(MERGE_TAGS.values())


def encode_document(doc: Document) -> bytes | None:
    """``doc`` as JSON bytes; None when it cannot be written exactly (then it is not cached)."""
    tags: list[list[object]] = []
    value = _untag(doc, doc.value, (), tags) if doc.tagged else doc.value
    if value is _UNFIT:
        return None
    positions = [[line, col, *path] for path, (line, col) in doc.positions.items()]
    data = {
        "scheme": SCHEME,
        "path": doc.path,
        "layer": doc.layer,
        "rev": doc.rev,
        "nodes": doc.nodes,
        "tagged": doc.tagged,
        "value": value,
        "tags": tags,
        "positions": positions,
    }
    try:
        # ASCII: a lone surrogate a YAML escape made survives as \\ud800 and comes back equal
        return json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
    except (TypeError, ValueError, RecursionError):  # a Tagged where ``tagged`` is False, a NaN
        return None


_UNFIT = object()


def _untag(doc: Document, value: Value, path: JsonPath, tags: list[list[object]]) -> object:
    """``value`` with every ``Tagged`` node replaced by its inner value, each recorded in ``tags``."""
    if isinstance(value, Tagged):
        o = value.origin
        if (o.path, o.layer, o.rev) != (doc.path, doc.layer, doc.rev):
            return _UNFIT  # the loader gives tags the document's origin; anything else is not ours to write
        tags.append([list(path), value.tag, o.line, o.column])
        return _untag(doc, value.value, path, tags)
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out[k] = _untag(doc, v, (*path, k), tags)
            if out[k] is _UNFIT:
                return _UNFIT
        return out
    if isinstance(value, list):
        items = [_untag(doc, v, (*path, i), tags) for i, v in enumerate(value)]
        return _UNFIT if any(i is _UNFIT for i in items) else items
    return value


def _reject_constant(name: str) -> object:
    raise EntryError(f"document: {name}")


def decode_document(data: bytes, *, path: str, layer: str, rev: str | None) -> Document:
    """The ``Document`` that ``encode_document`` wrote for the file ``path`` read as ``layer`` at ``rev``.

    Raises:
        EntryError: ``data`` is not such an encoding (damaged, foreign, or of another file).
    """
    try:
        raw = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, too deep, an over-long number
        raise EntryError("document") from e
    if not isinstance(raw, dict) or raw.keys() != _KEYS or raw["scheme"] != SCHEME:
        raise EntryError("document")
    if (raw["path"], raw["layer"], raw["rev"]) != (path, layer, rev):
        raise EntryError("document: another file")
    nodes, tagged, tags = raw["nodes"], raw["tagged"], raw["tags"]
    if type(nodes) is not int or type(tagged) is not bool or not isinstance(tags, list) or (tags and not tagged):
        raise EntryError("document")
    value = cast("Value", raw["value"])
    for entry in sorted(tags, key=_depth, reverse=True):  # innermost first: their paths run through plain nodes
        value = _retag(value, entry, path, layer, rev)
    return Document(
        path=path,
        layer=layer,
        value=value,
        positions=_positions(raw["positions"]),
        nodes=nodes,
        tagged=tagged,
        rev=rev,
    )


def _depth(entry: object) -> int:
    if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], list)):
        raise EntryError("document: tag")
    return len(entry[0])


def _retag(root: Value, entry: list[object], path: str, layer: str, rev: str | None) -> Value:
    """``root`` with the node at the entry's path wrapped in its ``Tagged`` (checked as the loader checks)."""
    where, tag, line, col = entry
    assert isinstance(where, list)
    if tag not in _TAGS or type(line) is not int or type(col) is not int:
        raise EntryError("document: tag")
    merge_tag: MergeTag = tag
    origin = Origin(path=path, line=line, column=col, layer=layer, rev=rev)

    def wrap(node: Value, depth: int) -> Value:
        if depth == len(where):
            if isinstance(node, Tagged):
                raise EntryError("document: tag")  # a node carries one tag
            if merge_tag in ("append", "prepend") and not isinstance(node, list):
                raise EntryError("document: tag")
            if merge_tag == "delete" and node is not None:
                raise EntryError("document: tag")
            return Tagged(merge_tag, node, origin)
        key = where[depth]
        if isinstance(node, dict) and type(key) is str and key in node:
            node[key] = wrap(node[key], depth + 1)
            return node
        if isinstance(node, list) and type(key) is int and 0 <= key < len(node):
            node[key] = wrap(node[key], depth + 1)
            return node
        raise EntryError("document: tag path")

    return wrap(root, 0)


def _positions(raw: object) -> dict[JsonPath, tuple[int, int]]:
    """``[[line, col, *path], ...]`` as the loader's map; the types checked in bulk (a loop in C)."""
    if type(raw) is not list:
        raise EntryError("document: positions")
    try:
        out: dict[JsonPath, tuple[int, int]] = {tuple(e[2:]): (e[0], e[1]) for e in raw}
    except (TypeError, IndexError, KeyError) as e:  # not a list, too short, a list or map in a path
        raise EntryError("document: position") from e
    if not set(map(type, chain.from_iterable(out.values()))) <= {int}:
        raise EntryError("document: position")
    if not set(map(type, chain.from_iterable(out))) <= {str, int}:
        raise EntryError("document: position path")
    return out
