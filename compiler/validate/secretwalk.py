"""Which fields a schema marks secret (``"x-secret": true``), following every ``$ref``, in any file.

A secret field reached through a reference to another file under ``schemas/``
is as secret as one written inline: a walk that skipped the reference would
let its value into a bundle in plaintext. References resolve exactly as the
validator resolves them (``SchemaResolver.resolve``), and ``patternProperties``
match in the validator's regex dialect (``SchemaResolver.matches``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import urljoin

from compiler.jsonpath import JsonPath
from compiler.load.yaml import Tagged

SECRET_KEYWORD = "x-secret"  # noqa: S105 - a schema keyword, not a password
ROTATE_KEYWORD = "x-rotate-every"
_MAX_DEPTH = 64
_REF_KEYWORDS = ("$ref", "$dynamicRef")


class SchemaResolver(Protocol):
    """A compiled module schema, as the walks need it (``compiler.validate.schema.ModuleSchema``)."""

    @property
    def schema(self) -> dict[str, Any]: ...

    @property
    def base(self) -> str: ...

    def resolve(self, base: str, ref: str) -> tuple[str, Any]: ...

    def matches(self, pattern: str, key: str) -> bool: ...


def secret_paths(schema: SchemaResolver, instance: Any, path: JsonPath = ()) -> Iterator[JsonPath]:  # noqa: ANN401
    """Paths in ``instance`` that the schema marks ``"x-secret": true`` (every ``$ref`` followed).

    Subschemas without any secret or reference below them are skipped, so the
    walk costs the secret-bearing branches only.
    """
    if not schema_has_secrets(schema):
        return
    yield from _walk(schema, schema.schema, schema.base, instance, path, 0)


def _walk(ms: SchemaResolver, node: Any, base: str, inst: Any, path: JsonPath, depth: int) -> Iterator[JsonPath]:  # noqa: ANN401
    if not isinstance(node, dict) or depth > _MAX_DEPTH or not _has_secret(node):
        return
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
    for key in _REF_KEYWORDS:
        ref = node.get(key)
        if isinstance(ref, str):
            at, target = ms.resolve(base, ref)
            yield from _walk(ms, target, at, inst, path, depth + 1)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key, []):
            yield from _walk(ms, sub, base, inst, path, depth + 1)
    for key in ("if", "then", "else"):
        if key in node:
            yield from _walk(ms, node[key], base, inst, path, depth + 1)
    if isinstance(inst, dict):
        props = node.get("properties", {})
        patterns = node.get("patternProperties", {})
        extra = node.get("additionalProperties")
        for k, v in inst.items():
            matched = [props[k]] if k in props else []
            matched += [sub for pattern, sub in patterns.items() if ms.matches(pattern, k)]
            for sub in matched or ([extra] if isinstance(extra, dict) else []):
                yield from _walk(ms, sub, base, v, (*path, k), depth + 1)
    elif isinstance(inst, list):
        prefix = node.get("prefixItems", [])
        items = node.get("items")
        for i, v in enumerate(inst):
            if i < len(prefix):
                yield from _walk(ms, prefix[i], base, v, (*path, i), depth + 1)
            elif isinstance(items, dict):
                yield from _walk(ms, items, base, v, (*path, i), depth + 1)


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


def schema_has_secrets(schema: SchemaResolver) -> bool:
    """Whether any subschema is marked secret or refers elsewhere (a quick test before walking instances)."""
    return _has_secret(schema.schema)
