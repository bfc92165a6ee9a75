"""Shared YAML files parsed in a forked helper while the parent compiles the schemas (issue 14 §3).

A parallel build parses everything its workers share before forking them; on two
cores the second one idles meanwhile. Parsing the templates and the shared
environments' layer files (YAML, ~65 ms for those of the large workload) and
compiling the schemas (~60 ms) need nothing of each other, so a helper forked first
parses the files and hands their values back through a pipe (``marshal``: ~2 ms to
read 0.3 MB of plain values) while the parent compiles the schemas.

The helper only saves time, it never decides anything:

1. It reads each file through the same ``SourceTree`` and parses it with the same
   ``load_document``; a file it cannot read or parse is left to the parent, which
   meets the error where it always does.
2. The parent takes a value only for a file whose bytes, as the parent reads them,
   have the SHA-256 of the bytes the helper parsed; any other file is parsed again.
3. Values travel as plain JSON types, which ``marshal`` returns as they were,
   shared subtrees shared; a merge tag (``Tagged``) travels as its path, tag and
   origin beside its value, and is put back around the same node. A document in
   which one tagged node is reached twice (an alias of it) is left to the parent.
4. Positions are not sent: a document's are built, by parsing its bytes again, the
   first time one is read (an error's location; a plain compile reads none).
5. A helper that fails in any way (exit status, a broken pipe, unreadable data)
   costs nothing but the parse the parent then does itself; one that is still
   running when the parent stops (an error, Ctrl-C) is killed and reaped.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, cast

from compiler.compile.orphans import die_with_parent
from compiler.compile.orphans import prepare as prepare_orphans
from compiler.compile.types import DocumentLoader
from compiler.diagnostics import Origin
from compiler.errors import LlmccError
from compiler.jsonpath import JsonPath
from compiler.load.positions import Positions
from compiler.load.yaml import Document, MergeTag, Tagged, Value, load_document
from compiler.sources.base import SourceTree

# Each merge tag of a document: (its node's path, the tag, the origin's line and column).
Tags = list[tuple[JsonPath, str, int, int]]
# (path, layer) -> (SHA-256 of the bytes parsed, value with its merge tags taken off, the tags, node count)
Parsed = dict[tuple[str, str], tuple[bytes, object, Tags, int]]


class Preparse:
    """A helper process parsing ``files`` (path, layer name) of ``tree``; ``loader`` then serves what it sent."""

    def __init__(self, tree: SourceTree, files: Sequence[tuple[str, str]]) -> None:
        """Fork the helper. Only in a process with no other thread (a fork copies none of them,
        and a lock one of them held stays held in the child)."""
        self._parsed: Parsed | None = None
        read, write = os.pipe()
        # SIGINT blocked across the fork, as for the build's workers: the helper ignores it before it
        # can arrive there, so no KeyboardInterrupt ever unwinds the parent's code in the helper (its
        # `finally` blocks would remove the parent's staging directory). The parent takes a pending one
        # when the mask is back.
        prepare_orphans()  # the helper starts parsing at once
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        parent = os.getpid()
        try:
            self._pid = os.fork()
            if self._pid == 0:
                _helper(tree, files, (read, write), held, parent)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        os.close(write)
        self._read: int | None = read

    def collect(self) -> Parsed:
        """What the helper parsed (waits for it); empty when it failed."""
        if self._parsed is None:
            chunks: list[bytes] = []
            while self._read is not None and (chunk := os.read(self._read, 1 << 20)):  # None: stopped
                chunks.append(chunk)
            status = self._reap(kill=False)
            # Exit status 0: the helper wrote all of one marshal.dumps and closed the pipe. Written by our
            # own forked helper into a pipe only the two processes hold; marshal builds values only (a code
            # object it could return is never run): not pickle.
            self._parsed = marshal.loads(b"".join(chunks)) if status == 0 else {}  # noqa: S302
        return self._parsed

    def stop(self) -> None:
        """Kill the helper if it still runs, and reap it (idempotent)."""
        self._reap(kill=True)

    def _reap(self, *, kill: bool) -> int:
        if self._read is not None:
            os.close(self._read)
            self._read = None
        if self._pid <= 0:
            return -1
        if kill:
            with contextlib.suppress(ProcessLookupError):  # already ended: reaped below all the same
                os.kill(self._pid, signal.SIGKILL)
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        return os.waitstatus_to_exitcode(status)

    def loader(self, parse: DocumentLoader) -> DocumentLoader:
        """``parse``, but a file the helper parsed from the same bytes comes from the helper."""
        parsed = self.collect()

        def load(
            data: bytes,
            *,
            path: str,
            layer: str,
            rev: str | None = None,
            quote_values: bool = True,
            keep: Callable[[Document], bool] | None = None,
        ) -> Document:
            hit = parsed.pop((path, layer), None) if rev is None and quote_values else None
            if hit is None or hit[0] != hashlib.sha256(data).digest():
                return parse(data, path=path, layer=layer, rev=rev, quote_values=quote_values, keep=keep)
            _, value, tags, nodes = hit
            if tags:
                value = _retag(value, tags, path, layer)
            positions = ReparsedPositions(data, path=path, layer=layer)
            return Document(
                path=path, layer=layer, value=cast("Value", value), positions=positions, nodes=nodes, tagged=bool(tags)
            )

        return load


def _helper(
    tree: SourceTree, files: Sequence[tuple[str, str]], pipe: tuple[int, int], mask: set[int], parent: int
) -> NoReturn:
    """In the forked helper: parse ``files`` and write them to the pipe; exit, never return.

    ``mask``: the signal mask to restore once SIGINT is ignored (it is blocked across the fork);
    ``parent``: the pid of the build, whose death ends the helper (``orphans.die_with_parent``).
    """
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        die_with_parent(parent)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending SIGINT is now discarded
        os.close(pipe[0])
        out = pipe[1]
        parsed: Parsed = {}
        for path, layer in files:
            try:
                data = tree.read(path)
                doc = load_document(data, path=path, layer=layer)
            except LlmccError:
                continue  # the parent parses it and reports the error
            tags: Tags = []
            try:
                value = _untag(doc.value, (), tags, {}) if doc.tagged else doc.value
            except _TaggedTwiceError:
                continue
            parsed[path, layer] = (hashlib.sha256(data).digest(), value, tags, doc.nodes)
        blob = marshal.dumps(parsed)
        view = memoryview(blob)
        while view:
            view = view[os.write(out, view) :]
        code = 0
    finally:
        os._exit(code)  # whatever happened: nothing of the parent's state is cleaned up here


class _TaggedTwiceError(Exception):
    """One tagged node reached by two paths (an alias of it): the parent parses that document."""


def _untag(value: object, path: JsonPath, tags: Tags, done: dict[int, object]) -> object:
    """``value`` with each ``Tagged`` replaced by its value, the tag noted in ``tags``; a collection
    reached twice (an alias) is rebuilt once, so it stays shared and its tags are noted once."""
    kind = type(value)
    if kind is not dict and kind is not list and kind is not Tagged:
        return value
    seen = done.get(id(value))
    if seen is not None:
        if kind is Tagged:
            raise _TaggedTwiceError
        return seen
    if isinstance(value, Tagged):
        tags.append((path, value.tag, value.origin.line, value.origin.column))
        out = _untag(value.value, path, tags, done)
    elif isinstance(value, dict):
        out = {k: _untag(v, (*path, k), tags, done) for k, v in value.items()}
    else:
        assert isinstance(value, list)
        out = [_untag(v, (*path, i), tags, done) for i, v in enumerate(value)]
    done[id(value)] = out
    return out


def _retag(value: object, tags: Tags, path: str, layer: str) -> object:
    """``_untag`` undone: each noted tag put back around its node, the deepest first (an outer
    tag's path then still runs through plain collections)."""
    for node_path, tag, line, column in sorted(tags, key=lambda t: -len(t[0])):
        origin = Origin(path=path, line=line, column=column, layer=layer)
        if not node_path:
            value = Tagged(cast("MergeTag", tag), cast("Value", value), origin)
            continue
        holder: Any = value
        for part in node_path[:-1]:
            holder = holder[part]
        holder[node_path[-1]] = Tagged(cast("MergeTag", tag), holder[node_path[-1]], origin)
    return value


class ReparsedPositions(Positions):
    """The positions of a document whose value came from elsewhere: its bytes parsed again on first use."""

    __slots__ = ("_source",)

    def __init__(self, data: bytes, *, path: str, layer: str) -> None:
        super().__init__([])
        self._source: tuple[bytes, str, str] | None = (data, path, layer)

    def table(self) -> dict[JsonPath, tuple[int, int]]:
        source = self._source
        if source is not None:
            data, path, layer = source
            positions = load_document(data, path=path, layer=layer).positions
            assert isinstance(positions, Positions)
            self._data = positions.table()
            self._source = None
        return super().table()
