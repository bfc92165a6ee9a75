"""A tenant's module is validated as an edit of its environment's valid module (issue 14 §3).

Only the subtrees the edit changed are validated, where that decides as the whole
document would (``compiler.validate.edits``); the findings are always the whole
document's, and a tenant's error is reported at the tenant's file:line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compiler.project import Target
from compiler.validate.edits import EditCheck
from compiler.validate.schema import ModuleSchema
from tests.core._repos import ENGINE_TEMPLATE, dedent, mini_repo
from tests.core.test_pipeline import compiled

# Every kind of keyword the edit check walks through, validates alone, or must leave to the whole document.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.test/m.schema.json",
    "type": "object",
    "additionalProperties": False,
    "required": ["a"],
    "properties": {
        "a": {
            "type": "object",
            "properties": {"x": {"type": "string", "maxLength": 3}},
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "b": {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
        "c": {"$ref": "#/$defs/small"},
        "d": {
            "type": "object",
            "properties": {"x": {"type": "integer"}},
            "allOf": [{"properties": {"y": {"type": "integer"}}}],
            "unevaluatedProperties": False,
        },
        "e": {
            "type": "object",
            "patternProperties": {"^n": {"type": "integer"}},
            "additionalProperties": {"type": "string"},
        },
        "f": {"type": "object", "properties": {"k": {"type": "integer"}}, "dependentRequired": {"k": ["m"]}},
        "g": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 2,
            "required": ["u"],
            "properties": {"u": {"enum": [1, 2]}, "v": {"type": "object", "properties": {"w": {"const": "w"}}}},
        },
        "h": {"$id": "inner.json", "type": "object", "properties": {"z": {"$ref": "#/$defs/t"}}, "$defs": {"t": {}}},
    },
    "$defs": {"small": {"type": "integer", "maximum": 5}},
}
KEYS = ["x", "y", "z", "k", "m", "u", "v", "w", "n1", "n2", "a", "b", "c", "d", "e", "f", "g", "h"]
LEAVES = st.one_of(st.integers(-1, 6), st.sampled_from(["", "w", "abcd", "x"]), st.none(), st.booleans())
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=8,
)
INTS = st.integers(0, 5)
# Documents that are mostly valid, with every kind of keyword in play.
DOCS = st.fixed_dictionaries(
    {"a": st.dictionaries(st.sampled_from(["x", "y", "k"]), INTS, max_size=2)},
    optional={
        "b": st.lists(INTS, max_size=2),
        "c": INTS,
        "d": st.fixed_dictionaries({}, optional={"x": INTS, "y": INTS}),
        "e": st.fixed_dictionaries({}, optional={"n1": INTS, "n2": INTS, "x": st.just("s")}),
        "f": st.fixed_dictionaries({"m": INTS}, optional={"k": INTS}),
        "g": st.fixed_dictionaries({"u": st.sampled_from([1, 2])}, optional={"v": st.just({"w": "w"})}),
        "h": st.fixed_dictionaries({}, optional={"z": VALUES}),
    },
)
EDITS = st.one_of(VALUES, INTS, st.sampled_from(["s", "abcd", "w"]))


def schema() -> ModuleSchema:
    return ModuleSchema.load("m", "schemas/m.schema.json", json.dumps(SCHEMA).encode())


@st.composite
def edited(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with a value replaced, a key added or a key removed somewhere, copying only the way there."""
    if not isinstance(base, dict) or (base and draw(st.integers(0, 4)) > 0):  # mostly deep edits
        if isinstance(base, dict) and base:
            key = draw(st.sampled_from(sorted(base)))
            return {**base, key: draw(edited(base[key]))}
        return draw(EDITS)
    action = draw(st.sampled_from(["add", "remove"] if base else ["add"]))
    if action == "remove":
        key = draw(st.sampled_from(sorted(base)))
        return {k: v for k, v in base.items() if k != key}
    return {**base, draw(st.sampled_from(KEYS)): draw(EDITS)}


@settings(deadline=None, max_examples=500, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.data())
def test_an_edit_of_a_valid_document_has_the_findings_of_the_whole_document(data: st.DataObject) -> None:
    ms = schema()
    base = data.draw(DOCS)
    assume(ms.is_valid(base))
    new = base
    for _ in range(data.draw(st.integers(1, 3))):
        new = data.draw(edited(new))
    assert ms.check(new, valid_base=base) == ms.check(new)


def test_the_edits_are_validated_alone_only_where_that_decides() -> None:
    ms = schema()
    base = {"a": {"x": "ab", "q": 1}, "c": 1, "g": {"u": 1, "v": {"w": "w"}}}
    assert ms.is_valid(base)
    assert ms.check({**base, "a": {"x": "abcd", "q": 1}}, valid_base=base)[0].path == ("a", "x")
    assert ms.check({**base, "a": {"x": "ab", "q": -1}}, valid_base=base)[0].path == ("a", "q")
    assert ms.check({**base, "c": 6}, valid_base=base)[0].path == ("c",)  # a reference: the whole document
    assert ms.check({**base, "g": {"u": 1, "v": {"w": "x"}}}, valid_base=base)[0].path == ("g", "v", "w")
    assert ms.check({**base, "g": {"u": 1, "v": {"w": "w"}, "t": 1}}, valid_base=base)[0].keyword == "maxProperties"
    assert ms.check({"a": {"x": "ab", "q": 1}}, valid_base=base) == []  # a key removed: the whole document
    assert ms.check({**base, "z": 1}, valid_base=base)[0].keyword == "additionalProperties"


TENANT = """\
vars:
  temperature: 1.5
modules:
  engine:
    model:
      max_tokens: 0
"""


def test_a_tenant_value_the_schema_rejects_is_reported_at_the_tenants_line(tmp_path: Path) -> None:
    root = mini_repo(tmp_path, {"environments/tenants/acme.yaml": TENANT})
    result = compiled(root, Target("prod", "acme"))
    where = [(d.origin.path, d.origin.line, d.path, d.message) for d in result.diagnostics if d.origin]
    assert where == [
        ("environments/tenants/acme.yaml", 2, ("model", "temperature"), "1.5 is greater than the maximum of 1.0"),
        ("environments/tenants/acme.yaml", 6, ("model", "max_tokens"), "0 is less than the minimum of 1"),
    ]
    assert result.diagnostics == compiled(root, Target("prod", "acme"), inherit=False).diagnostics


def test_a_tenant_key_the_schema_does_not_allow_is_reported_at_the_tenants_line(tmp_path: Path) -> None:
    tenant = dedent(
        """
        modules:
          engine:
            model:
              top_k: 3
        """
    )
    template = ENGINE_TEMPLATE.replace('region: "{{ region }}"', 'region: "{{ region }}-{{ temperature }}"')
    root = mini_repo(tmp_path, {"environments/tenants/acme.yaml": tenant, "templates/engine.yaml": template})
    result = compiled(root, Target("staging", "acme"))
    where = [(d.origin.path, d.origin.line, d.message) for d in result.diagnostics if d.origin]
    assert where == [
        ("environments/tenants/acme.yaml", 4, "Additional properties are not allowed ('top_k' was unexpected)")
    ]
    assert result.diagnostics == compiled(root, Target("staging", "acme"), inherit=False).diagnostics


def test_a_subschema_that_does_not_compile_alone_leaves_the_edit_to_the_whole_document() -> None:
    check = EditCheck(
        {"properties": {"a": {"format": "no-such-format"}}}, {"validate_formats": True, "ignore_unknown_formats": False}
    )
    assert not check.valid({"a": "x"}, {"a": "y"})  # "not shown": the caller validates the whole document
    same = {"a": "x"}
    assert check.valid(same, same)  # a tenant that changed nothing in the module


def test_equal_subschemas_share_one_validator_and_an_unlisted_key_takes_any_value() -> None:
    check = EditCheck({"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}, {})
    assert check.valid({"a": 1, "b": 2, "c": 3}, {"a": 4, "b": 5, "c": "anything"})
    assert not check.valid({"a": 1, "b": 2}, {"a": 1, "b": "x"})
    assert len(check._compiled) == 1
