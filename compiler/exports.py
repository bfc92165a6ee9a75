"""A target's modules as a program reads them: JSON, YAML, environment variables, dotenv (issue 12 §3).

``llmcc pull --format`` and ``llmcc exec`` print or export through here. Pure:
values in, text or a name -> value map out.

**Flattening** (``env``, ``dotenv``, ``exec``'s environment). Every leaf of
``modules`` becomes one variable:

1. the name is the optional prefix, the module name, then every key and list
   index of the path, joined by ``_``; each character outside ``[A-Za-z0-9]``
   becomes ``_`` and letters are upper-cased:
   ``inference-engine.model.fallbacks[0]`` -> ``INFERENCE_ENGINE_MODEL_FALLBACKS_0``;
2. a name that starts with a digit gets a leading ``_`` (POSIX names,
   IEEE Std 1003.1 XBD 3.235);
3. a string is its text; ``true``/``false``/``null``, numbers (as JSON prints
   them: ``1.0`` stays ``1.0``) and an empty ``[]``/``{}`` are their JSON text;
4. two paths with one name (``a-b`` and ``a_b``, ``Key`` and ``key``) are
   refused, naming both paths (never a value); so is a value holding a NUL
   byte, which no environment can carry.

**Escaping.** ``env`` is POSIX shell (``export NAME='value'``, a ``'`` written
``'\\''``), so ``eval "$(llmcc pull T --format env --decrypt)"`` gets every
value byte for byte, newlines too. ``dotenv`` follows what python-dotenv, the
Node ``dotenv`` package and Docker Compose agree on: ``NAME='value'``,
single-quoted (literal: no escapes, no ``$`` interpolation) when the value has
no ``'``, no control character, no ``\\\\`` and no ``\\`` at its end (python-dotenv reads
``\\\\`` and ``\\'`` as escapes even in single quotes); otherwise ``NAME="value"`` with ``\\\\``,
``\\"``, ``\\n``, ``\\r`` and ``\\t`` escaped. Such a value that also holds a
``$`` or another control character is refused, and so is any value holding
``${``: the readers differ on them (python-dotenv expands ``${VAR}`` even in
single quotes, Compose expands ``$VAR`` in double quotes, Node's ``dotenv``
expands nothing), so no one spelling is right for all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping

from compiler.errors import UsageError
from compiler.jsonpath import JsonPath, format_path
from compiler.jsontypes import JSONValue

FORMATS = ("json", "yaml", "env", "dotenv")

_NOT_NAME = re.compile(r"[^A-Za-z0-9]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_OTHER_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but \t \n \r
_DOUBLE_QUOTED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# YAML 1.1 readers (PyYAML, go-yaml v2) read these plain words as booleans or null; YAML 1.2 does not.
_YAML11_WORDS = frozenset(
    w
    for word in ("y", "n", "yes", "no", "on", "off", "true", "false", "null")
    for w in (word, word.title(), word.upper())
) | {"~"}
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def flatten(modules: Mapping[str, JSONValue], *, prefix: str = "") -> dict[str, str]:
    """Every leaf of ``modules`` as ``{NAME: text}``, by the rules in the module docstring.

    Args:
        modules: the target's modules (module name -> config).
        prefix: put before every name (``LLMCC_``); must be a valid name start.

    Raises:
        UsageError: a bad prefix, two paths with one name, or a value with a NUL byte.
    """
    if prefix and not _NAME.fullmatch(prefix):
        raise UsageError(f"--prefix {prefix!r}: use letters, digits and _, not starting with a digit")
    out: dict[str, str] = {}
    where: dict[str, str] = {}
    for module in sorted(modules):
        for path, value in _leaves(modules[module], ()):
            name = env_name(prefix, module, path)
            shown = f"{module}{format_path(path)}"
            if name in where:
                raise UsageError(f"{where[name]} and {shown} both flatten to {name}; rename one, or use --format json")
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if "\0" in text:
                raise UsageError(f"{shown}: the value holds a NUL byte, which no environment variable can carry")
            where[name] = shown
            out[name] = text
    return out


def env_name(prefix: str, module: str, path: JsonPath) -> str:
    """The variable name of one leaf (rules 1-2 of the module docstring)."""
    name = "_".join(_NOT_NAME.sub("_", str(p)).upper() for p in (module, *path))
    name = prefix + name
    return "_" + name if name[:1].isdigit() else name


def _leaves(value: JSONValue, path: JsonPath) -> Iterator[tuple[JsonPath, JSONValue]]:
    if isinstance(value, dict) and value:
        for k in sorted(value):
            yield from _leaves(value[k], (*path, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def render_env(variables: Mapping[str, str]) -> str:
    """``export NAME='value'`` lines, POSIX shell quoting (values exact, newlines included)."""
    return "".join(f"export {k}='{_shell_quoted(v)}'\n" for k, v in variables.items())


def _shell_quoted(value: str) -> str:
    return value.replace("'", "'\\''")


def render_dotenv(variables: Mapping[str, str]) -> str:
    """``NAME='value'`` / ``NAME="value"`` lines (the dotenv rules of the module docstring).

    Raises:
        UsageError: a value dotenv readers would read differently (names the variable, never the value).
    """
    lines = []
    for k, v in variables.items():
        if "${" in v:
            raise UsageError(
                f"{k}: python-dotenv expands ${{...}} in any dotenv value, others do not; use --format env"
            )
        if "'" not in v and not _CONTROL.search(v) and "\\\\" not in v and not v.endswith("\\"):
            lines.append(f"{k}='{v}'\n")
        elif "$" in v or _OTHER_CONTROL.search(v):
            raise UsageError(
                f"{k}: dotenv readers differ on a value with a quote or line break and a $ or a control "
                "character; use --format env or json"
            )
        else:
            lines.append(f'{k}="{"".join(_DOUBLE_QUOTED.get(c, c) for c in v)}"\n')
    return "".join(lines)


def render_json(modules: Mapping[str, JSONValue]) -> str:
    """The modules as ``pull`` has always printed them: sorted keys, 2-space indent."""
    return json.dumps(modules, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render_yaml(modules: Mapping[str, JSONValue]) -> str:
    """The modules as YAML that YAML 1.1 and 1.2 readers read alike.

    Every string value is double-quoted (``"yes"``, ``"0x10"``, ``"1e3"`` stay
    strings for PyYAML and go-yaml v2 too); a key is plain only where it matches
    ``[A-Za-z_][A-Za-z0-9_-]*`` and is no YAML 1.1 boolean or null word.
    """
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    def quoted(value: JSONValue) -> object:
        if isinstance(value, dict):
            return {
                (k if _PLAIN_KEY.fullmatch(k) and k not in _YAML11_WORDS else DoubleQuotedScalarString(k)): quoted(v)
                for k, v in sorted(value.items())
            }
        if isinstance(value, list):
            return [quoted(v) for v in value]
        if isinstance(value, str):
            return DoubleQuotedScalarString(value)
        return value

    yaml = YAML(typ="rt", pure=True)
    yaml.width = 1 << 30  # long strings on one line: a folded one is read back with a space
    yaml.allow_unicode = True
    buf = io.StringIO()
    yaml.dump(quoted(dict(modules)), buf)
    return buf.getvalue()


RENDERERS: dict[str, Callable[[Mapping[str, JSONValue]], str]] = {"json": render_json, "yaml": render_yaml}
