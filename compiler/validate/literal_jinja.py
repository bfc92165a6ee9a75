"""Jinja syntax where nothing renders it is an error, not literal text (issue 10 §1).

llmcc renders Jinja in one place only: the string values of
``templates/*.yaml``. Written anywhere else, ``{{ x }}`` would reach the bundle
as those very characters, silently. The places, and what each gets:

1. a key of a template: ``InputError`` at the key (keys are not rendered);
2. a ``{%`` statement in a YAML comment of a template: ``InputError`` at the
   comment (a line-level ``{% if %}``, as in Helm, is only a comment here).
   ``{{`` in a comment is left alone: comments document templates;
3. a key or a string value of a plain layer file (``vars:`` and
   ``modules:``), and a key of a SOPS layer file: an error diagnostic at it
   (exit 1). A SOPS file's values are secrets and never judged.

Text meant for another templating system at request time (a prompt's
placeholders) is written with other delimiters (``${name}``), or inside
``{% raw %}...{% endraw %}`` in a template.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING

from ruamel.yaml import events as ev
from ruamel.yaml.cyaml import CBaseLoader

from compiler.diagnostics import Diagnostic
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Tagged, Value

if TYPE_CHECKING:
    from compiler.compile.types import LayerDoc

MARKERS = ("{{", "{%", "{#")
LAYER_MESSAGE = (
    "Jinja syntax in a layer file is never rendered (only templates/ are): "
    "move the expression into the module's template, or write literal text without {{ {% {#"
)
KEY_MESSAGE = "Jinja syntax in a key is never rendered (only string values of templates are)"
COMMENT_MESSAGE = (
    "a Jinja statement in a YAML comment is never rendered: llmcc renders string values, not lines "
    "(use a single-expression value, e.g. '{{ x if cond else y }}')"
)
_COMMENT = re.compile(r"(?:^|(?<=[ \t]))#")


def has_jinja(text: str) -> bool:
    """Whether ``text`` holds a Jinja delimiter: the test the template renderer uses for a scalar."""
    return any(m in text for m in MARKERS)


def check_layer(layer: LayerDoc) -> list[Diagnostic]:
    """Jinja syntax in a layer file's keys, and in its values unless it is a SOPS file."""
    doc = layer.document
    value = doc.value
    if not isinstance(value, dict):
        return []
    text = repr(value)  # in C: a key or string holding a marker shows it unescaped ({ % # are printable)
    if not any(m in text for m in MARKERS):
        return []  # most layer files: no walk
    found: list[tuple[JsonPath, bool]] = []
    for name, child in value.items():
        if layer.ref.secrets and name == "sops":
            continue
        _walk(child, (name,), values=not layer.ref.secrets, out=found)
    return [_diagnostic(layer, path, is_key) for path, is_key in found]


def _walk(value: Value, path: JsonPath, *, values: bool, out: list[tuple[JsonPath, bool]]) -> None:
    if isinstance(path[-1], str) and has_jinja(path[-1]):
        out.append((path, True))
    if isinstance(value, Tagged):
        value = value.value
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, (*path, k), values=values, out=out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(v, (*path, i), values=values, out=out)
    elif values and isinstance(value, str) and has_jinja(value):
        out.append((path, False))


def _diagnostic(layer: LayerDoc, path: JsonPath, key: bool) -> Diagnostic:
    origin = layer.document.origin(path)
    message = KEY_MESSAGE if key else LAYER_MESSAGE
    if len(path) >= 2 and path[0] == "modules" and isinstance(path[1], str):
        return Diagnostic(message=message, origin=origin, module=path[1], path=path[2:])
    return Diagnostic(message=message, origin=origin)


def jinja_in_comments(data: bytes) -> list[tuple[int, int]]:
    """(line, column), 1-based, of each YAML comment holding a ``{%`` statement.

    ``data`` must be valid YAML (parse it first). A ``#`` is a comment when it
    starts the line or follows a blank and lies in no scalar; scalar spans come
    from libyaml's events, so a ``#`` inside a block scalar or a quoted string
    is text, not a comment.
    """
    text = data.decode("utf-8-sig")
    if "{%" not in text:
        return []
    covered: dict[int, list[tuple[int, float]]] = defaultdict(list)
    loader = CBaseLoader(data)
    while (event := loader.get_event()) is not None and not isinstance(event, ev.StreamEndEvent):
        if isinstance(event, ev.ScalarEvent):
            start, end = event.start_mark, event.end_mark
            if start.line == end.line:
                covered[start.line].append((start.column, end.column))
                continue
            covered[start.line].append((start.column, float("inf")))
            for inside in range(start.line + 1, end.line):
                covered[inside].append((0, float("inf")))
            covered[end.line].append((0, end.column))
    found = []
    for n, line in enumerate(text.split("\n")):
        for m in _COMMENT.finditer(line):
            col = m.start()
            if any(a <= col < b for a, b in covered.get(n, ())):
                continue
            if "{%" in line[col:]:
                found.append((n + 1, col + 1))
            break  # the rest of the line is the comment
    return found


__all__ = ["check_layer", "has_jinja", "jinja_in_comments"]
