"""JSON Schema (draft 2020-12) per module.

Valid documents take the fast path: a compiled ``jsonschema-rs`` validator
answers yes/no. Only an invalid document is walked again with Python
``jsonschema`` to collect every error with its path. Messages are written here
from the failing keyword, never copied from the validators: theirs quote the
instance, and the instance may hold a secret (STYLE R15).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import jsonschema_rs

from compiler.bundle.canonical import reject_duplicate_keys
from compiler.errors import InputError
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Tagged

SECRET_KEYWORD = "x-secret"  # noqa: S105 - a schema keyword, not a password
ROTATE_KEYWORD = "x-rotate-every"


@dataclass(frozen=True, slots=True)
class SchemaFinding:
    """One schema error: where in the module, and a message that quotes no secret."""

    path: JsonPath
    message: str
    keyword: str


@dataclass(slots=True)
class ModuleSchema:
    """A module's schema, compiled once per process."""

    module: str
    path: str
    schema: dict[str, Any]
    _fast: Any = None
    _slow: jsonschema.Draft202012Validator | None = field(default=None)

    @classmethod
    def load(cls, module: str, path: str, data: bytes) -> ModuleSchema:
        try:
            schema = json.loads(data, object_pairs_hook=reject_duplicate_keys)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            line = getattr(e, "lineno", 1)
            col = getattr(e, "colno", 1)
            raise InputError(f"{path}:{line}:{col}: invalid JSON: {getattr(e, 'msg', e)}") from e
        except RecursionError as e:
            raise InputError(f"{path}: invalid JSON: nested too deeply") from e
        except ValueError as e:
            raise InputError(f"{path}: invalid JSON: {e}") from e
        if not isinstance(schema, dict):
            raise InputError(f"{path}:1:1: a schema must be a JSON object")
        meta = schema.get("$schema")
        if meta is not None and meta not in _DRAFT_2020_12:
            # jsonschema-rs would fetch an unknown meta-schema (network or file://).
            raise InputError(f"{path}: $schema must be {next(iter(_DRAFT_2020_12))!r}, not {meta!r}")
        try:
            # Checked against the 2020-12 metaschema by jsonschema-rs: Python's check_schema
            # costs ~0.5 s per large schema.
            jsonschema_rs.meta.validate(schema)
            # No $ref leaves the schema file: no network, no file outside the repository.
            fast = jsonschema_rs.validator_for(schema, validate_formats=True, retriever=_refuse_retrieval)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as e:
            where = "/".join(str(p) for p in getattr(e, "instance_path", [])) or "(root)"
            first = str(e).splitlines()[0]
            raise InputError(f"{path}: invalid JSON Schema at {where}: {first}") from e
        return cls(module=module, path=path, schema=schema, _fast=fast)

    def check(self, instance: object) -> list[SchemaFinding]:
        """Every schema error of ``instance``, sorted by path."""
        if self._fast.is_valid(instance):
            return []
        if self._slow is None:
            self._slow = jsonschema.Draft202012Validator(
                self.schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
        secret = set(secret_paths(self.schema, instance))
        findings = [_finding(e, secret) for e in _leaves(self._slow.iter_errors(instance))]
        if not findings:
            # The two validators disagree (e.g. a format only jsonschema-rs checks).
            for e in self._fast.iter_errors(instance):
                path = tuple(e.instance_path)
                kind = type(e.kind).__name__.removeprefix("ValidationErrorKind_").lower()
                findings.append(SchemaFinding(path, f"{_describe(e.instance, path in secret)} fails {kind}", kind))
        return sorted(findings, key=lambda f: ([str(p) for p in f.path], f.message))


_DRAFT_2020_12 = ("https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#")


def _refuse_retrieval(uri: str) -> Any:  # noqa: ANN401
    raise ValueError(f"$ref {uri} is outside this schema file; only local references (#/...) are allowed")


def _leaves(errors: Iterator[jsonschema.ValidationError]) -> Iterator[jsonschema.ValidationError]:
    """Report the most specific error of an ``anyOf``/``oneOf``/``if`` rather than the wrapper."""
    for e in errors:
        if e.context and e.validator in ("anyOf", "oneOf"):
            best = jsonschema.exceptions.best_match(e.context)
            yield best if best is not None else e
        else:
            yield e


def _finding(e: jsonschema.ValidationError, secret: set[JsonPath]) -> SchemaFinding:
    path: JsonPath = tuple(e.absolute_path)
    keyword = str(e.validator)
    value = e.validator_value
    hidden = path in secret or any(p[: len(path)] == path for p in secret)
    desc = _describe(e.instance, hidden)
    if keyword in ("required", "additionalProperties", "dependentRequired", "unevaluatedProperties"):
        msg = e.message  # names keys only, never values
        sub = e.schema if isinstance(e.schema, dict) else {}
        if keyword == "additionalProperties" and isinstance(e.instance, dict):
            extra = sorted(set(e.instance) - set(sub.get("properties", {})))
            if extra and not sub.get("patternProperties"):
                path = (*path, extra[0])
    elif keyword == "type":
        msg = f"{desc} is not of type {_list(value)}"
    elif keyword == "enum":
        msg = f"{desc} is not one of {_list(value)}"
    elif keyword == "const":
        msg = f"{desc} is not {json.dumps(value)}"
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        words = {
            "minimum": "less than the minimum of",
            "maximum": "greater than the maximum of",
            "exclusiveMinimum": "less than or equal to the exclusive minimum of",
            "exclusiveMaximum": "greater than or equal to the exclusive maximum of",
            "multipleOf": "not a multiple of",
        }
        msg = f"{desc} is {words[keyword]} {value}"
    elif keyword in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"):
        bound = "at least" if keyword.startswith("min") else "at most"
        unit = {"Length": "characters", "Items": "items", "Properties": "properties"}[keyword[3:]]
        msg = f"{desc} must have {bound} {value} {unit}"
    elif keyword == "pattern":
        msg = f"{desc} does not match pattern {value!r}"
    elif keyword == "format":
        msg = f"{desc} is not a valid {value}"
    elif keyword == "uniqueItems":
        msg = f"{desc} has repeated items"
    else:
        msg = f"{desc} fails {keyword}"
    return SchemaFinding(path, msg, keyword)


def _list(value: Any) -> str:  # noqa: ANN401
    if isinstance(value, list):
        return ", ".join(json.dumps(v) for v in value)
    return json.dumps(value)


def _describe(value: Any, hidden: bool) -> str:  # noqa: ANN401
    """A short description of a value for a message; a secret is only named by its type."""
    if isinstance(value, dict):
        return "the map"
    if isinstance(value, list):
        return "the list"
    if hidden:
        return "the secret value"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def secret_paths(schema: dict[str, Any], instance: Any, path: JsonPath = ()) -> Iterator[JsonPath]:  # noqa: ANN401
    """Paths in ``instance`` that the schema marks ``"x-secret": true`` (local ``$ref``s followed).

    Subschemas without any secret below them are skipped, so the walk costs the
    secret-bearing branches only.
    """
    if not schema_has_secrets(schema):
        return
    yield from _walk(schema, schema, instance, path, 0)


def _walk(root: dict[str, Any], node: Any, inst: Any, path: JsonPath, depth: int) -> Iterator[JsonPath]:  # noqa: ANN401
    if not isinstance(node, dict) or depth > 64 or not _has_secret(node):
        return
    if isinstance(inst, Tagged):
        if inst.tag == "delete":
            return
        inst = inst.value
    if node.get(SECRET_KEYWORD) is True:
        if inst is not None:
            yield path
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
        target: Any = root
        for part in ref[2:].split("/") if ref != "#" else []:
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        yield from _walk(root, target, inst, path, depth + 1)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key, []):
            yield from _walk(root, sub, inst, path, depth + 1)
    for key in ("if", "then", "else"):
        if key in node:
            yield from _walk(root, node[key], inst, path, depth + 1)
    if isinstance(inst, dict):
        props = node.get("properties", {})
        patterns = node.get("patternProperties", {})
        extra = node.get("additionalProperties")
        for k, v in inst.items():
            matched = [props[k]] if k in props else []
            matched += [sub for pattern, sub in patterns.items() if _matches(pattern, k)]
            for sub in matched or ([extra] if isinstance(extra, dict) else []):
                yield from _walk(root, sub, v, (*path, k), depth + 1)
    elif isinstance(inst, list):
        prefix = node.get("prefixItems", [])
        items = node.get("items")
        for i, v in enumerate(inst):
            if i < len(prefix):
                yield from _walk(root, prefix[i], v, (*path, i), depth + 1)
            elif isinstance(items, dict):
                yield from _walk(root, items, v, (*path, i), depth + 1)


def _matches(pattern: str, key: str) -> bool:
    """``patternProperties`` matching; a pattern Python cannot read counts as matching (fail closed)."""
    try:
        return re.search(pattern, key) is not None
    except re.error:
        return True


_SECRET_MEMO: dict[int, tuple[Any, bool]] = {}


def _has_secret(node: Any) -> bool:  # noqa: ANN401
    """Whether a subschema holds ``x-secret: true`` or a ``$ref`` (refs are followed, not judged)."""
    hit = _SECRET_MEMO.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    text = json.dumps(node)
    result = f'"{SECRET_KEYWORD}": true' in text or '"$ref"' in text
    _SECRET_MEMO[id(node)] = (node, result)  # holds the node so its id is not reused
    return result


def schema_has_secrets(schema: dict[str, Any]) -> bool:
    """Whether any subschema is marked secret (a quick test before walking instances)."""
    return _has_secret(schema)
