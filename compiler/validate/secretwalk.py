"""Which fields a schema marks secret (``"x-secret": true``), following every ``$ref``, in any file.

A secret field reached through a reference to another file under ``schemas/``
is as secret as one written inline: a walk that skipped the reference would
let its value into a bundle in plaintext. References resolve exactly as the
validator resolves them (``SchemaResolver.resolve``), and ``patternProperties``
match in the validator's regex dialect (``SchemaResolver.matches``).

The walk follows ``properties``, ``patternProperties``, ``additionalProperties``,
``dependentSchemas``, ``prefixItems``, ``items``, ``allOf``/``anyOf``/``oneOf``,
``if``/``then``/``else`` and references into ``$defs``. A mark anywhere else
(under ``not``, ``contains``, ``unevaluated*``, ``propertyNames``, an unknown
keyword) or one that is not ``true``/``false`` would be missed and its value
compiled in plaintext: ``unfollowed_marks`` finds them so loading refuses the
schema at the mark's line (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import urldefrag, urljoin

from compiler.errors import InputError
from compiler.jsonpath import JsonPath, format_path
from compiler.load.yaml import Tagged

SECRET_KEYWORD = "x-secret"  # noqa: S105 - a schema keyword, not a password
ROTATE_KEYWORD = "x-rotate-every"
_MAX_DEPTH = 256  # subschemas from the root to a value; deeper is refused, never skipped
_REF_KEYWORDS = ("$ref", "$dynamicRef")
# Where the walks look for a mark: keyword -> its value is one subschema, a list of them, or a map of them.
_FOLLOWED = {k: "one" for k in ("additionalProperties", "items", "if", "then", "else")}
_FOLLOWED |= {k: "list" for k in ("allOf", "anyOf", "oneOf", "prefixItems")}
_FOLLOWED |= {k: "map" for k in ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")}


_IN_PLACE = ("allOf", "anyOf", "oneOf")
# Keywords that assert nothing about an instance: a subschema with only these and one reference is the reference.
_INERT = frozenset(
    {"$id", "$schema", "$anchor", "$dynamicAnchor", "$vocabulary", "$comment", "$defs", "definitions"}
    | {"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"}
)


def hollow_edges(node: Any) -> list[tuple[str, Any]] | None:  # noqa: ANN401
    """What a subschema that asserts nothing itself applies at the same value: ``("ref", keyword, reference)``
    and ``("sub", subschema)`` of ``allOf``/``anyOf``/``oneOf``; None for one with any other keyword.

    A cycle of such subschemas (``{"$ref": "#/$defs/l2"}`` and back, ``{"allOf": [{"$ref": "#/$defs/l1"}]}``)
    constrains nothing and is refused (issue 14, F6); one through real structure is a recursive schema.
    """
    if not isinstance(node, dict) or not node:
        return None
    edges: list[tuple[str, Any]] = []
    for key, value in node.items():
        if key in _REF_KEYWORDS and isinstance(value, str):
            edges.append(("ref", value))
        elif key in _IN_PLACE and isinstance(value, list):
            edges += [("sub", s) for s in value]
        elif key not in _INERT:
            return None
    return edges or None


class SchemaResolver(Protocol):
    """A compiled module schema, as the walks need it (``compiler.validate.schema.ModuleSchema``)."""

    @property
    def schema(self) -> dict[str, Any]: ...

    @property
    def base(self) -> str: ...

    @property
    def path(self) -> str: ...

    def resolve(self, base: str, ref: str) -> tuple[str, Any]: ...

    def matches(self, pattern: str, key: str) -> bool: ...


def secret_paths(schema: SchemaResolver, instance: Any, path: JsonPath = ()) -> Iterator[JsonPath]:  # noqa: ANN401
    """Paths in ``instance`` that the schema marks ``"x-secret": true`` (every ``$ref`` followed).

    Subschemas without any secret or reference below them are skipped, so the
    walk costs the secret-bearing branches only.
    """
    if not schema_has_secrets(schema):
        return
    yield from _walk(schema, schema.schema, schema.base, instance, path, 0, frozenset(), (), ())


def unfollowed_marks(node: Any, pointer: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:  # noqa: ANN401
    """``(pointer, why)`` of every ``x-secret`` in a schema document that the walks would not see.

    ``node`` is a subschema at ``pointer``; its values that are not followed
    subschemas are searched for the key anywhere, since any ``x-secret`` there
    shows a field meant secret that would be compiled in plaintext.
    """
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        at = (*pointer, key)
        shape = _FOLLOWED.get(key)
        if key == SECRET_KEYWORD:
            if not isinstance(value, bool):
                yield at, f"{SECRET_KEYWORD} must be true or false, not {json.dumps(value)}"
        elif shape == "one":
            yield from unfollowed_marks(value, at)
        elif shape == "list" and isinstance(value, list):
            for i, sub in enumerate(value):
                yield from unfollowed_marks(sub, (*at, i))
        elif shape == "map" and isinstance(value, dict):
            for name, sub in value.items():
                yield from unfollowed_marks(sub, (*at, name))
        else:
            for inner in _marks_in(value, at):
                yield inner, f"{SECRET_KEYWORD} under {key!r} is not followed by the secret walk"


def unfollowed_keyword(pointer: tuple[str | int, ...]) -> str | None:
    """The first keyword on the way to ``pointer`` (a subschema's) that the walks do not follow, if any."""
    expect = "one"
    for part in pointer:
        if expect in ("list", "map"):
            expect = "one"
            continue
        shape = _FOLLOWED.get(str(part))
        if shape is None:
            return str(part)
        expect = shape
    return None


def _marks_in(value: Any, pointer: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:  # noqa: ANN401
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == SECRET_KEYWORD:
                yield (*pointer, key)
            yield from _marks_in(sub, (*pointer, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _marks_in(sub, (*pointer, i))


def _walk(
    ms: SchemaResolver,
    node: Any,  # noqa: ANN401
    base: str,
    inst: Any,  # noqa: ANN401
    path: JsonPath,
    depth: int,
    seen: frozenset[int],
    scope: tuple[str, ...],
    bare: tuple[int, ...],
) -> Iterator[JsonPath]:
    """``seen``: the references followed at this value (a cycle of them adds nothing, e.g. ``"$ref": "#"``);
    ``scope``: the base URIs entered from the root, outermost first, where a ``$dynamicRef`` may land;
    ``bare``: the subschemas that assert nothing (``hollow_edges``) entered through references and
    ``allOf``/``anyOf``/``oneOf`` in a row up to this one: a reference back into them is a cycle
    that constrains nothing, refused (issue 14, F6).
    """
    if not isinstance(node, dict) or not _has_secret(node):
        return
    if depth > _MAX_DEPTH:
        where = format_path(path)
        raise InputError(f"{ms.path}: the secret walk is {_MAX_DEPTH} subschemas deep at {where}; nest less")
    if isinstance(inst, Tagged):
        if inst.tag == "delete":
            return
        inst = inst.value
    if node.get(SECRET_KEYWORD) is True:
        if inst is not None:
            yield path
        return
    ident = node.get("$id")
    if isinstance(ident, str):
        base = urljoin(base, ident)
    if base not in scope:
        scope = (*scope, base)
    bare = (*bare, id(node)) if hollow_edges(node) is not None else ()
    for key in _REF_KEYWORDS:
        ref = node.get(key)
        if isinstance(ref, str):
            targets = [ms.resolve(base, ref)] + (_dynamic_targets(ms, scope, ref) if key == "$dynamicRef" else [])
            for at, target in targets:
                if bare and id(target) in bare:
                    raise InputError(f"{ms.path}: $ref {ref!r} closes a reference cycle with no other keyword")
                if id(target) not in seen:
                    yield from _walk(ms, target, at, inst, path, depth + 1, seen | {id(target)}, scope, bare)
    for key in _IN_PLACE:
        for sub in node.get(key, []):
            yield from _walk(ms, sub, base, inst, path, depth + 1, seen, scope, bare)
    for key in ("if", "then", "else"):
        if key in node:
            yield from _walk(ms, node[key], base, inst, path, depth + 1, seen, scope, ())
    if isinstance(inst, dict):
        for name, sub in node.get("dependentSchemas", {}).items():
            if name in inst:
                yield from _walk(ms, sub, base, inst, path, depth + 1, seen, scope, ())
        props = node.get("properties", {})
        patterns = node.get("patternProperties", {})
        extra = node.get("additionalProperties")
        for k, v in inst.items():
            matched = [props[k]] if k in props else []
            matched += [sub for pattern, sub in patterns.items() if ms.matches(pattern, k)]
            for sub in matched or ([extra] if isinstance(extra, dict) else []):
                yield from _walk(ms, sub, base, v, (*path, k), depth + 1, frozenset(), scope, ())
    elif isinstance(inst, list):
        prefix = node.get("prefixItems", [])
        items = node.get("items")
        for i, v in enumerate(inst):
            if i < len(prefix):
                yield from _walk(ms, prefix[i], base, v, (*path, i), depth + 1, frozenset(), scope, ())
            elif isinstance(items, dict):
                yield from _walk(ms, items, base, v, (*path, i), depth + 1, frozenset(), scope, ())


def _dynamic_targets(ms: SchemaResolver, scope: tuple[str, ...], ref: str) -> list[tuple[str, Any]]:
    """Every ``$dynamicAnchor`` in ``scope`` that a ``$dynamicRef`` to ``ref`` may land on (2020-12 core §8.2.3.2).

    All of them, not only the outermost: a schema the walk does not see would
    leave its secret fields in plaintext, and one more seen costs nothing.
    """
    name = urldefrag(ref).fragment
    if not name or name.startswith("/"):
        return []
    found = []
    for base in scope:
        try:
            at, target = ms.resolve(base, f"#{name}")
        except InputError:
            continue
        if isinstance(target, dict) and target.get("$dynamicAnchor") == name:
            found.append((at, target))
    return found


def rotate_every(schema: SchemaResolver, path: JsonPath) -> str | None:
    """The ``x-rotate-every`` of the secret field at ``path`` (every ``$ref`` and combinator followed)."""
    for node in _subschemas(schema, schema.schema, schema.base, path, 0):
        value = node.get(ROTATE_KEYWORD)
        if node.get(SECRET_KEYWORD) is True and isinstance(value, str):
            return value
    return None


def _subschemas(ms: SchemaResolver, node: Any, base: str, path: JsonPath, depth: int) -> list[dict[str, Any]]:  # noqa: ANN401
    """The subschemas that apply to the value at ``path`` (with ``node`` as the schema of the root)."""
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return []
    ident = node.get("$id")
    if isinstance(ident, str):
        base = urljoin(base, ident)
    nodes: list[tuple[dict[str, Any], str]] = [(node, base)]
    for key in _REF_KEYWORDS:
        ref = node.get(key)
        if isinstance(ref, str):
            at, target = ms.resolve(base, ref)
            if isinstance(target, dict):
                nodes.append((target, at))
    for key in ("allOf", "anyOf", "oneOf"):
        nodes += [(s, base) for s in node.get(key, []) if isinstance(s, dict)]
    nodes += [(s, base) for s in node.get("dependentSchemas", {}).values() if isinstance(s, dict)]
    if not path:
        out = [node]
        for sub, at in nodes[1:]:
            out += _subschemas(ms, sub, at, path, depth + 1)
        return out
    head, rest = path[0], path[1:]
    found: list[dict[str, Any]] = []
    for n, at in nodes:
        children: list[Any] = []
        if isinstance(head, str):
            props = n.get("properties", {})
            if head in props:
                children.append(props[head])
            children += [s for p, s in n.get("patternProperties", {}).items() if ms.matches(p, head)]
            if not children and isinstance(n.get("additionalProperties"), dict):
                children.append(n["additionalProperties"])
        else:
            prefix = n.get("prefixItems", [])
            children.append(prefix[head] if head < len(prefix) else n.get("items"))
        for child in children:
            found += _subschemas(ms, child, at, rest, depth + 1)
    return found


_SECRET_MEMO: dict[int, tuple[Any, bool]] = {}


def _has_secret(node: Any) -> bool:  # noqa: ANN401
    """Whether a subschema holds ``x-secret: true`` or a reference (references are followed, not judged)."""
    hit = _SECRET_MEMO.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    text = json.dumps(node)
    result = f'"{SECRET_KEYWORD}": true' in text or '"$ref"' in text or '"$dynamicRef"' in text
    _SECRET_MEMO[id(node)] = (node, result)  # holds the node so its id is not reused
    return result


def note_text(node: dict[str, Any], text: str, *, refers: bool) -> None:
    """Take ``_has_secret``'s verdict on ``node``, a schema document parsed from the JSON ``text``, from the text.

    ``refers``: whether ``text`` may hold a reference (a ``"$ref"`` or
    ``"$dynamicRef"`` written in it, or a ``\\u`` escape, which can spell any
    key: ``compiler.validate.schema``'s ``_may_hold``, computed there anyway).
    A text that may not and in which no key ``"x-secret"`` is written parses
    to a document that holds no mark: its verdict is False without encoding
    the document again (20 schemas, ~1.2 MB of JSON, in every run: issue 14 §2).
    Any other text leaves the verdict to ``_has_secret``.
    """
    if refers or f'"{SECRET_KEYWORD}"' in text:
        return
    _SECRET_MEMO[id(node)] = (node, False)


def schema_has_secrets(schema: SchemaResolver) -> bool:
    """Whether any subschema is marked secret or refers elsewhere (a quick test before walking instances)."""
    return _has_secret(schema.schema)
