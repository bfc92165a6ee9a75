"""JSON paths as tuples of keys and indexes, printed as ``$.model.temperature``.

The path is what origins are keyed by, what the AAD of a sealed secret binds,
and what ``explain`` takes on the command line (``inference-engine.model.x``).
"""

from __future__ import annotations

import re

from compiler.errors import UsageError

JsonPath = tuple[str | int, ...]

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(path: JsonPath) -> str:
    """Render ``("model", "fallbacks", 0)`` as ``$.model.fallbacks[0]``."""
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _SIMPLE_KEY.match(part):
            out.append(f".{part}")
        else:
            out.append("[" + _quote(part) + "]")
    return "".join(out)


def _quote(key: str) -> str:
    return "'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_dotted(text: str) -> JsonPath:
    """Parse the CLI form ``model.fallbacks.0`` or ``model.fallbacks[0]``.

    Digits-only segments become list indexes.
    """
    parts: list[str | int] = []
    for seg in re.split(r"\.(?![^\[]*\])", text):
        if not seg:
            raise UsageError(f"{text!r}: empty path segment (write MODULE.a.b or MODULE.list[0])")
        m = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", seg)
        if m is None:
            parts.append(seg)
            continue
        head, idx = m.group(1), m.group(2)
        if head:
            parts.append(int(head) if head.isdigit() else head)
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", idx))
    return tuple(parts)
