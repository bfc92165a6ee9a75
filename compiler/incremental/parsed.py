"""Parsed inputs kept across runs in the result cache (issue 14 §2: below the target level).

A target the result cache misses is compiled, and compiling it parses its
templates and layer files again -- most of what a one-file change costs.
``ParsedDocuments.load`` is ``compiler.load.yaml.load_document`` with the
result cache in front: a file's ``Document`` is stored (``compiler.incremental.documents``:
JSON, no code) under a key made of everything the document is a function of,

- the SHA-256 of the file's bytes,
- its path, the layer name and revision its origins carry, and whether
  values are quoted in errors,
- the digest of the parser's code (``compiler/load/yaml.py``, ``positions.py``, this encoding)
  and the versions of ruamel.yaml and libyaml bindings it runs on,

plus, through the entry header, the llmcc version and the cache format. A read
entry goes through the store's checks (owner, no symlinks, digest) and the
decoder's (shape, types, tags); on any doubt the file is parsed and the entry
written again. A file that does not parse is not stored: its error comes
from the parser each time.

Never stored: SOPS files (``*.secrets.sops.yaml``, read with
``quote_values=False``): with an identity their values are decrypted from
the parsed document, and a file meant to be encrypted may hold plaintext
(the secrets guard reports it). The repository passes them to the parser
directly (``compiler.compile.repository.Repository.layer``). Nor a template
or plain layer that sets a field some module's schema marks ``x-secret``: a
plaintext secret the secrets guard refuses (the reader's ``keep`` says no).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import cache, partial
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.errors import LlmccError
from compiler.incremental.documents import SCHEME, decode_document, encode_document
from compiler.incremental.entry import EntryError
from compiler.incremental.store import ResultCache
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Document, Value, load_document

if TYPE_CHECKING:
    from compiler.render.jinja import RenderCache

MAX_DOCUMENT_BYTES = 16 << 20  # an encoding past this (aliases expanded) is not stored


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


@cache
def dist_version(dist: str) -> str:
    """The installed version of distribution ``dist`` ("?" when none is found), read from the name of
    its ``NAME-VERSION.dist-info`` directory on ``sys.path`` (PEP 427/PEP 503 name normalisation).

    ``importlib.metadata`` gives the same answer but imports email, csv and zipfile (~20 ms of
    ``validate``'s start, issue 14 §1); a cache key only needs a value that changes with the version.
    """
    want = _normal(dist)
    for entry in sys.path:
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(entry or ".")):
                stem, dot, suffix = name.rpartition(".")
                if dot and suffix == "dist-info" and "-" in stem:
                    project, _, version = stem.partition("-")
                    if _normal(project) == want:
                        return version
    return "?"


@cache
def parser_digest() -> str:
    """SHA-256 over the parser's and the encoding's source and the YAML libraries' versions."""
    from compiler.incremental import documents
    from compiler.load import positions, yaml

    h = hashlib.sha256(SCHEME.encode() + b"\0")
    for module in (yaml, positions, documents):
        h.update(Path(str(module.__file__)).read_bytes() + b"\0")
    for dist in ("ruamel.yaml", "ruamel.yaml.clib"):
        h.update(f"{dist}={dist_version(dist)}\0".encode())
    return h.hexdigest()


class ParsedDocuments:
    """``load_document`` through the result cache (module doc); ``hits``/``parsed`` count what it did."""

    def __init__(self, store: ResultCache) -> None:
        self.store = store
        self.hits = 0
        self.parsed = 0
        self._keys: dict[str, str] = {}  # path -> key of its last load (``forget``)
        self._docs: dict[int, tuple[Document, str]] = {}  # id -> each document this loaded, and its key

    def load(
        self,
        data: bytes,
        *,
        path: str,
        layer: str,
        rev: str | None = None,
        quote_values: bool = True,
        keep: Callable[[Document], bool] | None = None,
    ) -> Document:
        """What ``load_document`` gives for these arguments (and raises the same errors).

        A document parsed here is stored unless ``keep`` says no (or fails: then it is not stored either).
        """
        key = document_key(data, path=path, layer=layer, rev=rev, quote_values=quote_values)
        self._keys[path] = key
        body = self.store.get_bytes(key)
        if body is not None:
            with contextlib.suppress(EntryError):
                reparse = partial(self._reparse, data, key, path=path, layer=layer, rev=rev, quote_values=quote_values)
                doc = decode_document(body, path=path, layer=layer, rev=rev, reparse=reparse)
                self.hits += 1
                self._docs[id(doc)] = (doc, key)
                if keep is not None and not _keeps(keep, doc):  # a schema marked a field x-secret since
                    self.store.discard(key)
                return doc
        doc = load_document(data, path=path, layer=layer, rev=rev, quote_values=quote_values)
        self.parsed += 1
        self._docs[id(doc)] = (doc, key)
        if keep is not None and not _keeps(keep, doc):
            return doc
        encoded = encode_document(doc)
        if encoded is not None and len(encoded) <= MAX_DOCUMENT_BYTES and not holds_credential(encoded):
            self.store.put_bytes(key, encoded)
        return doc

    def key_of(self, doc: Document) -> str | None:
        """The key ``doc`` was loaded under here (the SHA-256 of its bytes among the rest); None: not loaded here."""
        found = self._docs.get(id(doc))
        return found[1] if found is not None and found[0] is doc else None

    def _reparse(
        self, data: bytes, key: str, *, path: str, layer: str, rev: str | None, quote_values: bool
    ) -> Mapping[JsonPath, tuple[int, int]]:
        """The parser's positions of a kept document whose own failed their checks (its entry is dropped)."""
        self.store.discard(key)
        return load_document(data, path=path, layer=layer, rev=rev, quote_values=quote_values).positions

    def forget(self, path: str) -> None:
        """Delete the kept copy of the file at ``path`` as last loaded here (a file found unsafe to keep
        after its load: a plain layer whose variable a template renders into an x-secret field)."""
        key = self._keys.get(path)
        if key is not None:
            self.store.discard(key)


def holds_credential(encoded: bytes) -> bool:
    """Whether ``encoded`` (ASCII JSON) holds a private key or a well-known credential
    (``compiler.validate.credentials``: what ``validate`` and the secrets-guard hook refuse in any
    file). ``compile`` does not refuse them, so the cache must not keep them either."""
    from compiler.validate.credentials import find_credentials

    return bool(find_credentials(encoded.decode("ascii")))


def _keeps(keep: Callable[[Document], bool], doc: Document) -> bool:
    try:
        return keep(doc)
    except LlmccError:  # a schema that does not load: the compile reports it; nothing is kept
        return False


def document_key(data: bytes, *, path: str, layer: str, rev: str | None, quote_values: bool) -> str:
    """The cache key of the document parsed from ``data`` read this way (hex SHA-256)."""
    h = hashlib.sha256(b"parsed-document\0")
    h.update(parser_digest().encode() + b"\0")
    h.update(json.dumps([path, layer, rev, quote_values]).encode() + b"\0")  # ASCII, unambiguous
    h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


MAX_RENDERED = 50_000  # rendered scalars kept; the oldest go first


@cache
def render_digest() -> str:
    """SHA-256 over the renderer's source, the fingerprints' encoder, and the versions it runs on.

    The files are read, not imported: Jinja loads only when a scalar renders.
    """
    import compiler

    package = Path(str(compiler.__file__)).parent
    h = hashlib.sha256(f"{RENDER_SCHEME}\0{sys.version}\0".encode())
    for name in ("render/jinja.py", "render/_sandbox.py", "bundle/canonical.py"):
        h.update((package / name).read_bytes() + b"\0")
    for dist in ("jinja2", "markupsafe"):
        h.update(f"{dist}={dist_version(dist)}\0".encode())
    return h.hexdigest()


RENDER_SCHEME = "rendered/2"  # 2: expressions are their sources only (no names, no type)


class RenderedScalars:
    """The rendered-scalar cache (``compiler.render.jinja.RenderCache``) kept across runs in one entry.

    A scalar's value is a function of its expression and the values of the
    variables it reads (the cache's key), and of the renderer's code and
    libraries (the entry's key: ``render_digest``). So after a change to one
    variable only the scalars that read it render again; the rest are read.
    The entry also lists the sources of the Jinja scalars that compiled, so a
    template whose values are all kept is planned without Jinja
    (``compiler.render.jinja.learn_expressions``). Only that: the variables a
    scalar's key reads come from its source, its type from Jinja's compile when
    it renders, never from the entry (an entry naming fewer variables served a
    stale value: issue 14 §2).

    Kept: values only. An error is rendered again (a CPU or memory bound
    depends on the machine), and variables never hold a SOPS file's values
    (a SOPS file sets ``modules:`` only: ``compiler.compile.repository``),
    so no decrypted secret is among the keys or values.
    """

    def __init__(self, store: ResultCache) -> None:
        self.store = store
        self.loaded = 0
        self.exprs: list[str] = []  # sources of the Jinja scalars the entry lists (``load``)
        self._run = os.urandom(8).hex()  # names this run's per-target additions (``worker_done``)
        self._parent = os.getpid()
        self._flushed = 0  # in a worker: how much of the cache it had when it last wrote
        self.stored: set[str] = set()  # in a worker: the targets after which it stored what it rendered

    @staticmethod
    def key() -> str:
        return hashlib.sha256(f"rendered-scalars\0{render_digest()}".encode()).hexdigest()

    def _target_key(self, target: str) -> str:
        return hashlib.sha256(f"{self.key()}\0{self._run}\0{target}".encode()).hexdigest()

    def load(self) -> RenderCache:
        """The kept scalars (and their expressions, taught to the renderer); empty when the entry is
        absent, damaged or of another shape."""
        from compiler.render.jinja import learn_expressions

        body = self.store.get_bytes(self.key())
        found: RenderCache = {}
        if body is not None:
            with contextlib.suppress(EntryError):
                found, self.exprs = decode_rendered(body)
        learn_expressions(self.exprs)
        self.loaded = self._flushed = len(found)
        return found

    def worker_done(self, rendered: RenderCache, target: str) -> None:
        """In a forked worker, after ``target``: store what the worker rendered since it last stored,
        for the parent to take in (``save``). In the parent process: nothing (``save`` has it)."""
        if os.getpid() == self._parent or len(rendered) <= self._flushed:
            return
        added = _kept(_values(islice(rendered.items(), self._flushed, None)))
        self._flushed = len(rendered)
        self.store.put_bytes(self._target_key(target), encode_rendered(added, []))
        self.stored.add(target)

    def save(self, rendered: RenderCache, built: Iterable[str] = ()) -> None:
        """Write ``rendered`` (what ``load`` gave, then filled by this process) with what the workers
        that compiled ``built`` rendered, when the run added to it. ``built``: the targets after which
        a worker may have stored some (``stored`` there; each is looked for)."""
        from compiler.render.jinja import compiled_expressions

        for target in built:
            key = self._target_key(target)
            body = self.store.get_bytes(key)
            self.store.discard(key)
            if body is not None:
                with contextlib.suppress(EntryError):
                    for k, v in decode_rendered(body)[0].items():
                        rendered.setdefault(k, v)
        known = set(self.exprs)
        new = [s for s in compiled_expressions() if s not in known]
        if len(rendered) <= self.loaded and not new:
            return
        exprs = [*self.exprs, *(s for s in new if not holds_credential(encode_rendered([], [s])))]
        items = _values(islice(rendered.items(), self.loaded))  # what ``load`` gave: checked when it was stored
        items += _kept(_values(islice(rendered.items(), self.loaded, None)))
        self.store.put_bytes(self.key(), encode_rendered(items[-MAX_RENDERED:], exprs))


def _values(
    items: Iterable[tuple[tuple[str, tuple[str, ...]], object]],
) -> list[tuple[tuple[str, tuple[str, ...]], Value]]:
    """The rendered values among ``items``: a cached error (``_Failure``) is rendered again, and
    what a template that sets an x-secret field rendered is not kept (``jinja.UNKEPT``)."""
    from compiler.render.jinja import UNKEPT, UNKEPT_SOURCES

    return [
        (k, v)
        for k, v in items
        if (v is None or isinstance(v, (str, int, float, list, dict)))
        and k not in UNKEPT
        and k[0] not in UNKEPT_SOURCES
    ]


Row = tuple[tuple[str, tuple[str, ...]], Value]


def _kept(rows: list[Row]) -> list[Row]:
    """``rows`` without those whose expression, variables or value hold a credential (``holds_credential``):
    the whole batch is scanned once, each row only when the batch holds one."""
    if not rows or not holds_credential(encode_rendered(rows, [])):
        return rows
    return [row for row in rows if not holds_credential(encode_rendered([row], []))]


def encode_rendered(items: list[tuple[tuple[str, tuple[str, ...]], Value]], exprs: list[str]) -> bytes:
    """As ASCII JSON: ``{"scheme", "values": [[expression, [fingerprint, ...], value], ...],
    "exprs": [source, ...]}``."""
    data = {
        "scheme": RENDER_SCHEME,
        "values": [[source, list(prints), value] for (source, prints), value in items],
        "exprs": list(exprs),
    }
    return json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def decode_rendered(data: bytes) -> tuple[RenderCache, list[str]]:
    """What ``encode_rendered`` wrote: the scalars and the expressions. Raises EntryError on any other shape."""
    try:
        raw = json.loads(data, parse_constant=_reject)
    except (ValueError, RecursionError) as e:
        raise EntryError("rendered") from e
    if type(raw) is not dict or raw.keys() != {"scheme", "values", "exprs"} or raw["scheme"] != RENDER_SCHEME:
        raise EntryError("rendered")
    rows, exprs = raw["values"], raw["exprs"]
    if type(rows) is not list or not all(type(r) is list and len(r) == 3 for r in rows):
        raise EntryError("rendered")
    if not all(type(r[0]) is str and type(r[1]) is list for r in rows):
        raise EntryError("rendered")
    if not set(map(type, chain.from_iterable(r[1] for r in rows))) <= {str}:
        raise EntryError("rendered")
    if type(exprs) is not list or not set(map(type, exprs)) <= {str}:
        raise EntryError("rendered: expressions")
    values: RenderCache = {(r[0], tuple(r[1])): r[2] for r in rows}
    return values, exprs


def _reject(name: str) -> object:
    raise EntryError(f"rendered: {name}")
