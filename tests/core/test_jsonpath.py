"""The one path syntax (issue 10 §5): what is printed parses back to the same keys."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.errors import UsageError
from compiler.jsonpath import ItemKey, format_path, missing_at, parse_path, resolve, select, split_address

keys = st.text(max_size=12)  # any text: dots, slashes, brackets, quotes, spaces, "", digits, controls, astral
segments = st.lists(st.one_of(keys, st.integers(min_value=0, max_value=10**6)), max_size=6).map(tuple)
items = st.builds(
    ItemKey,
    st.sampled_from(["name", "id", "key", "path"]),
    st.one_of(keys, st.integers()),  # diff matches lists by any int id, negative ones included
)


@given(segments)
def test_parse_of_format_is_the_segments(path: tuple[str | int, ...]) -> None:
    text = format_path(path)
    assert parse_path(text) == path
    assert "\n" not in text
    assert "\u2028" not in text


@given(st.lists(st.one_of(keys, st.integers(min_value=0, max_value=99), items), max_size=5).map(tuple))
def test_format_of_parse_is_the_text(path: tuple[str | int | ItemKey, ...]) -> None:
    text = format_path(path)
    assert format_path(parse_path(text)) == text


@given(st.lists(st.one_of(keys, st.integers(min_value=0, max_value=99), items), max_size=5).map(tuple))
def test_parse_of_format_is_the_segments_items_included(path: tuple[str | int | ItemKey, ...]) -> None:
    assert parse_path(format_path(path)) == path


def test_an_item_with_a_negative_int_id_reads_back() -> None:
    """``diff`` prints ``$.ids[id=-3].v`` for ``ids: [{id: -3, v: 1}]``; explain must find that item."""
    assert format_path(("ids", ItemKey("id", -3), "v")) == "$.ids[id=-3].v"
    assert parse_path("$.ids[id=-3].v") == ("ids", ItemKey("id", -3), "v")
    assert parse_path("$.ids[id='-3']") == ("ids", ItemKey("id", "-3"))
    assert resolve({"ids": [{"id": "-3"}, {"id": -3, "v": 1}]}, parse_path("ids[id=-3].v")) == (("ids", 1, "v"), 1)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("$", ()),
        ("", ()),
        ("$.labels['app.kubernetes.io/name']", ("labels", "app.kubernetes.io/name")),
        ('$.labels["app.kubernetes.io/name"]', ("labels", "app.kubernetes.io/name")),
        ("labels['app.kubernetes.io/name']", ("labels", "app.kubernetes.io/name")),
        ("$['labels']['a b']", ("labels", "a b")),
        ("error_pages.404", ("error_pages", 404)),
        ("error_pages[404]", ("error_pages", 404)),
        ("error_pages['404']", ("error_pages", "404")),
        ("error_pages.007", ("error_pages", "007")),
        ("model.fallbacks.0", ("model", "fallbacks", 0)),
        ("model.fallbacks[0].name", ("model", "fallbacks", 0, "name")),
        (".model", ("model",)),
        ("a/b.c-d", ("a/b", "c-d")),
        ("routes[name=chat].timeout", ("routes", ItemKey("name", "chat"), "timeout")),
        ("routes[id=3]", ("routes", ItemKey("id", 3))),
        ("routes[id='3']", ("routes", ItemKey("id", "3"))),
        ("routes[name='a]b']", ("routes", ItemKey("name", "a]b"))),
        ("$['']", ("",)),
        (r"$['it\'s']", ("it's",)),
        (r'$["say \"hi\""]', ('say "hi"',)),
        (r"$['a\\b\/c']", ("a\\b/c",)),
        (r"$['\b\f\n\r\t']", ("\b\f\n\r\t",)),
        (r"$['\u00e9\ud83d\ude00']", ("é😀",)),
        (r"$['\ud800x']", ("\ud800x",)),
        (r"$['\ud800\u0041']", ("\ud800A",)),
        ("$['ünï']", ("ünï",)),
    ],
)
def test_parse_accepts_every_printed_and_typed_form(text: str, parsed: tuple[object, ...]) -> None:
    assert parse_path(text) == parsed


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("labels", "app.kubernetes.io/name"), "$.labels['app.kubernetes.io/name']"),
        (("error_pages", "404"), "$.error_pages['404']"),
        (("model", "fallbacks", 0), "$.model.fallbacks[0]"),
        (("max-tokens", "_x"), "$.max-tokens._x"),
        (("", "a b", "it's", "back\\slash"), "$[''].['a b'].['it\\'s'].['back\\\\slash']".replace("].[", "][")),
        (("a\nb", "\x7f", "\u2028", "😀", "\U000e0001"), r"$['a\nb']['\u007f']['\u2028']['😀']['\udb40\udc01']"),
        (("routes", ItemKey("name", "chat"), "t"), "$.routes[name=chat].t"),
        (("routes", ItemKey("id", 3)), "$.routes[id=3]"),
        (("routes", ItemKey("id", "3")), "$.routes[id='3']"),
    ],
)
def test_format_is_canonical(path: tuple[str | int | ItemKey, ...], text: str) -> None:
    assert format_path(path) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("$.labels[app.kubernetes.io/name]", "expected a list index, a quoted key or field=value at character 10"),
        ("$.a..b", "expected a key at character 5"),
        ("$.a[", "expected a key at character 5"),
        ("$.a['b'", "expected ']' at character 8"),
        ("$.a['b", "unterminated '-quoted key"),
        ("$.a[07]", "expected a list index, a quoted key or field=value"),
        ("$.a[-1]", "expected a list index, a quoted key or field=value"),
        (r"$.a['\q']", r"unknown escape \q at character 6"),
        (r"$.a['\u12']", "expected four hex digits"),
        ("$labels", "unexpected 'l' at character 2"),
        ("a b", "unexpected ' ' at character 2"),
        ("$.a]", "unexpected ']'"),
        ("$.a[name=]", "expected a key"),
        ("labels.*", "a wildcard (*) names no single value; a key named * is ['*'] at character 8"),  # was key "*"
        ("$.labels.*.x", "a wildcard (*) names no single value"),
        ("routes[name=*]", "a wildcard (*) names no single value"),
    ],
)
def test_parse_errors_name_the_position_and_how_to_quote(text: str, why: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_path(text)
    assert why in str(e.value)
    assert str(e.value).startswith(f"{text!r} is not a path: ")
    assert "$.labels['app.kubernetes.io/name']" in str(e.value)


DOC = {
    "error_pages": {"404": "/404.html", "007": "bond"},
    "ports": [80, 443],
    "routes": [{"name": "chat", "id": 1}, {"name": "embed", "id": "2"}],
}


@pytest.mark.parametrize(
    ("query", "concrete"),
    [
        (("error_pages", 404), ("error_pages", "404")),  # digits on a map: the key
        (("error_pages", "404"), ("error_pages", "404")),
        (("ports", 1), ("ports", 1)),  # digits on a list: the index
        (("routes", ItemKey("name", "embed"), "id"), ("routes", 1, "id")),
        (("routes", ItemKey("id", 1)), ("routes", 0)),
    ],
)
def test_resolve_reads_digits_by_the_value_there(query: tuple[object, ...], concrete: tuple[object, ...]) -> None:
    found = resolve(DOC, query)  # type: ignore[arg-type]
    assert found is not None
    assert found[0] == concrete


@pytest.mark.parametrize(
    ("query", "missing"),
    [
        (("ports", "1"), "$.ports['1']"),  # a quoted key is never an index
        (("ports", 2), "$.ports[2]"),
        (("error_pages", 500), "$.error_pages[500]"),
        (("routes", ItemKey("id", 2)), "$.routes[id=2]"),  # "2" is a string: types must match
        (("routes", ItemKey("id", True)), "$.routes[id=True]"),
        (("error_pages", "404", "x"), "$.error_pages['404'].x"),
        (("ports", ItemKey("name", "x")), "$.ports[name=x]"),
        (("error_pages", ItemKey("name", "x")), "$.error_pages[name=x]"),
    ],
)
def test_resolve_misses_and_names_the_first_missing_segment(query: tuple[object, ...], missing: str) -> None:
    assert resolve(DOC, query) is None  # type: ignore[arg-type]
    assert missing_at(DOC, query) == missing  # type: ignore[arg-type]


def test_missing_at_of_a_path_that_exists_is_the_concrete_path() -> None:
    assert missing_at(DOC, ("error_pages", 404)) == "$.error_pages['404']"
    assert select([1], -1) is None


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        ("gateway", None, ("gateway", ())),
        ("gateway.labels.x", None, ("gateway", ("labels", "x"))),
        ("gateway$.labels['a.b']", None, ("gateway", ("labels", "a.b"))),
        ("gateway['a.b']", None, ("gateway", ("a.b",))),
        ("gateway", "$.labels['a.b']", ("gateway", ("labels", "a.b"))),
        ("gate.way$.x", None, ("gate.way", ("x",))),  # $ ends a module name that holds dots
        ("gate$.way.x", None, ("gate", ("way", "x"))),
        ("gate.way", "$.x", ("gate.way", ("x",))),
        ("gate.x", None, ("gate", ("x",))),
        ('config["gateway"].labels["a.b"]', None, ("gateway", ("labels", "a.b"))),  # as policy findings print
        ("config.gate.x[0]", None, ("gate", ("x", 0))),
        ('config["gate.way"]', "$.x", ("gate.way", ("x",))),
    ],
)
def test_split_address(text: str, path: str | None, expected: tuple[str, tuple[object, ...]]) -> None:
    assert split_address(text, ["gate", "gate.way", "gateway"], path) == expected


@pytest.mark.parametrize(
    ("text", "forms"),
    [
        ("gate.way.x", "gate.way$.x or gate$.way.x"),
        ("gate.way", "gate.way$ or gate$.way"),
        ("gate.way['a.b']", "gate.way$['a.b'] or gate$.way['a.b']"),
    ],
)
def test_a_text_two_modules_start_is_refused(text: str, forms: str) -> None:
    """``gate.way.x`` read as module ``gate.way`` even where the user meant ``gate``'s ``way.x``."""
    with pytest.raises(
        UsageError, match=re.escape(f"is ambiguous: modules 'gate.way' and 'gate' both start it; write {forms}")
    ):
        split_address(text, ["gate", "gate.way", "gateway"])


def test_split_address_errors() -> None:
    with pytest.raises(UsageError, match="unknown module 'nope'; modules: a, b"):
        split_address("nope.x", ["a", "b"])
    with pytest.raises(UsageError, match="unknown module 'ab'"):
        split_address("ab", ["a", "b"])
    with pytest.raises(UsageError, match="give the path once"):
        split_address("a.x", ["a"], "$.y")
    with pytest.raises(UsageError, match="give the path once"):
        split_address('config["a"].x', ["a"], "$.y")
    with pytest.raises(UsageError, match="unknown module 'config'"):
        split_address('config["nope"].x', ["a"])
    with pytest.raises(UsageError, match="unknown module 'config'"):
        split_address("config[0]", ["a"])


def test_keys_that_differ_only_in_normalization_print_apart() -> None:
    """``café`` in NFC and in NFD are two keys of one map: both printed ``['café']`` in diff and validate."""
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    assert format_path(("labels", nfc)) == "$.labels['café']"
    assert format_path(("labels", nfd)) == "$.labels['cafe\\u0301']"
    assert format_path(("labels", "Kø " + nfd)) == "$.labels['K\\u00f8 cafe\\u0301']"
    assert format_path((ItemKey("name", nfd),)) == "$[name='cafe\\u0301']"
    assert format_path(("नाम",)) == "$['नाम']"  # NFC text with combining signs stays readable
    assert format_path(("a\n\u0301",)) == "$['a\\n\\u0301']"
    for key in (nfc, nfd):
        assert parse_path(format_path(("labels", key))) == ("labels", key)


@given(segments)
def test_a_printed_path_is_nfc(path: tuple[str | int, ...]) -> None:
    """So no key prints like another one (``'a\\n'`` then U+0301 would compose into ``ń``)."""
    text = format_path(path)
    assert unicodedata.is_normalized("NFC", text)
    assert parse_path(text) == path


def test_a_module_named_config_and_a_policy_selection_are_told_apart() -> None:
    """``config["web"].x`` (a policy finding) was read as module ``config``'s ``web.x``."""
    modules = ["config", "web"]
    with pytest.raises(
        UsageError,
        match=re.escape("""ambiguous: module 'config' or a policy selection; write config$.web.x or web$.x"""),
    ):
        split_address('config["web"].x', modules)
    assert split_address('config$["web"].x', modules) == ("config", ("web", "x"))
    assert split_address("config.other", modules) == ("config", ("other",))
    assert split_address("config", modules, '$["web"]') == ("config", ("web",))
