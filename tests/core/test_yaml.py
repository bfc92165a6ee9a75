"""The YAML loader: origins, the core schema, merge tags, and bounded work."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.errors import InputError
from compiler.load import yaml as loader
from compiler.load.yaml import Tagged, load_document, resolve_plain


def load(text: str | bytes, *, path: str = "environments/prod.yaml", layer: str = "prod"):
    data = text.encode() if isinstance(text, str) else text
    return load_document(data, path=path, layer=layer)


def error(text: str | bytes, *, path: str = "environments/prod.yaml") -> str:
    with pytest.raises(InputError) as exc:
        load(text, path=path)
    message = str(exc.value)
    assert "\n" not in message, "one line per error"
    return message


# --- origins -------------------------------------------------------------------------------


def test_every_node_has_its_line_and_column() -> None:
    doc = load("a:\n  b: 1\n  c:\n    - x\n    - {d: 2}\n")
    assert doc.positions[()] == (1, 1)
    assert doc.positions[("a",)] == (1, 1)
    assert doc.positions[("a", "b")] == (2, 3)
    assert doc.positions[("a", "c")] == (3, 3)
    assert doc.positions[("a", "c", 0)] == (4, 7)
    assert doc.positions[("a", "c", 1)] == (5, 7)
    assert doc.positions[("a", "c", 1, "d")] == (5, 8)


def test_origin_of_a_path_falls_back_to_the_nearest_ancestor() -> None:
    doc = load("a:\n  b: 1\n", layer="prod")
    origin = doc.origin(("a", "b", "not", "there"))
    assert (origin.path, origin.line, origin.column, origin.layer) == ("environments/prod.yaml", 2, 3, "prod")
    assert origin.location() == "environments/prod.yaml:2:3"


def test_origin_of_an_empty_document_is_line_one() -> None:
    assert load("").origin(("x",)).location() == "environments/prod.yaml:1:1"


# --- core schema ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("~", None),
        ("null", None),
        ("Null", None),
        ("", None),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("0", 0),
        ("-12", -12),
        ("+7", 7),
        ("0o17", 15),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("-2.", -2.0),
        # YAML 1.1 words stay strings in the 1.2 core schema
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        # timestamps stay strings; JSON Schema formats apply to strings
        ("2001-12-14", "2001-12-14"),
        ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
        # not core-schema numbers
        ("012", 12),
        ("-0x1F", "-0x1F"),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("1:20", "1:20"),
        ("gpt-4o", "gpt-4o"),
        ("nan", "nan"),
    ],
)
def test_plain_scalars_resolve_by_the_core_schema(text: str, value: object) -> None:
    assert load(f"v: {text}\n").value == {"v": value}
    assert type(load(f"v: {text}\n").value["v"]) is type(value)  # type: ignore[index]


def test_quoted_scalars_are_always_strings() -> None:
    assert load("a: '1'\nb: \"true\"\nc: 'null'\nd: ! 12\n").value == {"a": "1", "b": "true", "c": "null", "d": "12"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("!!str 1", "1"),
        ("!!int '3'", 3),
        ("!!float 1", 1.0),
        ("!!bool true", True),
        ("!!null ''", None),
        ("!<tag:yaml.org,2002:str> 1", "1"),
    ],
)
def test_explicit_core_tags(text: str, value: object) -> None:
    got = load(f"v: {text}\n").value["v"]  # type: ignore[index]
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v: !!int 1.0\n", "environments/prod.yaml:1:4: '1.0' is not a valid !!int"),
        ("v: !!bool yes\n", "environments/prod.yaml:1:4: 'yes' is not a valid !!bool"),
        ("v: !!float abc\n", "environments/prod.yaml:1:4: 'abc' is not a valid !!float"),
        ("v: !!null x\n", "environments/prod.yaml:1:4: 'x' is not a valid !!null"),
        ("v: !!timestamp 2001-01-01\n", "environments/prod.yaml:1:4: unknown tag tag:yaml.org,2002:timestamp"),
        ("v: !!binary aGk=\n", "environments/prod.yaml:1:4: unknown tag tag:yaml.org,2002:binary"),
        (
            "v: !!python/object:os.system x\n",
            "environments/prod.yaml:1:4: unknown tag tag:yaml.org,2002:python/object:os.system",
        ),
        ("v: !!set {a: null}\n", "environments/prod.yaml:1:4: unknown tag tag:yaml.org,2002:set"),
        ("v: !!omap [a: 1]\n", "environments/prod.yaml:1:4: unknown tag tag:yaml.org,2002:omap"),
        ("v: !custom 1\n", "environments/prod.yaml:1:4: unknown tag !custom"),
        ("v: !Override 1\n", "environments/prod.yaml:1:4: unknown tag !Override"),
        ("v: !custom {a: 1}\n", "environments/prod.yaml:1:4: unknown tag !custom"),
        ("v: !!map [1]\n", "environments/prod.yaml:1:4: !!map does not fit this node"),
        ("v: !!seq {a: 1}\n", "environments/prod.yaml:1:4: !!seq does not fit this node"),
        ("v: !!str {a: 1}\n", "environments/prod.yaml:1:4: unknown tag tag:yaml.org,2002:str"),
    ],
)
def test_outside_the_core_schema_is_an_input_error(text: str, message: str) -> None:
    assert error(text) == message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        *((t, "not a JSON number") for t in ("v: .nan", "v: .inf", "v: -.Inf", "v: !!float .NaN", "v: !override .inf")),
        ("v: 1e400", "1e400 is beyond the range of a double"),  # was "not a JSON number": it is one, too big
        ("v: 1e-400", "1e-400 is too small for a double (under about 4.9e-324): it would become 0"),  # was 0.0
        ("v: -0.5e-330", "-0.5e-330 is too small for a double"),
    ],
)
def test_numbers_json_cannot_hold_are_input_errors(text: str, why: str) -> None:
    assert error(text + "\n").startswith("environments/prod.yaml:1:4: ")
    assert why in error(text + "\n")


@pytest.mark.parametrize(("text", "value"), [("0.0e-400", 0.0), ("-0.0", -0.0), ("5e-324", 5e-324), ("0e99999", 0.0)])
def test_zeros_and_the_smallest_double_load_unchanged(text: str, value: float) -> None:
    loaded = load_document(f"v: {text}\n".encode(), path="f.yaml", layer="l").value
    assert json.dumps(loaded) == json.dumps({"v": value})


@pytest.mark.parametrize("tag", ["", "!!int ", "!!float ", "!override "])
def test_an_integer_too_long_to_convert_is_an_input_error(tag: str) -> None:
    assert error(f"v: {tag}" + "9" * 5000 + "\n") == "environments/prod.yaml:1:4: number too long (5000 characters)"


@pytest.mark.parametrize("number", ["1" + "0" * 400, "-1" + "0" * 400, "0x" + "f" * 300, "0o" + "7" * 400, "9" * 309])
def test_an_integer_tagged_float_past_a_double_is_an_input_error(number: str) -> None:
    # float(int) raised OverflowError here: an internal error (exit 70) for a bad input
    why = "is beyond the range of a double (about ±1.8e308): it would become infinity"
    assert error(f"v: !!float {number}\n") == f"environments/prod.yaml:1:4: {number} {why}"


def test_an_integer_tagged_float_within_a_double_loads() -> None:
    assert load("v: !!float " + "9" * 308 + "\n").value == {"v": float("9" * 308)}


def test_an_integer_of_a_thousand_digits_loads() -> None:
    assert load("v: " + "9" * 1000 + "\n").value == {"v": int("9" * 1000)}


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_integers_round_trip(n: int) -> None:
    assert resolve_plain(str(n)) == n


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_floats_round_trip(x: float) -> None:
    got = resolve_plain(repr(x))
    assert got == x
    assert isinstance(got, float) or x == int(x)  # "1e+16" style reprs are floats too


# --- mapping keys, duplicates, documents -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\na: 2\n", "environments/prod.yaml:2:1: duplicate key 'a'"),
        ("'a': 1\n\"a\": 2\n", "environments/prod.yaml:2:1: duplicate key 'a'"),
        ("m:\n  x: 1\n  y: 2\n  x: 3\n", "environments/prod.yaml:4:3: duplicate key 'x'"),
        ("m: {x: 1, x: 1}\n", "environments/prod.yaml:1:11: duplicate key 'x'"),
        ("a: {b: 1}\na: !override {b: 2}\n", "environments/prod.yaml:2:1: duplicate key 'a'"),
        ("1: a\n", "environments/prod.yaml:1:1: mapping keys must be strings (quote the key)"),
        ("true: a\n", "environments/prod.yaml:1:1: mapping keys must be strings (quote the key)"),
        ("~: a\n", "environments/prod.yaml:1:1: mapping keys must be strings (quote the key)"),
        ("? [a]\n: 1\n", "environments/prod.yaml:1:3: mapping keys must be strings, not collections"),
        ("a: &k x\n*k : 1\n", "environments/prod.yaml:2:1: mapping keys must be strings (quote the key)"),
        ("!override a: 1\n", "environments/prod.yaml:1:1: mapping keys must be strings (quote the key)"),
        ("<<: {a: 1}\n", "environments/prod.yaml:1:1: merge keys (<<) are not supported; use layers"),
        ("a: 1\n---\nb: 2\n", "environments/prod.yaml:2:1: more than one YAML document in the file"),
        ("a: *nope\n", "environments/prod.yaml:1:4: unknown alias *nope"),
    ],
)
def test_key_errors(text: str, message: str) -> None:
    assert error(text) == message


def test_a_quoted_merge_key_is_an_ordinary_key() -> None:
    assert load("'<<': 1\n").value == {"<<": 1}


def test_explicit_str_tag_makes_a_numeric_key_a_string() -> None:
    assert load("!!str 1: a\n").value == {"1": "a"}


def test_aliases_share_their_anchor_value() -> None:
    doc = load("a: &x {c: [1, 2]}\nb: *x\n")
    assert doc.value == {"a": {"c": [1, 2]}, "b": {"c": [1, 2]}}
    assert doc.value["a"] is doc.value["b"]  # type: ignore[index]


def test_empty_and_comment_only_documents_are_null() -> None:
    assert load("").value is None
    assert load("# nothing here\n").value is None
    assert load("---\n").value is None


def test_a_byte_order_mark_is_accepted() -> None:
    assert load(b"\xef\xbb\xbfa: 1\n").value == {"a": 1}


# --- bad YAML is one line with file:line:col ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a: [1, 2\n", "environments/prod.yaml:2:1: invalid YAML: did not find expected ',' or ']'"),
        (b"a:\n  - b\n  c: d\n", "environments/prod.yaml:3:3: invalid YAML: did not find expected '-' indicator"),
        (b"a: 'x\n", "environments/prod.yaml:2:1: invalid YAML: found unexpected end of stream"),
        (b"a: \tb: c\n", "environments/prod.yaml:1:6: invalid YAML: mapping values are not allowed in this context"),
        (
            b"ok: 1\nbad: \xff\n",
            "environments/prod.yaml:2:6: invalid YAML: invalid leading UTF-8 octet (character #x00ff)",
        ),
        (
            b"ok: 1\nbad: x\x00\n",
            "environments/prod.yaml:2:7: invalid YAML: control characters are not allowed (character #x0000)",
        ),
    ],
)
def test_bad_yaml_is_one_line_with_its_position(data: bytes, message: str) -> None:
    assert error(data) == message


# --- merge tags in the loader --------------------------------------------------------------


def test_merge_tags_wrap_their_node_with_its_origin() -> None:
    doc = load("a: !override {b: 1}\nc: !append [x]\nd: !prepend [y]\ne: !delete\nf: !override 3\n")
    value = doc.value
    assert isinstance(value, dict)
    assert value["a"] == Tagged("override", {"b": 1}, value["a"].origin)  # type: ignore[union-attr]
    assert value["c"].tag == "append"
    assert value["c"].value == ["x"]
    assert value["d"].tag == "prepend"
    assert value["d"].value == ["y"]
    assert value["e"].tag == "delete"
    assert value["e"].value is None
    assert value["f"].tag == "override"
    assert value["f"].value == 3
    assert value["c"].origin.location() == "environments/prod.yaml:2:4"  # type: ignore[union-attr]
    assert doc.tagged
    assert not load("a: 1\n").tagged


def test_override_keeps_the_scalar_type_of_plain_and_quoted_values() -> None:
    value = load("a: !override 1\nb: !override '1'\nc: !override\n").value
    assert value["a"].value == 1  # type: ignore[index,union-attr]
    assert value["b"].value == "1"  # type: ignore[index,union-attr]
    assert value["c"].value is None  # type: ignore[index,union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !append {b: 1}\n", "environments/prod.yaml:1:4: !append needs a list, not a map"),
        ("a: !prepend {b: 1}\n", "environments/prod.yaml:1:4: !prepend needs a list, not a map"),
        ("a: !append x\n", "environments/prod.yaml:1:4: !append needs a list, not a string"),
        ("a: !append 3\n", "environments/prod.yaml:1:4: !append needs a list, not a number"),
        ("a: !prepend true\n", "environments/prod.yaml:1:4: !prepend needs a list, not a boolean"),
        ("a: !append\n", "environments/prod.yaml:1:4: !append needs a list, not null"),
        ("a: !delete x\n", "environments/prod.yaml:1:4: !delete takes no value"),
        ("a: !delete {b: 1}\n", "environments/prod.yaml:1:4: !delete takes no value"),
        ("a: !delete []\n", "environments/prod.yaml:1:4: !delete takes no value"),
        ("a:\n  b: !delete 0\n", "environments/prod.yaml:2:6: !delete takes no value"),
    ],
)
def test_a_tag_that_does_not_fit_its_node_is_an_error(text: str, message: str) -> None:
    assert error(text) == message


# --- bounded work --------------------------------------------------------------------------


def test_nesting_deeper_than_the_limit_fails_at_the_node() -> None:
    deep = "[" * (loader.MAX_DEPTH + 1) + "]" * (loader.MAX_DEPTH + 1)
    assert error(f"a: {deep}\n") == f"environments/prod.yaml:1:{loader.MAX_DEPTH + 3}: nesting deeper than 64 levels"


def test_nesting_at_the_limit_loads() -> None:
    depth = loader.MAX_DEPTH - 1
    assert load("[" * depth + "]" * depth).value is not None


def test_a_five_thousand_deep_document_fails_fast() -> None:
    text = "".join(f"{' ' * i}k{i}:\n" for i in range(5000))
    assert "nesting deeper than 64 levels" in error(text)
    assert "nesting deeper than 64 levels" in error("[" * 5000 + "]" * 5000)
    assert "nesting deeper than 64 levels" in error("{a: " * 5000 + "}" * 5000)


def test_an_alias_counts_its_depth_where_it_is_placed() -> None:
    """Every later step (merge, render, canonical JSON) recurses over the value with aliases expanded:
    40 anchors each 55 deep, each aliasing the one before, made a 2,200-deep value (exit 70, RecursionError)."""
    nest = 55
    lines = ["a0: &a0 " + "[" * nest + "1" + "]" * nest]
    lines += [f"a{i}: &a{i} " + "[" * nest + f"*a{i - 1}" + "]" * nest for i in range(1, 40)]
    assert error("\n".join(lines) + "\n") == (
        f"environments/prod.yaml:2:{nest + 9}: nesting deeper than 64 levels with aliases expanded"
    )
    # a map alias, a tagged anchor and an anchor inside an anchor measure the same way
    levels = loader.MAX_DEPTH - 3
    inner = "{k: " * levels + "1" + "}" * levels
    base = f"x: &x !override {{y: &y {inner}}}\nz: {{q: {{r: *y}}}}\n"  # y: 61 levels placed at 3
    assert load(base + "w: [*x]\n").value is not None  # x: 62 levels placed at 2
    too_deep = "nesting deeper than 64 levels with aliases expanded"
    assert error(base + "w: [[*x]]\n") == f"environments/prod.yaml:3:6: {too_deep}"
    assert error(base + "v: [[[*y]]]\n").endswith("nesting deeper than 64 levels with aliases expanded")


def test_an_alias_at_the_depth_limit_loads() -> None:
    deep = "[" * (loader.MAX_DEPTH - 2) + "1" + "]" * (loader.MAX_DEPTH - 2)
    assert load(f"a: &a {deep}\nb: [*a]\n").value is not None  # 1 + 1 + 62
    assert error(f"a: &a {deep}\nb: [[*a]]\n").endswith("nesting deeper than 64 levels with aliases expanded")


def billion_laughs(levels: int = 10, width: int = 10) -> str:
    lines = ["a0: &a0 [lol]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_fails_fast_at_the_alias_that_passes_the_bound() -> None:
    message = error(billion_laughs())
    assert message.startswith("environments/prod.yaml:")
    assert message.endswith(f"more than {loader.MAX_NODES} nodes with aliases expanded")


def test_aliases_within_the_bound_load(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = load(billion_laughs(levels=4, width=10))
    assert doc.nodes > 1000
    monkeypatch.setattr(loader, "MAX_NODES", doc.nodes - 1)
    assert "nodes with aliases expanded" in error(billion_laughs(levels=4, width=10))


def test_files_over_the_size_limit_are_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 100)
    assert error("a: " + "x" * 200 + "\n") == "environments/prod.yaml: file is 204 bytes; the limit is 100"


def test_loaded_values_are_plain_json() -> None:
    value = load("a: [1, 2.5, x, true, null, {b: c}]\n").value

    def walk(v: object) -> None:
        if isinstance(v, dict):
            assert all(isinstance(k, str) for k in v)
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        else:
            assert v is None or isinstance(v, (str, int, float, bool))
            assert not isinstance(v, float) or math.isfinite(v)

    walk(value)
