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
5. A helper that fails in any way (a record cut short, a broken pipe, unreadable
   data) costs nothing but the parse the parent then does itself; one that is
   still running when the parent stops (an error, Ctrl-C) is killed and reaped.
6. Once the shared files are sent, the helper goes on with the targets' own layer
   files (``later``), one record each, while the parent finishes its warm-up:
   before forking the workers the parent takes the records that have arrived
   (``rest``, never waiting) and kills the helper, and the workers inherit them
   (issue 14 §4: the second core otherwise idles until the fork).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import marshal
import os
import signal
from collections.abc import Callable, Iterable, Sequence
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

    def __init__(
        self,
        tree: SourceTree,
        files: Sequence[tuple[str, str]],
        later: Callable[[], Iterable[tuple[str, str]]] | None = None,
    ) -> None:
        """Fork the helper. Only in a process with no other thread (a fork copies none of them,
        and a lock one of them held stays held in the child).

        ``later``: called in the helper once ``files`` are sent, the files it then parses one by
        one for as long as the parent lets it (``rest``): the targets' own layer files, which the
        build's workers would parse otherwise (issue 14 §4).
        """
        self._parsed: Parsed | None = None
        self._later = later is not None
        read, write = os.pipe()
        if later is not None:
            # Room for the records the parent takes only at the fork (~8 KB a tenant file): in the
            # default 64 KB the helper stopped, blocked on its write, after about eight.
            with contextlib.suppress(OSError):  # above the system's limit for this user: the default stays
                fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
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
                _helper(tree, files, later, (read, write), held, parent)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        os.close(write)
        self._read: int | None = read
        self._buffer = bytearray()

    def collect(self) -> Parsed:
        """What the helper parsed of ``files`` (waits for it); empty when it failed."""
        if self._parsed is None:
            self._parsed = {}
            blob = self._frame(block=True) if self._read is not None else None  # None: stopped
            if blob is None:
                self.stop()  # failed, or stopped: whatever it still does is not taken
            else:
                self._parsed.update(_values(blob))
                if not self._later:
                    self._reap(kill=False)  # it ends once it has sent them
        return self._parsed

    def rest(self, *, wait: bool = False) -> Parsed:
        """``collect``, plus each file of ``later`` the helper has sent by now; then the helper is stopped.

        Never waits for a file still being parsed (the process that reads it parses it), unless
        ``wait``: then every file of ``later`` is taken, the helper having ended.
        """
        parsed = self.collect()
        if self._read is not None:
            os.set_blocking(self._read, wait)
            while (blob := self._frame(block=wait)) is not None:
                parsed.update(_values(blob))
        self.stop()
        return parsed

    def _frame(self, *, block: bool) -> bytes | None:
        """The next record the helper wrote (a length, then that many bytes): None at the end of the
        pipe, on a broken record, or (``block`` False) when a whole one has not arrived yet."""
        assert self._read is not None
        try:
            while len(self._buffer) < _HEAD or len(self._buffer) < _HEAD + _size(self._buffer):
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    return None  # the helper ended (or died) before writing a whole record
                self._buffer += chunk
        except BlockingIOError:
            return None
        end = _HEAD + _size(self._buffer)
        blob = bytes(self._buffer[_HEAD:end])
        del self._buffer[:end]
        return blob

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
    tree: SourceTree,
    files: Sequence[tuple[str, str]],
    later: Callable[[], Iterable[tuple[str, str]]] | None,
    pipe: tuple[int, int],
    mask: set[int],
    parent: int,
) -> NoReturn:
    """In the forked helper: parse ``files`` and write them to the pipe as one record, then each
    file of ``later`` as a record of its own; exit, never return.

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
            _parse(tree, path, layer, parsed)
        _send(out, parsed)
        if later is not None:
            sent = set(parsed)
            for path, layer in later():
                if (path, layer) not in sent:
                    sent.add((path, layer))
                    one: Parsed = {}
                    _parse(tree, path, layer, one)
                    if one:  # nothing for a file that is not there (a tenant without a file in an environment)
                        _send(out, one)
        code = 0
    finally:
        os._exit(code)  # whatever happened: nothing of the parent's state is cleaned up here


_HEAD = 8  # a record's length, big-endian, before its bytes
_PIPE_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size


def _size(buffer: bytearray) -> int:
    return int.from_bytes(buffer[:_HEAD], "big")


def _send(out: int, parsed: Parsed) -> None:
    """One record: ``parsed`` as ``marshal`` writes it, its length first."""
    blob = marshal.dumps(parsed)
    view = memoryview(len(blob).to_bytes(_HEAD, "big") + blob)
    while view:
        view = view[os.write(out, view) :]


def _values(blob: bytes) -> Parsed:
    # A whole record (its length came first), written by our own forked helper into a pipe only the
    # two processes hold; marshal builds values only (a code object it could return is never run):
    # not pickle. One that does not load is a helper's bug: its files are parsed by the reader.
    try:
        return cast("Parsed", marshal.loads(blob))  # noqa: S302
    except (EOFError, ValueError, TypeError):  # pragma: no cover - a record is written whole or not at all
        return {}


def _parse(tree: SourceTree, path: str, layer: str, parsed: Parsed) -> None:
    """``path`` parsed into ``parsed``; nothing for a file that does not read or parse (the reader
    meets the error where it always does) or that holds one tagged node twice."""
    try:
        data = tree.read(path)
        doc = load_document(data, path=path, layer=layer)
    except LlmccError:
        return
    tags: Tags = []
    try:
        value = _untag(doc.value, (), tags, {}) if doc.tagged else doc.value
    except _TaggedTwiceError:
        return
    parsed[path, layer] = (hashlib.sha256(data).digest(), value, tags, doc.nodes)


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
