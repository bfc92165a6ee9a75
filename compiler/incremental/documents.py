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

The positions (three quarters of the bytes) are written after the rest, on a
line of their own, and decoded and checked only when one is read (a
diagnostic): most kept documents of a compile are never asked for one, as the
loader's own ``Positions`` are built only then. Positions that fail the checks
at that point are not used: the caller's ``reparse`` gives the parser's (and
``ParsedDocuments`` drops the entry), or ``EntryError`` is raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from itertools import chain
from typing import cast

from compiler.diagnostics import Origin
from compiler.incremental.entry import EntryError
from compiler.jsonpath import JsonPath
from compiler.load.positions import PositionTable
from compiler.load.yaml import MERGE_TAGS, Document, MergeTag, Tagged, Value

SCHEME = "document/2"  # bump when the encoding below changes (2: positions on a line of their own)
_KEYS = frozenset({"scheme", "path", "layer", "rev", "nodes", "tagged", "value", "tags"})
_TAGS = frozenset(MERGE_TAGS.values())


def encode_document(doc: Document) -> bytes | None:
    """``doc`` as JSON bytes; None when it cannot be written exactly (then it is not cached)."""
    tags: list[list[object]] = []
    value = _untag(doc, doc.value, (), tags) if doc.tagged else doc.value
    if value is _UNFIT:
        return None
    positions = [[line, col, *path] for path, (line, col) in doc.positions.items()]
    head = {
        "scheme": SCHEME,
        "path": doc.path,
        "layer": doc.layer,
        "rev": doc.rev,
        "nodes": doc.nodes,
        "tagged": doc.tagged,
        "value": value,
        "tags": tags,
    }
    try:
        # ASCII: a lone surrogate a YAML escape made survives as \\ud800 and comes back equal; and no
        # raw line break (JSON writes one in a string as \\n), so the first one ends the head
        return b"%s\n%s" % (_dumps(head), _dumps(positions))
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


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _reject_constant(name: str) -> object:
    raise EntryError(f"document: {name}")


def decode_document(
    data: bytes,
    *,
    path: str,
    layer: str,
    rev: str | None,
    reparse: Callable[[], Mapping[JsonPath, tuple[int, int]]] | None = None,
) -> Document:
    """The ``Document`` that ``encode_document`` wrote for the file ``path`` read as ``layer`` at ``rev``.

    Its positions are decoded on first read (``KeptPositions``); when they fail
    the checks then, ``reparse()`` gives them (the parser's), or without it
    reading one raises ``EntryError``.

    Raises:
        EntryError: ``data`` is not such an encoding (damaged, foreign, or of another file).
    """
    head, newline, positions = data.partition(b"\n")
    if not newline:
        raise EntryError("document: positions")
    try:
        raw = json.loads(head, parse_constant=_reject_constant)
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
        positions=KeptPositions(positions, reparse),
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


class KeptPositions(PositionTable):
    """A kept document's positions, decoded and checked on first read (see the module doc)."""

    __slots__ = ("_data", "_reparse")

    def __init__(self, data: bytes, reparse: Callable[[], Mapping[JsonPath, tuple[int, int]]] | None) -> None:
        # the encoded list until the table is built, then the table: one attribute (as ``Positions``)
        self._data: bytes | Mapping[JsonPath, tuple[int, int]] = data
        self._reparse = reparse

    def table(self) -> Mapping[JsonPath, tuple[int, int]]:
        """The positions (decoded once). Raises EntryError: damaged, and no ``reparse`` given."""
        data = self._data
        if not isinstance(data, bytes):
            return data
        try:
            table: Mapping[JsonPath, tuple[int, int]] = _positions(data)
        except EntryError:
            if self._reparse is None:
                raise
            table = self._reparse()
        self._data = table
        return table


def _positions(data: bytes) -> dict[JsonPath, tuple[int, int]]:
    """``[[line, col, *path], ...]`` as the loader's map; the types checked in bulk (a loop in C)."""
    try:
        raw = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise EntryError("document: positions") from e
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
