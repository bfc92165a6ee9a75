"""YAML -> plain values plus an origin for every node, within bounded work.

The document is built from libyaml's event stream (ruamel.yaml.clib), not from
its composed node graph: composing recurses in C and crashes the interpreter on
a deeply nested document, and it is four times slower. Building from events
lets us stop at the first node past the limits. Positions are recorded as the
events pass and built into a table only when one is read (``positions.py``).

Invariants of a loaded ``Document``:

1. Values are plain JSON types; a node carrying one of the merge tags is a
   ``Tagged`` wrapper (``!override``, ``!append``, ``!prepend``, ``!delete``).
2. Scalars resolve by the YAML 1.2 core schema only. Timestamps stay strings
   (ruamel would make datetimes; JSON Schema formats apply to strings).
3. Duplicate keys, non-string keys, unknown tags, merge keys (``<<``) and
   multi-document streams are ``InputError`` at path:line:col.
4. Work is bounded: file size, nesting depth and the node count, both with
   aliases expanded (an alias bomb fails fast instead of being expanded
   downstream; an alias of a deep collection inside a deep collection is as
   deep as the two together, and every later step recurses over it).
5. Values are never mutated after loading; aliases share their target value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ruamel.yaml import events as ev
from ruamel.yaml.cyaml import CBaseLoader
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from compiler.diagnostics import Origin
from compiler.errors import InputError
from compiler.jsonpath import JsonPath
from compiler.load.positions import CLOSE, OPEN, Mark, Positions

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 2_000_000

MergeTag = Literal["override", "append", "prepend", "delete"]
MERGE_TAGS: dict[str, MergeTag] = {
    "!override": "override",
    "!append": "append",
    "!prepend": "prepend",
    "!delete": "delete",
}


@dataclass(frozen=True, slots=True)
class Tagged:
    """A node with a merge tag: how it combines with the value below it."""

    tag: MergeTag
    value: Value
    origin: Origin


Value: TypeAlias = "str | int | float | bool | list[Value] | dict[str, Value] | Tagged | None"


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """One loaded YAML file. ``positions`` maps a path from the document root to (line, column).

    A loaded document's ``positions`` is built on first use (``Positions``); any mapping will do.
    """

    path: str
    layer: str
    value: Value
    positions: Mapping[JsonPath, tuple[int, int]]
    nodes: int
    tagged: bool = False
    rev: str | None = None

    def origin(self, path: JsonPath) -> Origin:
        """The origin of the node at ``path``, or of its nearest ancestor that has one."""
        positions = self.positions
        table = positions.table() if isinstance(positions, Positions) else positions
        for end in range(len(path), -1, -1):
            pos = table.get(path[:end])
            if pos is not None:
                return Origin(path=self.path, line=pos[0], column=pos[1], layer=self.layer, rev=self.rev)
        return Origin(path=self.path, line=1, column=1, layer=self.layer, rev=self.rev)


_STD = "tag:yaml.org,2002:"
_INT = re.compile(r"[-+]?[0-9]+")
_INT_OCT = re.compile(r"0o[0-7]+")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
# The words of the core schema; no other plain scalar that starts with a letter resolves.
_WORDS: dict[str, bool | None] = {
    **dict.fromkeys(("null", "Null", "NULL")),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
}


def resolve_plain(text: str) -> str | int | float | bool | None:
    """YAML 1.2.2 core schema (section 10.3.2) for a plain scalar."""
    if not text:
        return None
    if text[0].isalpha():
        return _WORDS.get(text, text)  # fast path: most config scalars are words
    if text.isdigit() and text.isascii():
        return int(text)  # fast path: [0-9]+
    if "0" <= text[0] <= "9":
        # not [0-9]+, so not a decimal int; no infinity or NaN starts with a digit
        if _FLOAT.fullmatch(text):
            return float(text)
        if _INT_OCT.fullmatch(text):
            return int(text[2:], 8)
        if _INT_HEX.fullmatch(text):
            return int(text[2:], 16)
        return text
    if text == "~":
        return None
    if _INT.fullmatch(text):  # a signed one; 0o and 0x start with a digit
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text[0] == "-" else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


def float_problem(text: str, value: float) -> str | None:
    """Why the float that ``text`` spells cannot reach a bundle unchanged, or None (issue 10 §6).

    Bundles are JSON (RFC 8259 section 6: no NaN or infinity), read as IEEE 754
    doubles: a literal beyond a double's range would become infinity, and a
    non-zero one below its smallest subnormal (about 4.9e-324) would become 0.
    """
    if math.isnan(value) or (math.isinf(value) and _INF.fullmatch(text)):
        return f"{text} is not a JSON number (no NaN or infinity in JSON)"
    if math.isinf(value):
        return f"{text} is beyond the range of a double (about ±1.8e308): it would become infinity"
    if value == 0.0 and re.search(r"[1-9]", text.lower().partition("e")[0]):
        return f"{text} is too small for a double (under about 4.9e-324): it would become 0"
    return None


def _explicit(tag: str, text: str, where: str, *, quote: bool = True) -> str | int | float | bool | None:
    """A scalar with an explicit core tag (``!!str 1``); ``quote=False`` keeps the text out of the error."""
    kind = tag[len(_STD) :]
    if kind == "str":
        return text
    value = resolve_plain(text)
    ok = {
        "null": value is None,
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
    }
    if not ok.get(kind, False):
        raise InputError(f"{where}: {text!r} is not a valid !!{kind}" if quote else f"{where}: not a valid !!{kind}")
    if kind == "float" and isinstance(value, int):
        # an int past a double's range (`!!float 1000...0`) becomes infinity, which the
        # caller refuses as out of range, as it does `1e400`: float(int) would raise instead
        try:
            return float(value)
        except OverflowError:
            return -math.inf if value < 0 else math.inf
    return value


def load_document(data: bytes, *, path: str, layer: str, rev: str | None = None, quote_values: bool = True) -> Document:
    """Parse one YAML file.

    Args:
        data: the file's bytes (the caller reads them: STYLE R2).
        path: repository-relative path, for origins and errors.
        layer: the layer name recorded in every origin.
        quote_values: False for a SOPS file, whose values may be plaintext put there by
            hand: errors then name the place, never the scalar's text (issue 9 §5).

    Raises:
        InputError: bad YAML, or outside the core schema, or past a bound.
    """
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{path}: file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        return _build(data, path, layer, rev, quote_values)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise InputError(f"{where}: invalid YAML: {e.problem or e.context}") from e
    except ReaderError as e:
        # A byte libyaml refuses (control character, bad UTF-8): one line, at its line:col.
        head = data[: e.position]
        line = head.count(b"\n") + 1
        col = len(head) - (head.rfind(b"\n") + 1) + 1
        raise InputError(f"{path}:{line}:{col}: invalid YAML: {e.reason} (character #x{e.character:04x})") from e
    except YAMLError as e:
        raise InputError(f"{path}: invalid YAML: {e}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text: {e.reason} at byte {e.start}") from e


_SCALAR = ev.ScalarEvent
_MAP_START = ev.MappingStartEvent
_SEQ_START = ev.SequenceStartEvent
_MAP_END = ev.MappingEndEvent
_SEQ_END = ev.SequenceEndEvent
_ALIAS = ev.AliasEvent
_DOC_START = ev.DocumentStartEvent
_STREAM_END = ev.StreamEndEvent

# The innermost open collection's state: its map or list, the key waiting for its value,
# its node count with aliases expanded, and (rarely) its merge tag with the tag's origin, and
# its anchor with the deepest level reached outside it (an anchored collection measures its own height).
_Extra: TypeAlias = "tuple[MergeTag | None, Origin | None, str | None, int] | None"
_State: TypeAlias = tuple["dict[str, Value] | None", "list[Value] | None", "str | None", int, _Extra]


def _build(data: bytes, path: str, layer: str, rev: str | None, quote: bool) -> Document:
    # One loop over libyaml's events with everything in locals: this is most of a cold compile's
    # parse time (issue 14 §3), so the usual helpers are inlined. The innermost open collection
    # lives in locals (cur_map or cur_seq, key, size, tag, anchor); the ones around it wait on
    # `stack`. Rare cases (tags, errors) call out. tests/core/test_yaml_reference.py checks this
    # against the plain builder it replaced: same values, positions, node counts and errors.
    get = CBaseLoader(data).get_event
    record: list[object] = []
    note = record.append
    anchors: dict[str, tuple[Value, int, int]] = {}  # value, node count, height in collections (aliases expanded)
    stack: list[_State] = []
    max_depth, max_nodes = MAX_DEPTH, MAX_NODES
    nodes = documents = deepest = 0  # deepest: the deepest collection level reached, aliases expanded
    tagged = False
    root: Value = None
    cur_map: dict[str, Value] | None = None
    cur_seq: list[Value] | None = None
    key: str | None = None
    size = 0
    extra: _Extra = None
    value: Value
    while True:
        event = get()
        cls = type(event)
        if cls is _SCALAR:
            text: str = event.value
            # `ctag` is what `tag` returns as a string; reading it skips a property call.
            if event.ctag is None:
                try:
                    value = text if event.style else resolve_plain(text)
                except ValueError as e:
                    # int() refuses more than sys.get_int_max_str_digits() digits.
                    raise _fail(path, event.start_mark, f"number too long ({len(text)} characters)") from e
                if type(value) is float:
                    _check_float(text, value, path, event.start_mark, quote)
            else:
                value = _tagged_scalar(event, path, layer, rev, quote)
                tagged = tagged or type(value) is Tagged
            if event.anchor is not None:
                anchors[event.anchor] = (value, 1, 0)
            nodes += 1
            if nodes > max_nodes:
                raise _too_many(path, event.start_mark)
            if cur_map is not None:
                if key is None:
                    if type(value) is not str:
                        raise _fail(path, event.start_mark, "mapping keys must be strings (quote the key)")
                    if value == "<<" and event.implicit[0]:
                        raise _fail(path, event.start_mark, "merge keys (<<) are not supported; use layers")
                    if value in cur_map:
                        raise _fail(path, event.start_mark, f"duplicate key {value!r}")
                    key = value
                    note(value)
                    note(event.start_mark)
                else:
                    cur_map[key] = value
                    key = None
                    size += 1
            elif cur_seq is not None:
                note(event.start_mark)
                cur_seq.append(value)
                size += 1
            else:
                note(event.start_mark)
                root = value
        elif cls is _MAP_END or cls is _SEQ_END:
            value = cur_map if cur_map is not None else cur_seq
            if extra is not None:
                tag, tag_origin, anchor, outside = extra
                if tag is not None:
                    assert tag_origin is not None
                    _check_tag(tag, value, tag_origin)
                    value = Tagged(tag, value, tag_origin)
                    tagged = True
                if anchor is not None:
                    anchors[anchor] = (value, size, deepest - len(stack) + 1)
                    if outside > deepest:
                        deepest = outside
            child = size
            cur_map, cur_seq, key, size, extra = stack.pop()
            if cur_map is not None:
                assert key is not None
                cur_map[key] = value
                key = None
                size += child
            elif cur_seq is not None:
                cur_seq.append(value)
                size += child
            else:
                root = value
            note(CLOSE)
        elif cls is _MAP_START or cls is _SEQ_START:
            if len(stack) >= max_depth:
                raise _fail(path, event.start_mark, f"nesting deeper than {max_depth} levels")
            new_extra: _Extra = None
            if event.ctag is not None:
                new_extra = (*_collection_tag(event, cls is _MAP_START, path, layer, rev), event.anchor, deepest)
            elif event.anchor is not None:
                new_extra = (None, None, event.anchor, deepest)
            if cur_map is None:
                note(event.start_mark)
            elif key is None:
                raise _fail(path, event.start_mark, "mapping keys must be strings, not collections")
            note(OPEN)
            stack.append((cur_map, cur_seq, key, size, extra))
            if new_extra is not None and new_extra[2] is not None:
                deepest = len(stack)  # measured from here; the level reached outside waits in new_extra
            elif len(stack) > deepest:
                deepest = len(stack)
            if cls is _MAP_START:
                cur_map, cur_seq = {}, None
            else:
                cur_map, cur_seq = None, []
            key, size, extra = None, 1, new_extra
        elif cls is _ALIAS:
            target = anchors.get(event.anchor)
            if target is None:
                raise _fail(path, event.start_mark, f"unknown alias *{event.anchor}")
            value, alias_size, height = target
            nodes += alias_size
            if nodes > max_nodes:
                raise _too_many(path, event.start_mark)
            if cur_map is not None:
                if key is None:
                    raise _fail(path, event.start_mark, "mapping keys must be strings (quote the key)")
                cur_map[key] = value
                key = None
                size += alias_size
            else:
                # never the root: the anchor would have to come before the document's only root
                assert cur_seq is not None
                note(event.start_mark)
                cur_seq.append(value)
                size += alias_size
            if height:
                if len(stack) + height > max_depth:
                    raise _fail(path, event.start_mark, f"nesting deeper than {max_depth} levels with aliases expanded")
                if len(stack) + height > deepest:
                    deepest = len(stack) + height
        elif cls is _DOC_START:
            documents += 1
            if documents > 1:
                raise _fail(path, event.start_mark, "more than one YAML document in the file")
        elif cls is _STREAM_END:
            break
    return Document(
        path=path, layer=layer, value=root, positions=Positions(record), nodes=nodes, tagged=tagged, rev=rev
    )


def _fail(path: str, mark: Mark, message: str) -> InputError:
    return InputError(f"{path}:{mark.line + 1}:{mark.column + 1}: {message}")


def _too_many(path: str, mark: Mark) -> InputError:
    return _fail(path, mark, f"more than {MAX_NODES} nodes with aliases expanded")


def _origin(mark: Mark, path: str, layer: str, rev: str | None) -> Origin:
    return Origin(path=path, line=mark.line + 1, column=mark.column + 1, layer=layer, rev=rev)


def _check_float(text: str, value: float, path: str, mark: Mark, quote: bool) -> None:
    problem = float_problem(text, value)
    if problem is not None:
        # every problem starts with the text; a SOPS file's text is not shown
        raise _fail(path, mark, problem if quote else "the value" + problem[len(text) :])


def _tagged_scalar(event: ev.ScalarEvent, path: str, layer: str, rev: str | None, quote: bool) -> Value:
    """A scalar with a tag: ``!`` (a string), a merge tag, or an explicit core tag."""
    text: str = event.value
    tag = str(event.tag)
    mark: Mark = event.start_mark
    value: Value
    try:
        if tag == "!":
            return text
        if tag in MERGE_TAGS:
            origin = _origin(mark, path, layer, rev)
            merge_tag = MERGE_TAGS[tag]
            inner = resolve_plain(text) if not event.style else text
            _check_tag(merge_tag, inner, origin)
            value = Tagged(merge_tag, None if merge_tag == "delete" else inner, origin)
        elif tag.startswith(_STD) and tag[len(_STD) :] in ("str", "int", "float", "bool", "null"):
            value = _explicit(tag, text, f"{path}:{mark.line + 1}:{mark.column + 1}", quote=quote)
        else:
            raise _fail(path, mark, f"unknown tag {tag}")
    except ValueError as e:
        # int() refuses more than sys.get_int_max_str_digits() digits.
        raise _fail(path, mark, f"number too long ({len(text)} characters)") from e
    inner_value = value.value if isinstance(value, Tagged) else value
    if isinstance(inner_value, float):
        _check_float(text, inner_value, path, mark, quote)
    return value


def _collection_tag(
    event: ev.CollectionStartEvent, is_map: bool, path: str, layer: str, rev: str | None
) -> tuple[MergeTag | None, Origin | None]:
    tag = str(event.tag)
    fitting = f"{_STD}map" if is_map else f"{_STD}seq"
    if tag in (fitting, "!"):
        return None, None
    if tag in (f"{_STD}map", f"{_STD}seq"):
        raise _fail(path, event.start_mark, f"!!{tag[len(_STD) :]} does not fit this node")
    if tag in MERGE_TAGS:
        return MERGE_TAGS[tag], _origin(event.start_mark, path, layer, rev)
    raise _fail(path, event.start_mark, f"unknown tag {tag}")


def _check_tag(tag: MergeTag, value: Value, origin: Origin) -> None:
    """A tag that does not fit its own node is an input error (README "How it works")."""
    if tag in ("append", "prepend") and not isinstance(value, list):
        raise InputError(f"{origin.location()}: !{tag} needs a list, not {type_name(value)}")
    if tag == "delete" and value not in (None, ""):
        raise InputError(f"{origin.location()}: !delete takes no value")


def type_name(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if isinstance(value, Tagged):
        return f"!{value.tag}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a map"
