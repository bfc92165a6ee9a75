"""Merge rules (README "How it works") and their laws, checked with hypothesis."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.diagnostics import Origin
from compiler.errors import InputError
from compiler.load.yaml import Tagged, Value, load_document
from compiler.merge import merge_layers, merge_value, strip_tags

ORIGIN = Origin(path="environments/prod.yaml", line=7, column=5, layer="prod")

# --- strategies ----------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d"])  # few keys, so layers collide often
SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.5, 1.0, "x", "y", ""])

PLAIN = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
PLAIN_MAPS = st.dictionaries(KEYS, PLAIN, max_size=4)


def tagged(tag: str, value: Value) -> Tagged:
    return Tagged(tag, value, ORIGIN)  # type: ignore[arg-type]


def _tag_nodes(children: st.SearchStrategy[Value]) -> st.SearchStrategy[Value]:
    lists = st.lists(children, max_size=3)
    return st.one_of(
        lists,
        st.dictionaries(KEYS, children | st.just(tagged("delete", None)), max_size=4),
        children.map(lambda v: tagged("override", v)),
        lists.map(lambda v: tagged("append", v)),
        lists.map(lambda v: tagged("prepend", v)),
    )


# A layer's node as the loader builds it: tags anywhere, !delete only as a map value.
PATCHES = st.recursive(SCALARS, _tag_nodes, max_leaves=12)
PATCH_MAPS = st.dictionaries(KEYS, PATCHES | st.just(tagged("delete", None)), max_size=4)


# --- a reference model of the rules ---------------------------------------------------------


def ref_strip(v: Value) -> Value:
    if isinstance(v, Tagged):
        if v.tag == "delete":
            raise InputError("delete outside a map")
        return ref_strip(v.value)
    if isinstance(v, dict):
        return {k: ref_strip(x) for k, x in v.items() if not (isinstance(x, Tagged) and x.tag == "delete")}
    if isinstance(v, list):
        return [ref_strip(x) for x in v]
    return v


def ref_merge(base: Value, patch: Value) -> Value:
    """The merge rules of README "How it works" written as plainly as possible: the merge engine must agree with it."""
    if isinstance(patch, Tagged):
        if patch.tag == "override":
            return ref_strip(patch.value)
        if patch.tag == "delete":
            raise InputError("delete outside a map")
        items = ref_strip(patch.value)
        assert isinstance(items, list)
        if base is None:
            return items
        if not isinstance(base, list):
            raise InputError("append onto a non-list")
        return base + items if patch.tag == "append" else items + base
    if isinstance(patch, dict) and isinstance(base, dict):
        out = dict(base)
        for k, v in patch.items():
            if isinstance(v, Tagged) and v.tag == "delete":
                out.pop(k, None)
            else:
                out[k] = ref_merge(base.get(k), v)
        return out
    return ref_strip(patch)  # scalars and lists replace; a map replaces a non-map


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except InputError:
        return ("error", None)


def has_tags(v: Value) -> bool:
    if isinstance(v, Tagged):
        return True
    if isinstance(v, dict):
        return any(has_tags(x) for x in v.values())
    if isinstance(v, list):
        return any(has_tags(x) for x in v)
    return False


# --- laws ----------------------------------------------------------------------------------


@given(PLAIN)
def test_an_empty_layer_is_the_identity(a: Value) -> None:
    assert merge_layers(a, []) is a
    if isinstance(a, dict):
        assert merge_value(a, {}) is a  # no copy either
        assert merge_value(a, {}, tagged=False) is a


@given(PLAIN_MAPS)
def test_merging_over_an_empty_map_gives_the_patch(p: Value) -> None:
    assert merge_value({}, p) == p


@given(PATCHES, PATCHES)
@settings(max_examples=200)
def test_merge_agrees_with_the_reference_rules(base: Value, patch: Value) -> None:
    base = outcome(ref_strip, base)[1]  # the merged value below a layer holds no tags
    assert outcome(merge_value, base, patch) == outcome(ref_merge, base, patch)


@given(PLAIN_MAPS, PATCH_MAPS, PATCH_MAPS)
@settings(max_examples=150)
def test_merge_layers_agrees_with_the_reference_rules(a: Value, p: Value, q: Value) -> None:
    def ref(a: Value, p: Value, q: Value) -> Value:
        return ref_merge(ref_merge(a, p), q)

    assert outcome(merge_layers, a, [(p, True), (q, True)]) == outcome(ref, a, p, q)


@given(PLAIN, PLAIN_MAPS, KEYS, PATCHES)
def test_override_replaces_the_whole_subtree(v: Value, a: dict[str, Value], k: str, over: Value) -> None:
    assert merge_value(v, tagged("override", over)) == ref_strip(over)
    assert merge_value(a, {k: tagged("override", over)}) == {**a, k: ref_strip(over)}


def compose(b: Value, c: Value) -> Value:
    """One patch equal to applying the plain patch ``b`` then the plain patch ``c``.

    Where ``c`` deep-merges a map into something ``b`` made a non-map, that
    non-map cut off everything below it, so the composed patch must say
    ``!override``: plain deep merge alone is not associative (see the next test).
    """
    if not isinstance(c, dict):
        return c
    if not isinstance(b, dict):
        return tagged("override", c)
    out = dict(b)
    for k, v in c.items():
        out[k] = compose(b[k], v) if k in b else v
    return out


@given(PLAIN_MAPS, PLAIN_MAPS, PLAIN_MAPS)
@settings(max_examples=200)
def test_deep_merge_of_maps_is_associative(a: Value, b: Value, c: Value) -> None:
    left = merge_value(merge_value(a, b), c)
    assert left == merge_value(a, compose(b, c))
    assert left == merge_layers(a, [(b, False), (c, False)])


@given(PLAIN_MAPS, PLAIN_MAPS, PLAIN_MAPS)
def test_deep_merge_is_associative_when_no_map_lands_on_a_non_map(a: Value, b: Value, c: Value) -> None:
    def maps_only_over_maps(b: Value, c: Value) -> bool:
        if not isinstance(c, dict):
            return True
        if not isinstance(b, dict):
            return False
        return all(k not in b or maps_only_over_maps(b[k], v) for k, v in c.items())

    if maps_only_over_maps(b, c):
        assert merge_value(merge_value(a, b), c) == merge_value(a, merge_value(b, c))


def test_plain_deep_merge_alone_is_not_associative() -> None:
    # b's scalar cuts a's map; merging b and c first loses that cut.
    a, b, c = {"k": {"x": 1}}, {"k": 5}, {"k": {"y": 2}}
    assert merge_value(merge_value(a, b), c) == {"k": {"y": 2}}
    assert merge_value(a, merge_value(b, c)) == {"k": {"x": 1, "y": 2}}
    assert merge_value(a, compose(b, c)) == {"k": {"y": 2}}


@given(PATCHES, PATCHES)
@settings(max_examples=150)
def test_inputs_are_never_mutated(base: Value, patch: Value) -> None:
    base = outcome(ref_strip, base)[1]
    before = (copy.deepcopy(base), copy.deepcopy(patch))
    result = outcome(merge_value, base, patch)
    assert (base, patch) == before
    if result[0] == "ok":
        assert not has_tags(result[1])
        assert outcome(strip_tags, patch) == outcome(ref_strip, patch)
        assert (base, patch) == before


@given(PLAIN_MAPS, PLAIN_MAPS)
def test_untouched_subtrees_are_shared_not_copied(a: dict[str, Value], p: dict[str, Value]) -> None:
    merged = merge_value(a, p)
    assert isinstance(merged, dict)
    for k, v in a.items():
        if k not in p:
            assert merged[k] is v


@given(PLAIN, PLAIN_MAPS)
def test_promising_no_tags_changes_nothing_for_plain_patches(a: Value, p: Value) -> None:
    assert merge_value(a, p, tagged=False) == merge_value(a, p, tagged=True)


# --- tag misuse always errors, at the tag's file:line ---------------------------------------


NOT_A_LIST = st.booleans() | st.integers() | st.text(max_size=3) | st.dictionaries(KEYS, PLAIN, max_size=2)


@given(NOT_A_LIST, st.sampled_from(["append", "prepend"]), st.lists(PLAIN, max_size=2), KEYS)
def test_append_or_prepend_onto_a_non_list_errors(below: Value, tag: str, items: list[Value], k: str) -> None:
    with pytest.raises(InputError) as exc:
        merge_value({k: below}, {k: tagged(tag, items)})
    assert str(exc.value).startswith(f"environments/prod.yaml:7:5: !{tag} onto ")
    assert str(exc.value).endswith("; it extends lists only")


@given(PLAIN)
def test_delete_at_the_top_of_a_layer_errors(below: Value) -> None:
    with pytest.raises(InputError, match=r"^environments/prod.yaml:7:5: !delete only removes a key of a map$"):
        merge_value(below, tagged("delete", None))


@given(PLAIN, st.lists(PLAIN, max_size=2))
def test_delete_inside_a_list_errors(below: Value, items: list[Value]) -> None:
    with pytest.raises(InputError, match="!delete only removes a key of a map"):
        merge_value(below, [*items, tagged("delete", None)])
    with pytest.raises(InputError, match="!delete only removes a key of a map"):
        merge_value(below, tagged("override", [tagged("delete", None)]))


@pytest.mark.parametrize(
    ("below", "message"),
    [
        ({"b": 1}, "!append onto a map; it extends lists only"),
        ("text", "!append onto a string; it extends lists only"),
        (3, "!append onto a number; it extends lists only"),
        (False, "!append onto a boolean; it extends lists only"),
    ],
)
def test_tag_misuse_from_a_loaded_layer_names_its_line(below: Value, message: str) -> None:
    layer = load_document(b"a:\n  x: 1\n  list: !append [z]\n", path="environments/staging.yaml", layer="staging")
    with pytest.raises(InputError) as exc:
        merge_value({"a": {"list": below}}, layer.value)
    assert str(exc.value) == f"environments/staging.yaml:3:9: {message}"


# --- the rules, by example ------------------------------------------------------------------


def test_maps_deep_merge_scalars_and_lists_replace() -> None:
    base = {"model": {"name": "gpt", "temperature": 0.7, "stop": ["a", "b"]}, "replicas": 2}
    patch = {"model": {"temperature": 0.3, "stop": ["c"]}, "replicas": 6}
    assert merge_value(base, patch) == {"model": {"name": "gpt", "temperature": 0.3, "stop": ["c"]}, "replicas": 6}


def test_append_prepend_delete_override() -> None:
    base = {"fallbacks": ["a"], "pre": ["a"], "drop": 1, "keep": 2, "over": {"x": 1, "y": 2}}
    patch = {
        "fallbacks": tagged("append", ["b", "c"]),
        "pre": tagged("prepend", ["z"]),
        "drop": tagged("delete", None),
        "missing": tagged("delete", None),
        "over": tagged("override", {"y": 3}),
        "new": tagged("append", ["n"]),
    }
    assert merge_value(base, patch) == {
        "fallbacks": ["a", "b", "c"],
        "pre": ["z", "a"],
        "keep": 2,
        "over": {"y": 3},
        "new": ["n"],
    }


def test_null_replaces_a_map_and_append_onto_null_starts_a_list() -> None:
    assert merge_value({"a": {"x": 1}}, {"a": None}) == {"a": None}
    assert merge_value({"a": None}, {"a": tagged("append", [1])}) == {"a": [1]}


def test_a_map_over_a_scalar_keeps_only_the_map_without_its_tags() -> None:
    patch = {"a": {"b": tagged("append", [1]), "c": tagged("delete", None), "d": tagged("override", 2)}}
    assert merge_value({"a": 5}, patch) == {"a": {"b": [1], "d": 2}}
