"""One path syntax: what every command prints is what every command accepts back.

Origins are keyed by a ``JsonPath``, the AAD of a sealed secret binds one, and
``diff``, ``explain``, ``history``, ``--format json``, schema and policy
diagnostics print one with ``format_path``. ``parse_path`` reads all of those
back, plus the short forms people type (``model.fallbacks.0``).

Grammar (ABNF, RFC 5234; the quoted forms follow RFC 9535 section 2.3.1)::

    path      = [ "$" ] [ bare ] *segment      ; "labels.x" as well as "$.labels.x"
    segment   = "." bare / "[" selector "]"
    selector  = index / quoted / field "=" item
    bare      = 1*( any character except . [ ] ' " \\ = and whitespace )  ; not "*" alone
    index     = "0" / %x31-39 *DIGIT           ; no sign, no leading zero
    quoted    = "'" *( char / escape ) "'" / DQUOTE *( char / escape ) DQUOTE
    escape    = "\\" ( "\\" / "'" / DQUOTE / "/" / "b" / "f" / "n" / "r" / "t" / "u" 4HEXDIG )
    field     = bare
    item      = [ "-" ] index / quoted / bare  ; the list item whose ``field`` equals ``item``

``format_path`` prints the canonical form: ``$``, then ``.key`` for a key of
``[A-Za-z_][A-Za-z0-9_-]*``, ``[0]`` for a list index, ``['key']`` for any other
key (the empty key, digit-only keys, dots, slashes, quotes, spaces), with
``\\``, ``'`` and non-printable characters escaped, so a path is one line, in
NFC (a key that would print otherwise has its non-ASCII characters escaped, so
no two keys print alike).

A digit-only segment that is not quoted (``.404``, ``[404]``) is parsed as an
int and means a list index only where the value is a list: on a map it is the
key ``"404"`` (``select``). A quoted one (``['404']``) is always a key.

Pure: no I/O; the runtime client reuses it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from compiler.errors import UsageError

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ItemKey:
    """A list item found by its key field, printed ``[name=chat]`` (``diff`` matches lists of maps so)."""

    field: str
    value: str | int


Segment = str | int | ItemKey
Query = tuple[Segment, ...]  # a parsed path; ``select`` turns each segment into a key or an index

_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"0|[1-9][0-9]*")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")  # an item's int value: ``[id=-3]`` (``diff`` matches any int)
_BARE = re.compile(r"""[^.\[\]'"\\=\s]+""")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_SHORT = {"\\": "\\\\", "'": "\\'", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def format_path(path: Query) -> str:
    """Render ``("model", "fallbacks", 0)`` as ``$.model.fallbacks[0]`` (the canonical form)."""
    out = ["$"]
    for part in path:
        if isinstance(part, ItemKey):
            out.append(f"[{part.field}={_item(part.value)}]")
        elif isinstance(part, int):
            out.append(f"[{part}]")
        elif _SIMPLE_KEY.fullmatch(part):
            out.append(f".{part}")
        else:
            out.append(f"[{quote(part)}]")
    return "".join(out)


def _item(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return value if _SIMPLE_KEY.fullmatch(value) else quote(value)


def quote(key: str) -> str:
    """``key`` in single quotes, escaped so that it reads back and stays on one line.

    The text printed is in Unicode NFC: a key whose printed form would not be
    (``"cafe\\u0301"``, the NFD twin of ``'café'``) has its non-ASCII characters
    escaped, so two keys of one map never print alike (UAX #15).
    """
    text = _quote(key, ascii_only=False)
    return text if unicodedata.is_normalized("NFC", text) else _quote(key, ascii_only=True)


def _quote(key: str, *, ascii_only: bool) -> str:
    out = ["'"]
    for ch in key:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ch.isprintable() and (ch.isascii() or not ascii_only):
            out.append(ch)
        elif ord(ch) > 0xFFFF:  # a UTF-16 surrogate pair, as JSON and RFC 9535 spell it
            n = ord(ch) - 0x10000
            out.append(f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    out.append("'")
    return "".join(out)


def parse_path(text: str) -> Query:
    """Parse any form of the grammar above: ``$.a['b.c'][0]``, ``a.b.0``, ``a["b"]``, ``routes[name=chat]``.

    Raises:
        UsageError: not a path; the message names the position and shows how to quote.
    """
    return _Parser(text).path()


def select(value: object, segment: Segment) -> str | int | None:
    """The key or index of ``value`` that ``segment`` addresses, or None when there is none.

    An int addresses a list index on a list and the key ``str(int)`` on a map
    (``error_pages.404``); a str addresses only a map key; an ``ItemKey`` the
    first map in a list whose ``field`` equals its value (type included).
    """
    if isinstance(segment, ItemKey):
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict) and _same(item.get(segment.field), segment.value):
                    return i
        return None
    if isinstance(segment, int):
        if isinstance(value, list):
            return segment if 0 <= segment < len(value) else None
        segment = str(segment)
    if isinstance(value, dict) and segment in value:
        return segment
    return None


def _same(a: object, b: str | int) -> bool:
    return type(a) is type(b) and a == b


def resolve(value: object, query: Query) -> tuple[JsonPath, object] | None:
    """The concrete path that ``query`` addresses in ``value`` and the value there, or None."""
    path: list[str | int] = []
    for segment in query:
        key = select(value, segment)
        if key is None:
            return None
        path.append(key)
        value = value[key]  # type: ignore[index]
    return tuple(path), value


def missing_at(value: object, query: Query) -> str:
    """The shortest prefix of ``query`` with no value, formatted (for "no value at ..." errors)."""
    path: list[Segment] = []
    for segment in query:
        key = select(value, segment)
        if key is None:
            return format_path((*path, segment))
        path.append(key)
        value = value[key]  # type: ignore[index]
    return format_path(tuple(path))


def no_value(source: str, module: str, value: object, query: Query) -> str:
    """``prod: inference-engine$.model.nope: no value``: how every "no value there" error starts.

    ``source`` names what was read (``prod``, ``prod version 3``); the
    address is ``module`` and the shortest prefix of ``query`` with no value
    in ``value`` (:func:`missing_at`), written ``MODULE$.PATH`` as
    :func:`split_address` reads it back. Callers may append context.
    """
    return f"{source}: {module}{missing_at(value, query)}: no value"


def split_address(text: str, modules: list[str], path: str | None = None) -> tuple[str, Query]:
    """``MODULE.PATH``, ``MODULE$.PATH``, ``MODULE['key']`` or ``config["MODULE"].PATH`` as (module, path).

    The module is the known module name that ``text`` starts with, followed by
    the end or by ``.``, ``$`` or ``[``. Module names may hold dots, so with
    modules ``gate`` and ``gate.way`` the text ``gate.way.x`` could be either:
    such a text is refused, never resolved by a guess; ``$`` ends the module
    name (``gate.way$.x``, ``gate$.way.x``), and so does a separate ``path``.
    ``path``, when given, is the path written apart (``MODULE PATH``, as
    ``explain`` and ``history`` print it); then ``text`` must be the module alone.

    Raises:
        UsageError: no known module starts ``text``, two do, the rest is not a
            path, or the path is given twice.
    """
    twice = UsageError(f"{text!r}: give the path once, in MODULE.PATH or as a separate PATH")
    if path is not None and text in modules:
        return text, parse_path(path)
    readings: dict[str, Query] = {}
    bad: UsageError | None = None
    for module in sorted(modules, key=len, reverse=True):
        if text == module or (text.startswith(module) and text[len(module)] in ".$["):
            rest = text[len(module) :]
            try:
                readings[module] = parse_path(rest[1:] if rest[:1] == "." else rest)
            except UsageError as e:
                bad = bad or e
    selection = _selection(text, modules) if "config" in readings else None
    if selection is not None:  # a module named config, and a policy finding's selection of another one
        raise UsageError(
            f"{text!r} is ambiguous: module 'config' or a policy selection; "
            f"write config{format_path(readings['config'])} or {selection[0]}{format_path(selection[1])}"
        )
    marked = [m for m in readings if text.startswith(m + "$")]
    if len(marked) == 1:
        readings = {marked[0]: readings[marked[0]]}
    if len(readings) > 1:
        forms = " or ".join(m + format_path(q) for m, q in readings.items())
        raise UsageError(
            f"{text!r} is ambiguous: modules {' and '.join(map(repr, readings))} both start it; write {forms}"
        )
    if readings:
        if path is not None:
            raise twice
        return next(iter(readings.items()))
    if bad is not None:
        raise bad
    selection = _selection(text, modules)
    if selection is not None:
        if path is None:
            return selection
        if not selection[1]:
            return selection[0], parse_path(path)
        raise twice
    module = re.split(r"[.$\[]", text, maxsplit=1)[0]
    raise UsageError(f"unknown module {module!r}; modules: {', '.join(modules)}")


def _selection(text: str, modules: list[str]) -> tuple[str, Query] | None:
    """A policy finding's selection, ``config["m"].a.b`` or ``config.m.a.b``, as (module, path); else None."""
    if not re.match(r"config[.\[]", text):
        return None
    query = parse_path(text[len("config") :])
    if query and isinstance(query[0], str) and query[0] in modules:
        return query[0], query[1:]
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> UsageError:
        hint = "quote keys that are not plain words: $.labels['app.kubernetes.io/name'], $.pages['404']"
        return UsageError(f"{self.text!r} is not a path: {why} at character {self.pos + 1} ({hint})")

    def path(self) -> Query:
        out: list[Segment] = []
        if self.text.startswith("$"):
            self.pos = 1
        elif self.text and self.text[0] not in ".[":
            out.append(self.bare())
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == ".":
                out.append(self.bare())
            elif ch == "[":
                out.append(self.selector())
                self.expect("]")
            else:
                self.pos -= 1
                raise self.fail(f"unexpected {ch!r}")
        return tuple(out)

    def expect(self, ch: str) -> None:
        if not self.text.startswith(ch, self.pos):
            raise self.fail(f"expected {ch!r}")
        self.pos += 1

    def bare(self) -> str | int:
        m = _BARE.match(self.text, self.pos)
        if m is None:
            raise self.fail("expected a key")
        word = m.group()
        if word == "*":  # JSONPath's wildcard (RFC 9535): never read as the key "*"
            raise self.fail("a wildcard (*) names no single value; a key named * is ['*']")
        self.pos = m.end()
        return int(word) if _INDEX.fullmatch(word) else word

    def selector(self) -> Segment:
        if self.text.startswith(("'", '"'), self.pos):
            return self.quoted()
        m = _INDEX.match(self.text, self.pos)
        if m is not None and self.text.startswith("]", m.end()):
            self.pos = m.end()
            return int(m.group())
        start = self.pos
        field = self.bare()
        if not isinstance(field, str) or not self.text.startswith("=", self.pos):
            self.pos = start
            raise self.fail("expected a list index, a quoted key or field=value")
        self.pos += 1
        if self.text.startswith(("'", '"'), self.pos):
            return ItemKey(field, self.quoted())
        m = _INT.match(self.text, self.pos)
        if m is not None and self.text.startswith("]", m.end()):
            self.pos = m.end()
            return ItemKey(field, int(m.group()))
        return ItemKey(field, self.bare())

    def quoted(self) -> str:
        q = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == q:
                return "".join(out)
            if ch != "\\":
                out.append(ch)
                continue
            esc = self.text[self.pos : self.pos + 1]
            self.pos += 1
            if esc == "u":
                out.append(self.unicode())
            elif esc in _ESCAPES:
                out.append(_ESCAPES[esc])
            else:
                self.pos -= 2
                raise self.fail(f"unknown escape \\{esc}")
        raise self.fail(f"unterminated {q}-quoted key")

    def unicode(self) -> str:
        code = self.hex4()
        if 0xD800 <= code < 0xDC00 and self.text.startswith("\\u", self.pos):
            save = self.pos
            self.pos += 2
            low = self.hex4()
            if 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
            self.pos = save
        return chr(code)

    def hex4(self) -> int:
        digits = self.text[self.pos : self.pos + 4]
        if not re.fullmatch(r"[0-9A-Fa-f]{4}", digits):
            raise self.fail("expected four hex digits after \\u")
        self.pos += 4
        return int(digits, 16)
