"""Where each node of a loaded YAML document was written, recorded cheaply, built on first use.

The loader (``compiler.load.yaml``) appends to a flat record as libyaml's events
pass: each node's mark (a mapping value's is its key's, preceded by the key) and
``OPEN``/``CLOSE`` around a collection's children. ``Positions`` turns that into
the path -> (line, column) table the first time a position is read (issue 14 §3).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import Protocol, cast

from compiler.jsonpath import JsonPath


class Mark(Protocol):
    """A libyaml mark: 0-based line and column."""

    line: int
    column: int


class Bracket(enum.Enum):
    """In a document's position record (see Positions), around the children of the collection
    whose mark came just before. Members, unlike ``object()``, stay themselves through pickle and
    deepcopy, so a copied document's positions still build."""

    OPEN = "open"
    CLOSE = "close"


OPEN = Bracket.OPEN
CLOSE = Bracket.CLOSE


class PositionTable(Mapping[JsonPath, tuple[int, int]]):
    """A read-only map of positions served from ``table()``, which a subclass builds on first use."""

    __slots__ = ()

    def table(self) -> Mapping[JsonPath, tuple[int, int]]:
        raise NotImplementedError

    def __getitem__(self, path: JsonPath) -> tuple[int, int]:
        return self.table()[path]

    def __iter__(self) -> Iterator[JsonPath]:
        return iter(self.table())

    def __len__(self) -> int:
        return len(self.table())

    def __repr__(self) -> str:
        return repr(self.table())


class Positions(PositionTable):
    """(line, column) of every node by its path, built from the loader's record on first use.

    The loader keeps, in document order, each node's libyaml mark (a mapping value's is its
    key's, preceded by the key) and ``OPEN``/``CLOSE`` around a collection's children: a
    list append per node instead of a path tuple and a dict entry. Only a diagnostic reads a
    position, so most documents of a compile never build the table (issue 14 §3). The record
    does not depend on the value, so a value changed by a caller cannot shift a position.
    """

    __slots__ = ("_data",)

    def __init__(self, record: list[object]) -> None:
        # the record until the table is built, then the table: one attribute, so a thread
        # that reads it sees one or the other whole, never a spent record beside no table
        self._data: list[object] | dict[JsonPath, tuple[int, int]] = record

    def table(self) -> dict[JsonPath, tuple[int, int]]:
        """The positions as a plain dict (built once)."""
        data = self._data
        if isinstance(data, dict):
            return data
        table = self._data = build_table(data)
        return table


def build_table(record: list[object]) -> dict[JsonPath, tuple[int, int]]:
    """The path -> (line, column) table of a record: 1-based, as ``Origin`` has them."""
    table: dict[JsonPath, tuple[int, int]] = {}
    outer: list[tuple[JsonPath | None, int]] = []
    parent: JsonPath | None = None  # the innermost open collection; None: the node is the root
    index = 0  # the next item's index when the innermost collection is a list
    key: str | None = None
    last: JsonPath = ()
    for item in record:
        if type(item) is str:
            key = item
        elif item is OPEN:
            outer.append((parent, index))
            parent, index = last, 0
        elif item is CLOSE:
            parent, index = outer.pop()
        else:
            if parent is None:
                last = ()
            elif key is not None:
                last, key = (*parent, key), None
            else:
                last, index = (*parent, index), index + 1
            mark = cast(Mark, item)
            table[last] = (mark.line + 1, mark.column + 1)
    return table
