"""Plain YAML scalars that sops and llmcc read differently (issue 9 §5).

llmcc reads every layer with the YAML 1.2 core schema. sops parses the
plaintext it encrypts with go-yaml v3, which keeps YAML 1.1 habits, and stores
the *typed* value: ``password: 2024-01-01`` becomes a timestamp and comes back
as ``2024-01-01T00:00:00Z``; ``mode: 0755`` comes back as 493. So before sops
sees a plaintext file, every unquoted scalar (keys too) is read three ways and
refused, at its line, when the readings differ:

1. YAML 1.2 core (``compiler.load.yaml.resolve_plain``): what a plain layer means.
2. go-yaml v3 as sops 3.x runs it (``_go_yaml``; tested against the real binary):
   underscores in numbers, ``0755`` octal, ``0b`` binary, date-like timestamps,
   integers past 64 bits (sops fails or rounds them to a float).
3. The YAML 1.1 type repository (yaml.org/type: bool, int, float, null,
   timestamp, merge, value) where it reads a non-string: ``yes``/``no``/``on``/
   ``off``/``y``/``n`` booleans and base-60 ``1:30``. sops 3.11 reads those as
   strings, older YAML 1.1 parsers did not; a quoted value means the same to all.

Tags are refused too, except the core ones (``!!str`` and friends): sops drops
merge tags (``!override``) and turns ``!!binary`` into bytes. A core tag does
not hide a value: go-yaml resolves ``!!int``/``!!float``/``!!bool``/``!!null``
text, quoted or not, like a plain scalar (``!!int "0755"`` is 493), and takes
``!`` on a plain scalar for no tag (``! 0755``: llmcc reads a string). Messages
name the two readings, never the value.
"""

from __future__ import annotations

import math
import re

from ruamel.yaml import events as ev
from ruamel.yaml.cyaml import CBaseLoader

from compiler.diagnostics import diagnostic_from_message, plural
from compiler.errors import ConfigCheckError
from compiler.load.yaml import resolve_plain

_STD = "tag:yaml.org,2002:"
_CORE_TAGS = frozenset(f"{_STD}{k}" for k in ("str", "int", "float", "bool", "null", "map", "seq"))
_RESOLVED_TAGS = frozenset(f"{_STD}{k}" for k in ("int", "float", "bool", "null"))
_INT64 = range(-(2**63), 2**63)

# YAML 1.1 type repository, https://yaml.org/type/ (each regexp from its page).
_Y11_BOOL = frozenset(
    [
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
    ]
)
_Y11_NULL = frozenset({"~", "null", "Null", "NULL", ""})
_Y11_INT = (
    (re.compile(r"[-+]?0b[0-1_]+"), "a binary integer"),
    (re.compile(r"[-+]?0[0-7_]+"), "an octal integer"),
    (re.compile(r"[-+]?(0|[1-9][0-9_]*)"), "an integer"),
    (re.compile(r"[-+]?0x[0-9a-fA-F_]+"), "a hexadecimal integer"),
    (re.compile(r"[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+"), "a base-60 integer"),
)
_Y11_FLOAT = (
    (re.compile(r"[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?"), "a float"),
    (re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*"), "a base-60 float"),
    (re.compile(r"[-+]?\.(inf|Inf|INF)"), "infinity"),
    (re.compile(r"\.(nan|NaN|NAN)"), "NaN"),
)
_Y11_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]*)?"
    r"(([ \t]*)Z|[-+][0-9]{1,2}(:[0-9]{2})?)?"
)
# go-yaml v3 (resolve.go): a scalar starting with 4 digits and "-" is tried as a timestamp;
# a number loses its underscores and is parsed by Go's strconv (base prefix 0, 0b, 0o, 0x).
_GO_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}.*)?")
_GO_INT = re.compile(r"[-+]?(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_BAD_UNDERSCORE = re.compile(r"(?<![0-9])_|_(?![0-9])")
_GO_SPECIAL: dict[str, object] = {
    **{k: True for k in ("true", "True", "TRUE")},
    **{k: False for k in ("false", "False", "FALSE")},
    **{k: None for k in ("", "~", "null", "Null", "NULL")},
    **{k: math.inf for k in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{k: -math.inf for k in ("-.inf", "-.Inf", "-.INF")},
    **{k: math.nan for k in (".nan", ".NaN", ".NAN")},
}

_NEGATIVE_ZERO = "negative zero (sops decrypts it as 0)"
_ALWAYS = frozenset({"a timestamp", "a merge key", "a value key"})
Reading = tuple[str, object]  # (what it is, in words; the value)


def yaml11_reading(text: str) -> Reading:
    """How the YAML 1.1 type repository reads a plain scalar."""
    if text in _Y11_BOOL:
        return "a boolean", text.lower() in ("y", "yes", "true", "on")
    if text in _Y11_NULL:
        return "null", None
    if text == "<<":
        return "a merge key", text
    if text == "=":
        return "a value key", text
    for pattern, kind in _Y11_INT:
        if pattern.fullmatch(text):
            return kind, _y11_int(text)
    for pattern, kind in _Y11_FLOAT:
        if pattern.fullmatch(text):
            return kind, _y11_float(text)
    if _Y11_TIMESTAMP.fullmatch(text):
        return "a timestamp", text
    return "a string", text


def go_yaml_reading(text: str) -> Reading:
    """How go-yaml v3, the parser inside sops 3.x, reads a plain scalar (its ``resolve``)."""
    if text in _GO_SPECIAL:
        value = _GO_SPECIAL[text]
        return _kind(value), value
    if text == "<<":
        return "a merge key", text
    if not text or not (text[0].isdigit() or text[0] in "+-."):
        return "a string", text
    if text[0] != "." and _GO_TIMESTAMP.fullmatch(text):
        return "a timestamp", text
    # "." starts a float for Go's ParseFloat, which allows "_" between digits (".1_0" is 0.1).
    plain = text.replace("_", "") if text[0] != "." or not _GO_BAD_UNDERSCORE.search(text) else text
    if _GO_INT.fullmatch(plain):
        value = _go_int(plain)
        if value in _INT64:
            return _go_int_kind(text, plain), value
        if value < 2**64:
            return "an integer beyond 64 bits (sops cannot encrypt it)", value
    if _GO_FLOAT.fullmatch(plain):
        f = float(plain)
        if f == 0 and math.copysign(1, f) < 0:
            return _NEGATIVE_ZERO, f
        return ("a float", f) if math.isfinite(f) else ("a string", text)
    return "a string", text


def disagreement(text: str) -> str | None:
    """Why sops (or YAML 1.1) and llmcc read the plain scalar ``text`` differently; None when they agree."""
    mine = resolve_plain(text)
    kind, value = go_yaml_reading(text)
    if not _same(value, mine) or kind in _ALWAYS or "64 bits" in kind or kind == _NEGATIVE_ZERO:
        return f"sops reads this unquoted value as {kind}, llmcc (YAML 1.2) as {_describe(mine)}"
    kind, value = yaml11_reading(text)
    if kind != "a string" and (not _same(value, mine) or kind in _ALWAYS):
        return f"YAML 1.1 (older sops) reads this unquoted value as {kind}, llmcc (YAML 1.2) as {_describe(mine)}"
    return None


def ambiguous_scalars(data: bytes, *, path: str) -> list[str]:
    """``path:line:col: <why>; quote it`` for every scalar sops would read differently.

    The YAML is assumed loadable (the caller loaded it with ``load_document``).
    """
    out: list[str] = []
    for event in _events(data):
        tag = getattr(event, "tag", None)
        where = f"{path}:{event.start_mark.line + 1}:{event.start_mark.column + 1}"
        if tag not in (None, "!") and tag not in _CORE_TAGS:
            shown = "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag
            out.append(f"{where}: sops drops or converts the tag {shown}: a SOPS file holds plain values")
        elif isinstance(event, ev.ScalarEvent):
            why = _tagged_disagreement(event.value, tag, plain=not event.style)
            if why is not None:
                out.append(f"{where}: {why}")
    return out


def _tagged_disagreement(text: str, tag: str | None, *, plain: bool) -> str | None:
    """``disagreement`` for a scalar with its tag and style (``why; what to do``), or None.

    go-yaml v3 treats the non-specific tag ``!`` on a plain scalar as no tag (llmcc,
    as YAML says, reads a string), and resolves ``!!int``/``!!float``/``!!bool``/``!!null``
    text, quoted or not, as it resolves a plain scalar (``!!int "0755"`` is 493).
    """
    if tag is None:
        why = disagreement(text) if plain else None
        return None if why is None else f"{why}: quote it"
    if tag == "!":
        kind = go_yaml_reading(text)[0]
        if not plain or kind == "a string":
            return None
        return f"sops ignores the tag ! and reads this value as {kind}, llmcc (YAML 1.2) as a string: quote it"
    if tag in _RESOLVED_TAGS:
        why = disagreement(text)
        if why is None:
            return None
        return f"with the tag !!{tag[len(_STD) :]}, {why.replace(' unquoted', '')}: drop the tag and quote it"
    return None


def refuse_ambiguous(plaintext: bytes, rel: str) -> None:
    """Refuse plaintext whose unquoted values sops would read otherwise than llmcc (issue 9 §5).

    Raises:
        ConfigCheckError: one diagnostic per value, at its line; the values are never shown.
    """
    problems = ambiguous_scalars(plaintext, path=rel)
    if problems:
        diags = [diagnostic_from_message(p) for p in problems]
        raise ConfigCheckError(
            f"{rel}: {plural(len(diags), 'value')} would change meaning when sops encrypts them; nothing was encrypted",
            diags,
        )


def _events(data: bytes) -> list[ev.Event]:
    loader = CBaseLoader(data)
    out: list[ev.Event] = []
    while not isinstance(event := loader.get_event(), ev.StreamEndEvent):
        if isinstance(event, (ev.ScalarEvent, ev.CollectionStartEvent)):
            out.append(event)
    return out


def _y11_int(text: str) -> int:
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    if ":" in t:
        n = 0
        for part in t.split(":"):
            n = n * 60 + int(part)
        return sign * n
    if t.startswith("0b"):
        return sign * int(t[2:], 2)
    if t.startswith("0x"):
        return sign * int(t[2:], 16)
    if len(t) > 1 and t.startswith("0"):
        return sign * int(t[1:], 8)
    return sign * int(t)


def _y11_float(text: str) -> float:
    t = text.replace("_", "")
    if t.lstrip("+-").lower() == ".inf":
        return -math.inf if t.startswith("-") else math.inf
    if t.lower() == ".nan":
        return math.nan
    if ":" in t:
        sign = -1.0 if t.startswith("-") else 1.0
        *whole, last = t.lstrip("+-").split(":")
        n = 0.0
        for part in whole:
            n = n * 60 + int(part)
        return sign * (n * 60 + float(last))
    try:
        return float(t)
    except ValueError:
        return math.nan  # the spec's pattern admits "1.2.3"; no reader agrees on it


def _go_int(plain: str) -> int:
    sign = -1 if plain.startswith("-") else 1
    t = plain.lstrip("+-").lower()
    if t.startswith(("0b", "0o", "0x")):
        return sign * int(t[2:], {"b": 2, "o": 8, "x": 16}[t[1]])
    if len(t) > 1 and t.startswith("0"):
        return sign * int(t[1:], 8)
    return sign * int(t)


def _go_int_kind(text: str, plain: str) -> str:
    digits = plain.lstrip("+-").lower()
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        return "an octal integer"
    if digits.startswith("0b"):
        return "a binary integer"
    if "_" in text:
        return "an integer (underscores dropped)"
    return "an integer"


def _same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    return "a string"


def _describe(value: object) -> str:
    return _kind(value) if not isinstance(value, int) or isinstance(value, bool) else "a decimal integer"
