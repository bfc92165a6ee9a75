"""The YAML builder as it was before issue 14 §3, kept as a test-only reference.

tests/core/test_yaml_reference.py checks that ``compiler.load.yaml`` gives the same values,
positions, node counts and errors as this one over random documents. Do not optimise it.
"""

from __future__ import annotations

import math
import re

from ruamel.yaml import events as ev
from ruamel.yaml.cyaml import CBaseLoader
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from compiler.diagnostics import Origin
from compiler.errors import InputError
from compiler.jsonpath import JsonPath
from compiler.load import yaml as current
from compiler.load.yaml import MERGE_TAGS, Document, MergeTag, Tagged, Value, float_problem, type_name

_STD = "tag:yaml.org,2002:"
_INT = re.compile(r"[-+]?[0-9]+")
_INT_OCT = re.compile(r"0o[0-7]+")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})


def resolve_plain(text: str) -> str | int | float | bool | None:
    """YAML 1.2.2 core schema (section 10.3.2) for a plain scalar."""
    if not text:
        return None
    c = text[0]
    if c.isalpha() and c not in "tTfFnN":
        return text  # fast path: most config scalars are words
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _INT_OCT.fullmatch(text):
        return int(text[2:], 8)
    if _INT_HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text[0] == "-" else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


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
    return float(value) if kind == "float" and isinstance(value, int) else value


class _Frame:
    __slots__ = ("anchor", "container", "key", "key_pos", "path", "size", "tag", "tag_origin")

    def __init__(
        self,
        container: dict[str, Value] | list[Value],
        path: JsonPath,
        tag: MergeTag | None,
        tag_origin: Origin | None,
        anchor: str | None,
    ) -> None:
        self.container = container
        self.path = path
        self.key: str | None = None
        self.key_pos: tuple[int, int] | None = None
        self.tag = tag
        self.tag_origin = tag_origin
        self.anchor = anchor
        self.size = 1


class _Builder:
    def __init__(self, path: str, layer: str, rev: str | None, *, quote: bool = True) -> None:
        self.quote = quote
        self.path = path
        self.layer = layer
        self.rev = rev
        self.origins: dict[JsonPath, tuple[int, int]] = {}
        self.anchors: dict[str, tuple[Value, int]] = {}
        self.nodes = 0
        self.root: Value = None
        self.tagged = False

    def origin(self, mark: object) -> Origin:
        line, col = _pos(mark)
        return Origin(path=self.path, line=line, column=col, layer=self.layer, rev=self.rev)

    def fail(self, mark: object, message: str) -> InputError:
        return InputError(f"{self.origin(mark).location()}: {message}")

    def build(self, data: bytes) -> Document:
        loader = CBaseLoader(data)
        get = loader.get_event
        stack: list[_Frame] = []
        documents = 0
        while True:
            event = get()
            if isinstance(event, ev.ScalarEvent):
                value = self.scalar(event)
                self.place(stack, value, _pos(event.start_mark), 1, event)
            elif isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
                if len(stack) >= current.MAX_DEPTH:
                    raise self.fail(event.start_mark, f"nesting deeper than {current.MAX_DEPTH} levels")
                tag, tag_origin = self.collection_tag(event)
                is_map = isinstance(event, ev.MappingStartEvent)
                container: dict[str, Value] | list[Value] = {} if is_map else []
                frame_path = self.child_path(stack)
                if stack and stack[-1].key is None and isinstance(stack[-1].container, dict):
                    raise self.fail(event.start_mark, "mapping keys must be strings, not collections")
                pos = _pos(event.start_mark)
                if stack:
                    self.origins[frame_path] = stack[-1].key_pos or pos
                else:
                    self.origins[()] = pos
                stack.append(_Frame(container, frame_path, tag, tag_origin, event.anchor))
            elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                frame = stack.pop()
                value = frame.container
                if frame.tag is not None:
                    assert frame.tag_origin is not None
                    self.check_tag(frame.tag, value, frame.tag_origin)
                    value = Tagged(frame.tag, value, frame.tag_origin)
                    self.tagged = True
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (value, frame.size)
                if stack:
                    self.attach(stack, value, frame.size, event)
                else:
                    self.root = value
            elif isinstance(event, ev.AliasEvent):
                if event.anchor not in self.anchors:
                    raise self.fail(event.start_mark, f"unknown alias *{event.anchor}")
                value, size = self.anchors[event.anchor]
                self.place(stack, value, _pos(event.start_mark), size, event, alias=True)
                if len(stack) + _height(value) > current.MAX_DEPTH:
                    raise self.fail(
                        event.start_mark, f"nesting deeper than {current.MAX_DEPTH} levels with aliases expanded"
                    )
            elif isinstance(event, ev.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self.fail(event.start_mark, "more than one YAML document in the file")
            elif isinstance(event, ev.StreamEndEvent):
                break
        return Document(
            path=self.path,
            layer=self.layer,
            value=self.root,
            positions=self.origins,
            nodes=self.nodes,
            tagged=self.tagged,
            rev=self.rev,
        )

    def child_path(self, stack: list[_Frame]) -> JsonPath:
        if not stack:
            return ()
        top = stack[-1]
        if isinstance(top.container, dict):
            return (*top.path, top.key) if top.key is not None else top.path
        return (*top.path, len(top.container))

    def count(self, size: int, event: ev.Event) -> None:
        self.nodes += size
        if self.nodes > current.MAX_NODES:
            raise self.fail(event.start_mark, f"more than {current.MAX_NODES} nodes with aliases expanded")

    def place(
        self,
        stack: list[_Frame],
        value: Value,
        pos: tuple[int, int],
        size: int,
        event: ev.Event,
        *,
        alias: bool = False,
    ) -> None:
        """A scalar or alias: a mapping key, a mapping value, or a list item."""
        self.count(size, event)
        if not stack:
            self.origins[()] = pos
            self.root = value
            return
        top = stack[-1]
        if isinstance(top.container, dict) and top.key is None:
            if alias or not isinstance(value, str):
                raise self.fail(event.start_mark, "mapping keys must be strings (quote the key)")
            if value == "<<" and getattr(event, "implicit", (False,))[0]:
                raise self.fail(event.start_mark, "merge keys (<<) are not supported; use layers")
            if value in top.container:
                raise self.fail(event.start_mark, f"duplicate key {value!r}")
            top.key = value
            top.key_pos = pos
            return
        path = self.child_path(stack)
        self.origins[path] = top.key_pos if isinstance(top.container, dict) and top.key_pos else pos
        self.attach(stack, value, size, event)

    def attach(self, stack: list[_Frame], value: Value, size: int, event: ev.Event) -> None:
        top = stack[-1]
        top.size += size
        if isinstance(top.container, dict):
            assert top.key is not None
            top.container[top.key] = value
            top.key = None
            top.key_pos = None
        else:
            top.container.append(value)

    def scalar(self, event: ev.ScalarEvent) -> Value:
        text: str = event.value
        tag = event.tag
        value: Value
        try:
            if tag is None or tag == "!":
                plain = event.style is None or event.style == ""
                value = resolve_plain(text) if plain and tag is None else text
            elif tag in MERGE_TAGS:
                origin = self.origin(event.start_mark)
                merge_tag = MERGE_TAGS[tag]
                inner = resolve_plain(text) if not event.style else text
                self.check_tag(merge_tag, inner, origin)
                value = Tagged(merge_tag, None if merge_tag == "delete" else inner, origin)
                self.tagged = True
            elif tag.startswith(_STD) and tag[len(_STD) :] in ("str", "int", "float", "bool", "null"):
                value = _explicit(tag, text, self.origin(event.start_mark).location(), quote=self.quote)
            else:
                raise self.fail(event.start_mark, f"unknown tag {tag}")
        except ValueError as e:
            # int() refuses more than sys.get_int_max_str_digits() digits.
            raise self.fail(event.start_mark, f"number too long ({len(text)} characters)") from e
        inner_value = value.value if isinstance(value, Tagged) else value
        if isinstance(inner_value, float):
            problem = float_problem(text, inner_value)
            if problem is not None:
                # every problem starts with the text; a SOPS file's text is not shown
                raise self.fail(event.start_mark, problem if self.quote else "the value" + problem[len(text) :])
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        return value

    def collection_tag(self, event: ev.CollectionStartEvent) -> tuple[MergeTag | None, Origin | None]:
        tag = event.tag
        fitting = f"{_STD}map" if isinstance(event, ev.MappingStartEvent) else f"{_STD}seq"
        if tag is None or tag in (fitting, "!"):
            return None, None
        if tag in (f"{_STD}map", f"{_STD}seq"):
            raise self.fail(event.start_mark, f"!!{tag[len(_STD) :]} does not fit this node")
        if tag in MERGE_TAGS:
            return MERGE_TAGS[tag], self.origin(event.start_mark)
        raise self.fail(event.start_mark, f"unknown tag {tag}")

    def check_tag(self, tag: MergeTag, value: Value, origin: Origin) -> None:
        """A tag that does not fit its own node is an input error (README "How it works")."""
        if tag in ("append", "prepend") and not isinstance(value, list):
            raise InputError(f"{origin.location()}: !{tag} needs a list, not {type_name(value)}")
        if tag == "delete" and value not in (None, ""):
            raise InputError(f"{origin.location()}: !delete takes no value")


def _height(value: Value) -> int:
    """The collection levels of ``value``, aliases expanded (a bound added after this builder was replaced)."""
    if isinstance(value, Tagged):
        return _height(value.value)
    if isinstance(value, dict):
        return 1 + max(map(_height, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_height, value), default=0)
    return 0


def _pos(mark: object) -> tuple[int, int]:
    return (getattr(mark, "line", 0) + 1, getattr(mark, "column", 0) + 1)


def load_reference(
    data: bytes, *, path: str, layer: str, rev: str | None = None, quote_values: bool = True
) -> Document:
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
    if len(data) > current.MAX_FILE_BYTES:
        raise InputError(f"{path}: file is {len(data)} bytes; the limit is {current.MAX_FILE_BYTES}")
    try:
        return _Builder(path, layer, rev, quote=quote_values).build(data)
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
