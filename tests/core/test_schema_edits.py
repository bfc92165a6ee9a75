"""A tenant's module is validated as an edit of its environment's valid module (issue 14 §3).

Only the subtrees the edit changed are validated, where that decides as the whole
document would (``compiler.validate.edits``); the findings are always the whole
document's, and a tenant's error is reported at the tenant's file:line.
"""

from __future__ import annotations

import json
import random  # noqa: TID251 - a seeded generator of test cases, no secret
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compiler.errors import InputError
from compiler.project import Target
from compiler.validate.edits import EditCheck
from compiler.validate.schema import _OPTIONS, ModuleSchema
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


# Random schemas from every keyword that looks at siblings, the whole object, other items or other
# places in the schema, with random valid documents and random copy-on-write edits of them: the
# edit check must never show valid what the whole document rejects.
RKEYS = ["a", "", "n1", "~0/"]
RLEAVES = st.sampled_from([0, 1, -1, 1.5, 1.0, 2**70, "", "a", "ab", "1.2.3.4", None, True, False])
RVALUES = st.recursive(
    RLEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(RKEYS), inner, max_size=3),
    max_leaves=10,
)
LEAF_SCHEMAS = st.sampled_from(
    [
        *[True, False, {}, {"type": "integer"}, {"const": 1}, {"type": "string", "maxLength": 1}, {"format": "ipv4"}],
        *[{"$ref": "#/$defs/d"}, {"$ref": "#"}, {"$dynamicRef": "#meta"}, {"type": ["integer", "null"]}],
    ]
)
# properties, type, required and additionalProperties come often: the walk goes through those.
KEYWORDS = ["properties"] * 6 + ["type", "required", "additionalProperties"] * 2 + [
    "patternProperties", "dependentRequired", "dependentSchemas", "if", "oneOf", "anyOf", "allOf", "not",
    "minProperties", "maxProperties", "propertyNames", "unevaluatedProperties", "items", "prefixItems",
    "contains", "uniqueItems", "minItems", "maxItems", "const", "enum", "$ref", "default", "minimum", "format",
    "unevaluatedItems", "$anchor", "title", "x-secret", "$defs", "$id", "$comment",
]  # fmt: skip


@st.composite
def random_schemas(draw: st.DrawFn, depth: int = 0) -> Any:
    if depth > 3 or draw(st.integers(0, 6)) == 0:
        return draw(LEAF_SCHEMAS)
    inner = random_schemas(depth + 1)
    out: dict[str, Any] = {}
    for keyword in draw(st.lists(st.sampled_from(KEYWORDS), min_size=1, max_size=4)):
        match keyword:
            case "type":
                out[keyword] = draw(st.sampled_from(["object", "array", "integer", ["object", "null"], "null"]))
            case "properties" | "dependentSchemas" | "$defs":
                out[keyword] = draw(st.dictionaries(st.sampled_from(RKEYS), inner, min_size=1, max_size=3))
            case "required":
                out[keyword] = draw(st.lists(st.sampled_from(RKEYS), max_size=2, unique=True))
            case "patternProperties":
                out[keyword] = draw(st.dictionaries(st.sampled_from(["^n", "^$", "/", "^a"]), inner, min_size=1))
            case "dependentRequired":
                out[keyword] = {draw(st.sampled_from(RKEYS)): [draw(st.sampled_from(RKEYS))]}
            case "if":
                out.update({"if": draw(inner), "then": draw(inner), "else": draw(inner)})
            case "oneOf" | "anyOf" | "allOf" | "prefixItems":
                out[keyword] = draw(st.lists(inner, min_size=1, max_size=3))
            case "minProperties" | "maxProperties" | "minItems" | "maxItems" | "minimum":
                out[keyword] = draw(st.integers(0, 2))
            case "contains":
                out[keyword] = draw(inner)
                out["minContains"] = draw(st.integers(0, 2))
            case "uniqueItems" | "x-secret":
                out[keyword] = True
            case "const" | "default":
                out[keyword] = draw(RVALUES)
            case "enum":
                out[keyword] = draw(st.lists(RVALUES, min_size=1, max_size=3))
            case "$ref":
                out[keyword] = draw(st.sampled_from(["#/$defs/d", "#", "#anchor", "inner.json"]))
            case "format":
                out[keyword] = "ipv4"
            case "$anchor":
                out[keyword] = "elsewhere"
            case "$id":
                out[keyword] = "elsewhere.json"
            case "title" | "$comment":
                out[keyword] = "t"
            case _:  # not, propertyNames, items, unevaluated*
                out[keyword] = draw(inner)
    return out


@st.composite
def cow_edit(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one change somewhere: a value replaced (by a scalar, null, a list or a map), a key
    added or removed (``!delete``), an item changed, appended or removed; only the way there is copied."""
    deeper = draw(st.integers(0, 9)) < 7
    if isinstance(value, dict) and value and deeper:
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["edit", "edit", "add", "remove"]))
        if action == "edit":
            return {**value, key: draw(cow_edit(value[key]))}
        if action == "add":
            return {**value, draw(st.sampled_from(RKEYS)): draw(RVALUES)}
        return {k: v for k, v in value.items() if k != key}
    if isinstance(value, list) and value and deeper:
        at = draw(st.integers(0, len(value) - 1))
        action = draw(st.sampled_from(["edit", "edit", "append", "remove"]))
        items = list(value)
        if action == "edit":
            items[at] = draw(cow_edit(value[at]))
        elif action == "append":
            items.append(draw(RVALUES))
        else:
            del items[at]
        return items
    return draw(RVALUES)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(random_schemas(), st.data())
def test_random_schemas_never_show_valid_an_edit_the_whole_document_rejects(root: Any, data: st.DataObject) -> None:
    assume(isinstance(root, dict))
    anchored = {"$anchor": "anchor", "$dynamicAnchor": "meta", "type": ["object", "integer", "null"]}
    defs = {"d": data.draw(random_schemas(1)), "anchored": anchored, "inner": {"$id": "inner.json", "minimum": 0}}
    root = {**root, "$defs": {**root.get("$defs", {}), **defs}}
    if data.draw(st.booleans()):
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **root}
    try:
        ms = ModuleSchema.load("m", "schemas/m.schema.json", json.dumps(root).encode())
    except InputError:
        assume(False)  # an x-secret where the secret walk does not look, an anchor twice, ...
    documents = RVALUES | st.dictionaries(st.sampled_from(RKEYS), RVALUES, max_size=4)
    for base in data.draw(st.lists(documents, min_size=8, max_size=8)):  # several documents per schema
        if not ms.is_valid(base):
            continue
        new = base
        for _ in range(data.draw(st.integers(1, 3))):
            new = data.draw(cow_edit(new))
        assert ms.check(new, valid_base=base) == ms.check(new)


def test_subschemas_compiled_alone_hold_no_more_schema_text_than_the_whole_schema() -> None:
    """A schema whose every nested level gains a key in some tenant: each level compiled alone held
    all the levels below it (quadratic in the depth; 40 levels of 370 KB took 314 MB)."""
    depth = 12

    def level(d: int) -> dict[str, Any]:
        props: dict[str, Any] = {f"p{i}": {"type": "string", "maxLength": 10 + i} for i in range(20)}
        if d < depth:
            props["next"] = level(d + 1)
        return {"type": "object", "properties": props}

    def doc(d: int) -> dict[str, Any]:
        return {**{f"p{i}": "x" for i in range(20)}, **({"next": doc(d + 1)} if d < depth else {})}

    def add_key(value: dict[str, Any], d: int, at: int, extra: object) -> dict[str, Any]:
        return {**value, "extra": extra} if d == at else {**value, "next": add_key(value["next"], d + 1, at, extra)}

    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **level(0)}
    ms = ModuleSchema.load("m", "schemas/m.schema.json", json.dumps(root).encode())
    base = doc(0)
    assert ms.is_valid(base)
    for at in range(1, depth + 1):
        assert ms.check(add_key(base, 0, at, 1), valid_base=base) == []
        bad = add_key(base, 0, at, 1)
        bad = {**bad, "p0": "far too long a value"}
        assert ms.check(bad, valid_base=base) == ms.check(bad) != []
    assert ms._edits is not None
    compiled = sum(len(text) for text in ms._edits._compiled)
    assert compiled <= len(json.dumps(root, sort_keys=True))


class _Fuzz:
    """Seeded random schemas, documents and copy-on-write edits: many more cases per second than
    hypothesis draws (a walk through ``patternProperties`` or ``unevaluatedProperties`` is caught
    within a few thousand schemas)."""

    KEYS = ("a", "b", "", "n1", "x/y", "~0", "1")

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)  # noqa: S311
        self.ids = 0  # each $id once: jsonschema-rs 0.61 panics on one $id twice (ModuleSchema.load too)

    def leaf(self) -> object:
        return self.r.choice([0, 1, 2, -1, 1.5, 1.0, -0.0, 2**70, "", "a", "ab", "1.2.3.4", "é", None, True, False])

    def value(self, depth: int = 0) -> Any:
        roll = self.r.random()
        if depth > 3 or roll < 0.4:
            return self.leaf()
        if roll < 0.7:
            return {k: self.value(depth + 1) for k in self.r.sample(self.KEYS, self.r.randint(0, 3))}
        return [self.value(depth + 1) for _ in range(self.r.randint(0, 3))]

    def schema(self, depth: int = 0) -> Any:
        r = self.r
        if depth > 3 or r.random() < 0.15:
            return r.choice([True, False, {}, {"type": "integer"}, {"const": 1}, {"type": "string", "maxLength": 1}])
        out: dict[str, Any] = {}
        for _ in range(r.randint(1, 4)):
            keyword = r.choice(KEYWORDS)
            if keyword == "type":
                out[keyword] = r.choice(["object", "array", "integer", "string", ["object", "null"], "null"])
            elif keyword in ("properties", "dependentSchemas", "$defs"):
                out[keyword] = {k: self.schema(depth + 1) for k in r.sample(self.KEYS, r.randint(1, 3))}
            elif keyword == "required":
                out[keyword] = r.sample(self.KEYS, r.randint(0, 2))
            elif keyword == "patternProperties":
                out[keyword] = {r.choice(["^n", "^$", "^1$", "/"]): self.schema(depth + 1)}
            elif keyword == "dependentRequired":
                out[keyword] = {r.choice(self.KEYS): [r.choice(self.KEYS)]}
            elif keyword == "if":
                out.update(
                    {"if": self.schema(depth + 1), "then": self.schema(depth + 1), "else": self.schema(depth + 1)}
                )
            elif keyword in ("oneOf", "anyOf", "allOf", "prefixItems"):
                out[keyword] = [self.schema(depth + 1) for _ in range(r.randint(1, 3))]
            elif keyword in ("minProperties", "maxProperties", "minItems", "maxItems", "minimum", "minContains"):
                out[keyword] = r.randint(0, 2)
            elif keyword in ("uniqueItems", "x-secret"):
                out[keyword] = True
            elif keyword in ("const", "default"):
                out[keyword] = self.value(2)
            elif keyword == "enum":
                out[keyword] = [self.value(2) for _ in range(r.randint(1, 3))]
            elif keyword == "$ref":
                out[keyword] = r.choice(["#/$defs/d", "#", "#anchor"])
            elif keyword == "format":
                out[keyword] = "ipv4"
            elif keyword == "$anchor":
                out[keyword] = f"anchor{r.randint(0, 5)}"
            elif keyword in ("title", "$comment"):
                out[keyword] = "t"
            elif keyword == "$id":
                self.ids += 1
                out[keyword] = f"inner{self.ids}.json"
            else:  # not, propertyNames, items, contains, unevaluated*
                out[keyword] = self.schema(depth + 1)
        return out

    def edit(self, value: Any, depth: int = 0) -> Any:
        r = self.r
        if isinstance(value, dict) and value and r.random() < 0.7:
            roll = r.random()
            if roll < 0.6:
                key = r.choice(list(value))
                return {**value, key: self.edit(value[key], depth + 1)}
            if roll < 0.8:
                return {**value, r.choice(self.KEYS): self.value(depth + 1)}
            key = r.choice(list(value))
            return {k: v for k, v in value.items() if k != key}
        if isinstance(value, list) and value and r.random() < 0.7:
            items, at, roll = list(value), r.randrange(len(value)), r.random()
            if roll < 0.6:
                items[at] = self.edit(value[at], depth + 1)
            elif roll < 0.8:
                items.append(self.value(depth + 1))
            else:
                del items[at]
            return items
        return self.value(depth + 1)


@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_random_schemas_never_show_valid_an_edit_the_whole_document_rejects(seed: int) -> None:
    fuzz = _Fuzz(seed)
    shown = 0
    for _ in range(3000):
        root = fuzz.schema()
        if not isinstance(root, dict):
            continue
        root["$defs"] = {"d": fuzz.schema(1), "a": {"$anchor": "anchor"}, **root.get("$defs", {})}
        if fuzz.r.random() < 0.5:
            root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        try:
            whole = jsonschema_rs.validator_for(root, **_OPTIONS)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError):
            continue
        check = EditCheck(root, _OPTIONS)
        for _ in range(20):
            base = fuzz.value() if fuzz.r.random() < 0.5 else {k: fuzz.value(1) for k in fuzz.r.sample(fuzz.KEYS, 3)}
            if not whole.is_valid(base):
                continue
            new = base
            for _ in range(fuzz.r.randint(1, 3)):
                new = fuzz.edit(new)
            if check.valid(base, new):
                shown += new is not base
                assert whole.is_valid(new), (root, base, new)
    assert shown > 1000  # the check decides most edits itself: the walk is exercised
