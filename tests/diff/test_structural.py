"""The structural diff: types matter, keyed lists match by key, moved items are moved."""

from __future__ import annotations

from compiler.diff.masking import SecretDigest, digest_secret, mask_secrets, public
from compiler.diff.structural import ItemKey, diff_values, format_change_path, list_key, same


def deltas(old, new):
    return [(format_change_path(d.path), d.kind, d.old, d.new) for d in diff_values(old, new)]


def test_equal_values_have_no_delta() -> None:
    value = {"a": [1, {"b": None}], "c": "x"}
    assert deltas(value, {"c": "x", "a": [1, {"b": None}]}) == []


def test_types_are_part_of_the_value() -> None:
    assert not same(1, 1.0)
    assert not same(True, 1)
    assert deltas({"a": [1]}, {"a": [1.0]}) == [("$.a[0]", "changed", 1, 1.0)]
    assert deltas({"a": 0}, {"a": False}) == [("$.a", "changed", 0, False)]


def test_negative_zero_is_another_value() -> None:
    """The bundle holds ``-0.0`` and ``0.0`` as different JSON text: a change diff and history must show."""
    assert not same(0.0, -0.0)
    assert not same([0.0], [-0.0])
    assert same(-0.0, -0.0)
    assert deltas({"a": {"b": -0.0}}, {"a": {"b": 0.0}}) == [("$.a.b", "changed", -0.0, 0.0)]


def test_added_removed_changed_in_document_order() -> None:
    old = {"keep": 1, "gone": 2, "m": {"x": 1}}
    new = {"keep": 1, "m": {"x": 2}, "new": {"y": [1]}}
    assert deltas(old, new) == [
        ("$.gone", "removed", 2, None),
        ("$.m.x", "changed", 1, 2),
        ("$.new", "added", None, {"y": [1]}),
    ]


def test_lists_of_maps_match_by_name() -> None:
    old = [{"name": "chat", "t": 30}, {"name": "embed", "t": 10}, {"name": "batch"}]
    new = [{"name": "embed", "t": 10}, {"name": "chat", "t": 45}, {"name": "stream"}]
    assert list_key(old, new) == "name"
    assert deltas({"r": old}, {"r": new}) == [
        ("$.r[name=batch]", "removed", {"name": "batch"}, None),
        ("$.r[name=chat].t", "changed", 30, 45),
        ("$.r[name=stream]", "added", None, {"name": "stream"}),
        ("$.r[name=embed]", "moved", 1, 0),
    ]


def test_key_must_be_unique_and_present_on_every_item() -> None:
    assert list_key([{"name": "a"}, {"name": "a"}], [{"name": "a"}]) is None
    assert list_key([{"name": "a"}, {"id": 1}], [{"name": "a"}]) is None
    assert list_key([{"id": 1}, {"id": 2}], [{"id": 2}]) == "id"
    assert list_key([{"name": True}], [{"name": True}]) is None


def test_scalar_lists_align_and_report_moves() -> None:
    assert deltas(["a", "b", "c"], ["c", "a", "b"]) == [("$[0]", "moved", 2, 0)]
    assert deltas(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"]) == [
        ("$[1]", "changed", "b", "x"),
        ("$[4]", "added", None, "e"),
    ]
    assert deltas(["a", "b"], ["a"]) == [("$[1]", "removed", "b", None)]


def test_unkeyed_maps_in_lists_are_compared_inside() -> None:
    assert deltas([{"p": 1}, {"p": 2}], [{"p": 1}, {"p": 3}]) == [("$[1].p", "changed", 2, 3)]


def test_memo_gives_the_same_answer() -> None:
    memo: dict = {}
    a, b = {"x": [1, 2]}, {"x": [1, 2.0]}
    assert not same(a, b, memo)
    assert not same(a, b, memo)
    assert len(memo) == 1


def test_path_format_quotes_odd_keys() -> None:
    path = ("routes", ItemKey("name", "chat"), "has space", 0)
    assert format_change_path(path) == "$.routes[name=chat]['has space'][0]"


def test_secrets_mask_to_comparable_digests_that_print_redacted() -> None:
    key = b"k" * 32
    old = mask_secrets({"db": {"password": "hunter2", "port": 5432}}, [("db", "password")], key)
    new = mask_secrets({"db": {"password": "hunter3", "port": 5432}}, [("db", "password"), ("missing",)], key)
    again = mask_secrets({"db": {"password": "hunter2", "port": 5432}}, [("db", "password")], key)
    assert isinstance(old["db"]["password"], SecretDigest)  # type: ignore[index]
    assert same(old, again)
    assert deltas(old, new)[0][:2] == ("$.db.password", "changed")
    assert "hunter" not in repr(old) + str(public(old))
    assert public(old) == {"db": {"password": "<secret>", "port": 5432}}
    assert digest_secret(b"other" * 8, "hunter2") != digest_secret(key, "hunter2")
