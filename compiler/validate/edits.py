"""Whether an edit of a valid document is valid, checking only the subtrees the edit changed.

A tenant target's module is its environment's module with some values changed
(``compiler.compile.inherit``), built copy-on-write: every subtree the tenant did
not touch is the very same object in both. When the environment's module is
valid, the tenant's is valid if every changed subtree is valid where it sits --
provided nothing above it looks at it other than through its own subschema.
That holds on the way down through an object schema that uses only
``properties``, ``additionalProperties``, ``required``, ``type``, the
property-count bounds and annotations, with the same keys in both documents
(``required``, ``additionalProperties`` and the counts then decide the same). A
changed subtree is checked by its subschema compiled alone, which decides as it
does in place when the subschema holds no reference, ``$id``, anchor, ``$schema``
or ``unevaluated*`` keyword: nothing in it then depends on where it sits or on
annotations around it (JSON Schema 2020-12 core §7, §8.2, §11).

Anything else answers "not shown", and the caller validates the whole document
(``ModuleSchema.check``): this only ever saves work, it never decides an error.

Memory: one validator per distinct subschema text, and all of them together are
compiled from at most as much schema text as the whole schema (``budget``): a
schema whose nested objects each gain a key in some tenant would otherwise
compile each nested level alone, every level holding all the levels below it
(quadratic in the depth: a 370 KB schema 40 levels deep took 314 MB). Past the
budget a subschema is not compiled, and its edits go to the whole document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from compiler.errors import is_panic

# Keywords of an object schema that decide nothing about a value whose keys did not change,
# beyond what its ``properties`` and ``additionalProperties`` decide about each value.
_WALKABLE = frozenset(
    {"type", "properties", "additionalProperties", "required", "minProperties", "maxProperties"}
    | {"title", "description", "$comment", "default", "examples", "deprecated", "readOnly", "writeOnly"}
    | {"$defs", "x-secret", "x-rotate"}
)
_ROOT = _WALKABLE | {"$schema", "$id"}  # a nested resource may name another dialect: walked at the root only
# Keywords that make a subschema depend on where it sits, or on annotations around it.
_CONTEXTUAL = frozenset(
    {"$ref", "$dynamicRef", "$recursiveRef", "$id", "$anchor", "$dynamicAnchor", "$recursiveAnchor"}
    | {"$schema", "$vocabulary", "unevaluatedProperties", "unevaluatedItems"}
)
_UNSET: Any = object()


@dataclass(slots=True)
class _Plan:
    """What one subschema node does with an edit: walk into its properties, or validate alone."""

    node: object  # kept alive: plans are found by id
    properties: dict[str, object] | None  # None: not walkable
    additional: object
    validator: Any = _UNSET  # compiled on first use; None when the node is not self-contained


@dataclass(slots=True)
class EditCheck:
    """The edit check of one schema document (``schema``), with its validator ``options``."""

    schema: object
    options: dict[str, Any]
    _plans: dict[int, _Plan] = field(default_factory=dict)
    _compiled: dict[str, Any] = field(default_factory=dict)  # validators by subschema text
    budget: int = -1  # characters of subschema text that may still be compiled; -1: the schema's, on first use

    def valid(self, base: object, new: object) -> bool:
        """True when ``new`` is shown valid, given that ``base`` is valid; False: "not shown"."""
        return self._over(self.schema, base, new, _ROOT)

    def valid_at(self, path: Sequence[str | int], new: object) -> bool:
        """True when a valid document with its value at ``path`` replaced by ``new`` is shown valid,
        and no secret field is at, above or below ``path``; False: "not shown".

        The same rule as ``valid``: every object schema on the way is walkable (its keys are
        unchanged by the edit), and the subschema at ``path`` decides alone. A list on the way
        is not walked.
        """
        node, walkable = self.schema, _ROOT
        for key in path:
            if node is True:
                break
            plan = self._plans.get(id(node))
            if plan is None or plan.node is not node:
                plan = self._plans[id(node)] = _plan(node, walkable)
            if plan.properties is None or not isinstance(key, str) or _secret(node):
                return False
            node, walkable = plan.properties.get(key, plan.additional), _WALKABLE
        if node is True:
            return True
        if _holds_secret(node):
            return False
        plan = self._plans.get(id(node))
        if plan is None or plan.node is not node:
            plan = self._plans[id(node)] = _plan(node, walkable)
        if plan.validator is _UNSET:
            plan.validator = self._compile(node)
        return plan.validator is not None and bool(plan.validator.is_valid(new))

    def _over(self, node: object, base: object, new: object, walkable: frozenset[str]) -> bool:
        if new is base or node is True:
            return True
        plan = self._plans.get(id(node))
        if plan is None or plan.node is not node:
            plan = self._plans[id(node)] = _plan(node, walkable)
        if plan.properties is not None and type(base) is dict and type(new) is dict and base.keys() == new.keys():
            properties, additional = plan.properties, plan.additional
            for key, value in new.items():
                old = base[key]
                if value is not old and not self._over(properties.get(key, additional), old, value, _WALKABLE):
                    return False
            return True
        if plan.validator is _UNSET:
            plan.validator = self._compile(node)
        if plan.validator is None:
            return False
        try:
            return bool(plan.validator.is_valid(new))
        except BaseException as e:  # a panic of the engine: not shown here, the whole document decides
            if not is_panic(e):
                raise
            return False

    def _compile(self, node: object) -> Any:  # noqa: ANN401
        if not (isinstance(node, dict) and _self_contained(node)):
            return None
        text = json.dumps(node, sort_keys=True)
        validator = self._compiled.get(text, _UNSET)
        if validator is _UNSET:
            if self.budget < 0:
                self.budget = len(json.dumps(self.schema, sort_keys=True))
            if len(text) > self.budget:
                return None  # compiled alone it would cost more memory than the schema: the whole document decides
            self.budget -= len(text)
            try:
                validator = jsonschema_rs.validator_for(node, **self.options)
            except (jsonschema_rs.ValidationError, ValueError):
                validator = None  # not on its own: the whole document decides
            except BaseException as e:  # a panic of the engine: likewise
                if not is_panic(e):
                    raise
                validator = None
            self._compiled[text] = validator
        return validator


def _plan(node: object, walkable: frozenset[str]) -> _Plan:
    if isinstance(node, dict) and walkable.issuperset(node) and isinstance(node.get("properties", {}), dict):
        return _Plan(node, node.get("properties", {}), node.get("additionalProperties", True))
    return _Plan(node, None, None)


def _secret(node: object) -> bool:
    return isinstance(node, dict) and bool(node.get("x-secret"))


def _holds_secret(node: object) -> bool:
    """Whether ``x-secret`` appears anywhere in ``node`` (as a keyword or a property name: fail closed)."""
    if isinstance(node, dict):
        return "x-secret" in node or any(_holds_secret(v) for v in node.values())
    if isinstance(node, list):
        return any(_holds_secret(v) for v in node)
    return False


def _self_contained(node: object) -> bool:
    """No keyword anywhere inside ``node`` that reads outside it (a property of one of
    those names counts too: fail closed)."""
    if isinstance(node, dict):
        return _CONTEXTUAL.isdisjoint(node) and all(_self_contained(v) for v in node.values())
    if isinstance(node, list):
        return all(_self_contained(v) for v in node)
    return True
