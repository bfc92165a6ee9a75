"""The JSON files under ``schemas/`` as one reference registry: ``$ref`` between files, never a fetch.

Every ``*.json`` file below ``schemas/`` (at any depth) is a resource at
``https://llmcc.invalid/<its repository path>``, so a relative ``$ref`` such as
``shared/defs.json#/$defs/model_name`` resolves against the referring file's
directory, and a file's own ``$id`` names it too (JSON Schema 2020-12 core
§8.2.1, §9). ``.invalid`` can never resolve (RFC 2606), and the retriever
refuses every URI: a reference to anything else is an error at the referring
file's line, never a network or disk read outside ``schemas/``.

Errors name the file and line of the keyword at fault: ``locate`` finds the
line of a JSON pointer in the file's text (JSON has no line numbers once parsed).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit, urlunsplit

import jsonschema_rs

from compiler.bundle.canonical import reject_duplicate_keys
from compiler.errors import InputError, LlmccError
from compiler.native import panics_as
from compiler.sources.base import SourceTree

SCHEMAS = "schemas"
BASE = "https://llmcc.invalid/"
Pointer = tuple[str | int, ...]

# Keywords whose value is a subschema, a list of them, or a map of them (2020-12 core §10, validation §6-8).
_ONE: tuple[str, ...] = ("additionalProperties", "unevaluatedProperties", "unevaluatedItems", "items", "contains")
_ONE += ("propertyNames", "not", "if", "then", "else", "contentSchema", "additionalItems")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_REF_KEYWORDS = ("$ref", "$dynamicRef")


def engine_failed(path: str) -> Callable[[str], LlmccError]:
    """The error for jsonschema-rs panicking on the schema file ``path`` (``compiler.native``): exit 2 at the file.

    Its panic is a bug of the library that this schema's text triggers: the
    schema is refused (never taken as passing), and rewriting it is the way on.
    """

    def error(why: str) -> LlmccError:
        return InputError(f"{path}:1:1: the JSON Schema engine (jsonschema-rs) cannot compile this schema: {why}")

    return error


def uri_of(path: str) -> str:
    """The URI a file under ``schemas/`` is registered at (percent-encoded: a name may hold spaces or non-ASCII)."""
    return BASE + quote(path, safe="/")


def path_of(uri: str) -> str | None:
    """The repository path a registered URI names (fragment dropped), or None for any other URI."""
    doc = urldefrag(uri)[0]
    return unquote(doc[len(BASE) :]) if doc.startswith(BASE) else None


def refuse_retrieval(uri: str) -> Any:  # noqa: ANN401 - the retriever protocol of jsonschema-rs
    raise ValueError(f"{uri} is not a file under {SCHEMAS}/ (schemas are never fetched)")


def utf8_text(path: str, data: bytes) -> str:
    """A JSON file's bytes as text: UTF-8 only (RFC 8259 §8.1), never the UTF-16/32 that ``json.loads`` guesses.

    Raises:
        InputError: bad UTF-8 or a NUL byte (UTF-16 or UTF-32 text, whose ASCII is valid
            UTF-8 with NULs between), at the file:line:col of the first such byte.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        at = e.start
    else:
        at = data.find(b"\0")
        if at < 0:
            return text
    head = data[:at]
    line, col = head.count(b"\n") + 1, at - (head.rfind(b"\n") + 1) + 1
    raise InputError(f"{path}:{line}:{col}: not UTF-8 (RFC 8259 §8.1): JSON files must be UTF-8, not UTF-16 or UTF-32")


def load_json(path: str, data: bytes) -> Any:  # noqa: ANN401 - a JSON Schema document
    """Parse a schema file strictly: UTF-8 only (``utf8_text``), a repeated key is an error.

    Raises InputError at file:line:col.
    """
    text = utf8_text(path, data)
    try:
        return json.loads(text.removeprefix("\ufeff"), object_pairs_hook=reject_duplicate_keys)
    except json.JSONDecodeError as e:
        line = getattr(e, "lineno", 1)
        col = getattr(e, "colno", 1)
        raise InputError(f"{path}:{line}:{col}: invalid JSON: {getattr(e, 'msg', e)}") from e
    except RecursionError as e:
        raise InputError(f"{path}:1:1: invalid JSON: nested too deeply") from e
    except ValueError as e:
        raise InputError(f"{path}:1:1: invalid JSON: {e}") from e


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def locate(text: str, pointer: Pointer) -> tuple[int, int]:
    """Line and column (1-based) of the value at ``pointer`` in a JSON text; the deepest found part otherwise.

    The text has parsed already, so the scan trusts its syntax.
    """
    at = _WS.match(text).end()  # type: ignore[union-attr]
    for part in pointer:
        found = _member(text, at, part)
        if found is None:
            break
        at = found
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def _member(text: str, at: int, part: str | int) -> int | None:
    """Where the value of key or index ``part`` starts, in the object or array starting at ``at``."""
    if at >= len(text) or text[at] not in "{[":
        return None
    is_object = text[at] == "{"
    index = 0
    at = _WS.match(text, at + 1).end()  # type: ignore[union-attr]
    while at < len(text) and text[at] not in "}]":
        if is_object:
            key, at = _DECODER.raw_decode(text, at)
            at = _WS.match(text, _WS.match(text, at).end() + 1).end()  # type: ignore[union-attr]  # past ':'
            if key == str(part):
                return at
        elif index == part:
            return at
        at = _WS.match(text, _DECODER.raw_decode(text, at)[1]).end()  # type: ignore[union-attr]
        if at < len(text) and text[at] == ",":
            at = _WS.match(text, at + 1).end()  # type: ignore[union-attr]
        index += 1
    return None


def subschemas(node: Any, base: str, pointer: Pointer = ()) -> Iterator[tuple[Pointer, dict[str, Any], str]]:  # noqa: ANN401
    """Every subschema object in a schema document with its pointer and base URI (``$id`` applied)."""
    if not isinstance(node, dict):
        return
    ident = node.get("$id")
    if isinstance(ident, str):
        with contextlib.suppress(ValueError):  # not a URI: reported at its line (schema.check_document)
            base = urljoin(base, ident)
    yield pointer, node, base
    for key in _ONE:
        if key in node:
            yield from subschemas(node[key], base, (*pointer, key))
    for key in _LIST:
        subs = node.get(key)
        if isinstance(subs, list):
            for i, sub in enumerate(subs):
                yield from subschemas(sub, base, (*pointer, key, i))
    for key in _MAP:
        subs = node.get(key)
        if isinstance(subs, dict):
            for name, sub in subs.items():
                yield from subschemas(sub, base, (*pointer, key, name))


def identifiers(schema: Any, base: str) -> Iterator[tuple[Pointer, str, str]]:  # noqa: ANN401
    """``(pointer of the keyword, keyword, what it names)`` of every ``$id``, ``$anchor`` and
    ``$dynamicAnchor`` in a document: an ``$id`` names its resource's URI (fragment dropped),
    an anchor ``<its resource's URI>#<name>``."""
    for pointer, node, at in subschemas(schema, base):
        resource = urldefrag(at)[0]
        if isinstance(node.get("$id"), str):
            yield (*pointer, "$id"), "$id", resource
        for key in ("$anchor", "$dynamicAnchor"):
            if isinstance(node.get(key), str):
                yield (*pointer, key), key, f"{resource}#{node[key]}"


_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def uri_key(uri: str) -> str:
    """``uri`` (absolute, relative ones resolved first) in RFC 3986 normal form: two URIs the JSON
    Schema engine may take as one have one key, so ``check_identifiers`` compares keys.

    RFC 3986 §6.2.2: scheme and host in lower case (§6.2.2.1), percent-encoded unreserved
    characters decoded and other triplets in upper-case hex (§6.2.2.2), dot-segments removed
    (§6.2.2.3, the algorithm of §5.2.4); §6.2.3: a scheme's default port (and an empty
    port) dropped, the empty path of an http(s)/ws(s) URI with a host is ``/``. Where it is
    unsure whether jsonschema-rs 0.61 treats two forms as one, this takes them as one (fail
    closed: two schemas that may share a URI are refused, never resolved to either): the
    engine takes ``http://h`` and ``http://h/`` as two, here they are one, as are ``s?`` and ``s``.
    Case stays as written in userinfo, path, query and fragment (§6.2.2.1: case-sensitive).
    A string ``urlsplit`` cannot read (a bad IPv6 host) is its own key.
    """
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return uri
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if netloc or parts.hostname is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        host = hostport.lower()
        if host.startswith("["):
            host = host[: host.index("]") + 1]
        elif ":" in host:
            host = host[: host.index(":")]
        kept = "" if port is None or port == _DEFAULT_PORTS.get(scheme) else f":{port}"
        netloc = (f"{_percent(userinfo)}@" if "@" in netloc else "") + _percent(host) + kept
    path = remove_dot_segments(_percent(parts.path))
    if not path and netloc and scheme in _DEFAULT_PORTS:
        path = "/"
    return urlunsplit((scheme, netloc, path, _percent(parts.query), _percent(parts.fragment)))


def _percent(part: str) -> str:
    """RFC 3986 §6.2.2.2: ``%73`` -> ``s`` (unreserved), ``%2f`` -> ``%2F``."""

    def one(m: re.Match[str]) -> str:
        char = chr(int(m[1], 16))
        return char if char in _UNRESERVED else f"%{m[1].upper()}"

    return _PERCENT.sub(one, part)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, step by step: ``/x/./y/../z`` -> ``/x/z``."""
    out: list[str] = []
    rest = path
    while rest:
        if rest.startswith("../"):
            rest = rest[3:]
        elif rest.startswith(("./", "/./")):
            rest = rest[2:]
        elif rest == "/.":
            rest = "/"
        elif rest.startswith("/../") or rest == "/..":
            rest = "/" + rest[4:]
            if out:
                out.pop()
        elif rest in (".", ".."):
            rest = ""
        else:
            end = rest.find("/", 1)
            end = len(rest) if end == -1 else end
            out.append(rest[:end])
            rest = rest[end:]
    return "".join(out)


def check_identifiers(path: str, text: str, schema: Any, taken: dict[str, tuple[str, Pointer, str]]) -> None:  # noqa: ANN401
    """No URI names two schemas: each ``$id`` and anchor of ``schema`` (the file ``path``) is new.

    ``taken``: URI (its ``uri_key``: equivalent URIs are one) -> (file, pointer of the subschema,
    "file:line:col") of what the files checked before named, filled in here; a file's own URI
    names its root. JSON Schema 2020-12 core §9.1.2: "When multiple schemas try to identify as the same IRI, validators
    SHOULD raise an error condition" (§8.2.2: an anchor name twice in one resource). On some
    such schemas jsonschema-rs 0.61 panics ("A named target lives in its resolver's resource").

    Raises:
        InputError: at the line of the second keyword naming a URI, with where the first is.
    """
    own = uri_of(path)
    taken.setdefault(uri_key(own), (path, (), f"{path}:1:1"))
    for pointer, key, uri in identifiers(schema, own):
        node = pointer[:-1]
        first = taken.get(uri_key(uri))
        line, col = locate(text, pointer)
        if first is None:
            taken[uri_key(uri)] = (path, node, f"{path}:{line}:{col}")
        elif first[:2] != (path, node):  # one subschema may name itself twice ($id and path; two anchor kinds)
            name = _value_at(schema, pointer)
            raise InputError(
                f"{path}:{line}:{col}: {key} {name!r} names {_shown(uri)}, which {first[2]} names already "
                "(one URI, two schemas)"
            )


def _may_name(text: str) -> bool:
    """Whether a schema's text may hold a keyword that names a URI (a ``\\u`` escape can spell one)."""
    return "\\u" in text or '"$id"' in text or "Anchor" in text or '"$anchor"' in text


def _shown(uri: str) -> str:
    """A URI as a message shows it: a file under ``schemas/`` by its path."""
    doc, fragment = urldefrag(uri)
    where = path_of(doc)
    return (where or doc) + (f"#{fragment}" if fragment else "")


def _value_at(doc: Any, pointer: Pointer) -> Any:  # noqa: ANN401
    for part in pointer:
        doc = doc[part]
    return doc


def references(schema: Any, base: str) -> Iterator[tuple[Pointer, str, str]]:  # noqa: ANN401
    """``(pointer of the keyword, reference, base URI)`` of every ``$ref``/``$dynamicRef`` in a document."""
    for pointer, node, at in subschemas(schema, base):
        for key in _REF_KEYWORDS:
            ref = node.get(key)
            if isinstance(ref, str):
                yield (*pointer, key), ref, at


def decode_anchor_refs(schema: Any, base: str) -> dict[Pointer, str]:  # noqa: ANN401
    """Rewrite, in place, each ``$ref``/``$dynamicRef`` whose fragment holds a percent-encoding into the
    spelling jsonschema-rs 0.61 reads as the URI means it (RFC 3986 §2.1, RFC 6901 §6, 2020-12 core §8.2):

    - A fragment is percent-decoded before it is read (RFC 6901 §6: a JSON Pointer in a URI
      fragment is its percent-encoded UTF-8), so one that decodes to ``""`` or to text starting
      with ``/`` is a JSON Pointer: ``#%2F$defs%2Fsec`` is ``#/$defs/sec``, as ``#/$defs%2Fsec``
      is. The engine took a fragment that did not start with a literal ``/`` for an anchor name
      and refused it ("does not resolve"). It is written back decoded, with only what a fragment
      may not hold re-encoded (``%`` itself as ``%25``); ``~0``/``~1`` stay for the engine (§4).
    - Any other fragment is a plain name (an anchor): ``#%6Cim`` is ``#lim`` (RFC 3986 §6.2.2.2);
      the engine looked the anchor up by the fragment as written.

    A fragment whose percent-encoding is not UTF-8 is left as written: it names nothing, and the
    reference check refuses it at its line (fail closed).

    Returns:
        The pointer of each keyword rewritten -> the reference as written (what a message shows).
    """
    written: dict[Pointer, str] = {}
    for pointer, node, _ in subschemas(schema, base):
        for key in _REF_KEYWORDS:
            ref = node.get(key)
            if isinstance(ref, str) and "%" in ref and "#" in ref:
                doc, fragment = ref.split("#", 1)
                try:
                    decoded = unquote(fragment, errors="strict")
                except UnicodeDecodeError:
                    continue
                if decoded == "" or decoded.startswith("/"):
                    node[key] = f"{doc}#{quote(decoded, safe=_FRAGMENT_SAFE)}"
                else:
                    node[key] = f"{doc}#{_percent(fragment)}"
                if node[key] != ref:
                    written[(*pointer, key)] = ref
    return written


# What a fragment holds unencoded (RFC 3986 §3.5: pchar, "/", "?"), "%" left out: a literal one is "%25".
_FRAGMENT_SAFE = "!$&'()*+,;=:@/?~"


# Characters a URI reference may hold (RFC 3986 §2): anything else must be percent-encoded.
_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")


def check_uris(path: str, text: str, refs: list[tuple[Pointer, str, str]]) -> None:
    """Every reference is a URI reference. Raises InputError at the referring line.

    A file name with spaces or non-ASCII letters is referenced percent-encoded
    (``d%C3%ABfs%20%C3%A9.json`` for ``dëfs é.json``).
    """
    for pointer, ref, _ in refs:
        bad = _NOT_URI.search(ref)
        if bad is not None:
            line, col = locate(text, pointer)
            raise InputError(
                f"{path}:{line}:{col}: $ref {ref!r} is not a URI reference ({bad.group()!r}): "
                f"percent-encode it, e.g. {quote(ref, safe=_SAFE)!r}"
            )


_SAFE = "-._~:/?#[]@!$&'()*+,;=%"


def is_local(ref: str) -> bool:
    return ref.startswith("#")


def build_registry(resources: list[tuple[str, Any]]) -> tuple[jsonschema_rs.Registry, set[str]]:
    """A registry of ``resources``, and the URIs they reference that none of them is.

    The registry looks every referenced document up as it is built; one that is
    missing stands in as ``false`` (nothing valid), and the caller reports its
    ``$ref`` at the referring line (``compiler.validate.schema.check_references``).

    Raises:
        InputError: the registry refuses the resources (e.g. two files with one ``$id``).
    """
    missing: set[str] = set()

    def stand_in(uri: str) -> bool:
        missing.add(urldefrag(uri)[0])
        return False

    try:
        with panics_as(engine_failed(SCHEMAS + "/"), quiet=True):
            return jsonschema_rs.Registry(resources, retriever=stand_in), missing
    except (jsonschema_rs.ReferencingError, ValueError) as e:
        raise InputError(f"{SCHEMAS}/: cannot register the schema files: {str(e).splitlines()[0]}") from e


class SchemaFiles:
    """Every JSON file under ``schemas/`` of one source tree, parsed and registered once, on first need."""

    def __init__(self, tree: SourceTree) -> None:
        self.tree = tree
        self._docs: dict[str, tuple[Any, str]] | None = None
        self._registry: jsonschema_rs.Registry | None = None
        self.missing: set[str] = set()  # URIs referenced that no file is
        self._identified = False  # no URI names two schemas across the files (check_identifiers)
        self.checked = False  # the files that are not module schemas have been checked (schema.check_shared)
        self.written: dict[str, dict[Pointer, str]] = {}  # path -> references rewritten (decode_anchor_refs)

    def documents(self) -> dict[str, tuple[Any, str]]:
        """Repository path -> (parsed document, its text), for every ``*.json`` below ``schemas/``."""
        if self._docs is None:
            docs: dict[str, tuple[Any, str]] = {}
            for path in self.tree.list_tree(SCHEMAS):
                if path.endswith(".json"):
                    data = self.tree.read(path)
                    doc = load_json(path, data)
                    if not isinstance(doc, dict | bool):
                        raise InputError(f"{path}:1:1: a schema must be a JSON object or a boolean")
                    text = data.decode("utf-8")
                    if any(k in text for k in ('"$ref"', '"$dynamicRef"', "\\u")):
                        refs = list(references(doc, uri_of(path)))
                        check_uris(path, text, refs)
                        if any("%" in ref for _, ref, _ in refs):  # the walk again only when one may be encoded
                            self.written[path] = decode_anchor_refs(doc, uri_of(path))
                    docs[path] = (doc, text)
            self._docs = docs
        return self._docs

    def names(self) -> dict[str, str]:
        """The ``$id`` of each file that has one -> its repository path.

        Raises:
            InputError: two files claim one ``$id``, or an ``$id`` is another file's path (a
                reference to it would be ambiguous).
        """
        out: dict[str, str] = {}
        keys: dict[str, str] = {}  # uri_key of each $id in out -> its path
        files = {uri_key(uri_of(path)): path for path in self.documents()}
        for path, (doc, text) in self.documents().items():
            if isinstance(doc, dict) and isinstance(doc.get("$id"), str):
                ident = urldefrag(urljoin(uri_of(path), doc["$id"]))[0]
                key = uri_key(ident)
                other = keys.get(key) or (files.get(key) if key != uri_key(uri_of(path)) else None)
                if other is not None:
                    line, col = locate(text, ("$id",))
                    what = "$id" if key in keys else "path"
                    raise InputError(f"{path}:{line}:{col}: $id {doc['$id']!r} is already the {what} of {other}")
                out[ident] = keys[key] = path
        if not self._identified:
            # every file's own URI first: a subschema of one file may name another file's
            taken: dict[str, tuple[str, Pointer, str]] = {
                uri_key(uri_of(p)): (p, (), f"{p}:1:1") for p in self.documents()
            }
            for path, (doc, text) in self.documents().items():
                if _may_name(text):
                    check_identifiers(path, text, doc, taken)
            self._identified = True
        return out

    def registry(self) -> jsonschema_rs.Registry:
        """One registry of every file, each at ``uri_of(path)`` (and at its ``$id``)."""
        if self._registry is None:
            self.names()  # no $id twice
            resources = [(uri_of(path), doc) for path, (doc, _) in self.documents().items()]
            self._registry, self.missing = build_registry(resources)
        return self._registry
