"""Two subschemas named by equivalent URIs are refused (RFC 3986 §6.2.2, §6.2.3), not only by equal strings.

jsonschema-rs takes ``http://h/sub.json`` and ``HTTP://H/sub.json`` (and the other forms below) as one
URI and silently resolves a ``$ref`` to either schema; before, the duplicate check compared raw strings,
and ``validate`` passed a value the named schema refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.validate.schemafiles import remove_dot_segments, uri_key
from tests.conftest import copy_example

OBSERVATORY = "schemas/observatory.schema.json"
A = "http://h/sub.json"


def example_with(tmp_path: Path, defs: dict[str, object], ref: str = A) -> tuple[Path, str]:
    """The example repository with ``defs`` in observatory's schema, ``hot_days`` (3 in dev) a ``$ref`` to ``ref``."""
    root = copy_example(tmp_path / "example")
    schema = json.loads((root / OBSERVATORY).read_text())
    schema["$defs"] = {**schema.get("$defs", {}), **defs}
    schema["properties"]["retention"]["properties"]["hot_days"] = {"$ref": ref}
    text = json.dumps(schema, indent=2) + "\n"
    (root / OBSERVATORY).write_text(text)
    return root, text


def line_col(text: str, needle: str) -> str:
    """``line:col`` where an error points for ``needle`` (``"key": value``): the value."""
    at = text.index(needle) + needle.index(": ") + 2
    return f"{text.count(chr(10), 0, at) + 1}:{at - text.rfind(chr(10), 0, at)}"  # both from 1


@pytest.mark.parametrize(
    "other",
    [
        "HTTP://H/sub.json",  # §6.2.2.1 scheme and host case
        "http://h:80/sub.json",  # §6.2.3 the default port
        "http://h:/sub.json",  # §6.2.3 an empty port
        "http://h/x/../sub.json",  # §6.2.2.3 dot-segments (§5.2.4)
        "http://h/./sub.json",
        "http://h/%73ub.json",  # §6.2.2.2 an unreserved character percent-encoded
        "http://h/%73%75%62.json",
    ],
)
def test_an_equivalent_id_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], other: str
) -> None:
    root, text = example_with(tmp_path, {"a": {"$id": A, "maximum": 1}, "b": {"$id": other, "maximum": 100}})
    assert main(["-q", "-C", str(root), "validate", "-t", "dev"]) == 2
    first, second = line_col(text, f'"$id": "{A}"'), line_col(text, f'"$id": "{other}"')
    assert capsys.readouterr().err.splitlines() == [
        f"llmcc: {OBSERVATORY}:{second}: $id {other!r} names {other}, which {OBSERVATORY}:{first} names already "
        "(one URI, two schemas)"
    ]


@pytest.mark.parametrize("anchor", ["$anchor", "$dynamicAnchor"])
def test_anchors_under_equivalent_ids_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], anchor: str
) -> None:
    defs = {
        "a": {"$id": "http://h/d/", "$defs": {"x": {anchor: "lim", "maximum": 1}}},
        "b": {"$id": "http://H:80/d/", "$defs": {"x": {anchor: "lim", "maximum": 100}}},
    }
    root, text = example_with(tmp_path, defs, ref="http://h/d/#lim")
    assert main(["-q", "-C", str(root), "validate", "-t", "dev"]) == 2
    err = capsys.readouterr().err
    where = line_col(text, '"$id": "http://H:80/d/"')
    assert err.startswith(f"llmcc: {OBSERVATORY}:{where}: $id "), err
    assert err.endswith("(one URI, two schemas)\n")


def test_a_root_id_equivalent_to_another_files_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # hot_days refers to shared.json by its path: the files are registered (SchemaFiles.names)
    root, text = example_with(tmp_path, {}, ref="https://llmcc.invalid/schemas/shared.json")
    own = json.loads(text)["$id"]
    shared = {"$id": own.replace("https://llmcc.example.com", "HTTPS://LLMCC.Example.com:443")}
    (root / "schemas/shared.json").write_text(json.dumps(shared) + "\n")
    assert main(["-q", "-C", str(root), "validate", "-t", "dev"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmcc: schemas/"), err
    assert "is already the $id of schemas/" in err, err


@pytest.mark.parametrize(
    "other",
    [
        "http://h/Sub.json",  # the path is case-sensitive
        "http://h:8080/sub.json",  # not the default port
        "https://h/sub.json",  # another scheme
        "http://h/x/sub.json",
        "http://h/sub.json?v=2",
        "http://u@h/sub.json",  # userinfo
    ],
)
def test_distinct_ids_are_still_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str], other: str) -> None:
    root, _ = example_with(tmp_path, {"a": {"$id": A, "maximum": 1}, "b": {"$id": other, "maximum": 100}})
    assert main(["-q", "-C", str(root), "validate", "-t", "dev"]) == 1  # the $ref names a: 3 > 1
    assert "retention.hot_days" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("uri", "key"),
    [
        ("HTTP://H/sub.json", A),
        ("http://h", "http://h/"),  # §6.2.3: the empty path of http is "/"
        ("https://h:443", "https://h/"),
        ("http://U@[::1]:8080/a%2fb?%7e#%41", "http://U@[::1]:8080/a%2Fb?~#A"),
        ("URN:Example:A", "urn:Example:A"),  # only the scheme's case: the rest is the URN's own
        ("http://h:x/", "http://h:x/"),  # not a URI urlsplit reads: itself
    ],
)
def test_uri_key(uri: str, key: str) -> None:
    assert uri_key(uri) == key


@pytest.mark.parametrize(
    ("path", "out"),
    [  # RFC 3986 §5.4.1-2 examples, after merging
        ("/a/b/c/./../../g", "/a/g"),
        ("mid/content=5/../6", "mid/6"),
        ("/b/c/../../../g", "/g"),
        ("/b/c/./g/.", "/b/c/g/"),
        ("/b/c/g/..", "/b/c/"),
        ("/g.", "/g."),
        ("/..g", "/..g"),
        ("../a", "a"),
        ("./a", "a"),
        ("..", ""),
    ],
)
def test_remove_dot_segments(path: str, out: str) -> None:
    assert remove_dot_segments(path) == out


@pytest.mark.parametrize(
    ("defs", "ref"),
    [
        ({"a": {"$anchor": "lim", "maximum": 1}}, "#%6Cim"),  # §6.2.2.2: `%6C` is `l`
        ({"a": {"$anchor": "lim", "maximum": 1}}, "#%6c%69%6D"),
        ({"a": {"$id": "http://h/d/", "$defs": {"x": {"$anchor": "lim", "maximum": 1}}}}, "HTTP://h:80/d/#%6Cim"),
        ({"a": {"maximum": 1}}, "#/$defs/%61"),  # a JSON Pointer fragment: the engine decoded it already
        ({"a": {"maximum": 1}}, "%6Fbservatory.schema.json#/%24defs/a"),
    ],
    ids=["anchor", "anchor-lower-hex", "anchor-other-base", "pointer", "pointer-file"],
)
def test_an_equivalent_ref_resolves_to_the_same_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], defs: dict[str, object], ref: str
) -> None:
    """Before, a percent-encoded anchor name was "does not resolve" (exit 2); now it names the anchor,
    whose ``maximum: 1`` refuses dev's ``hot_days: 3`` as the plain spelling does."""
    root, _ = example_with(tmp_path, defs, ref=ref)
    assert main(["-q", "-C", str(root), "validate", "-t", "dev", "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "does not resolve" not in err
    assert "$.retention.hot_days: 3 is greater than the maximum of 1" in err, err


def test_a_secret_mark_behind_an_equivalent_anchor_ref_is_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = example_with(tmp_path, {"a": {"$anchor": "lim", "type": "integer", "x-secret": True}}, ref="#%6Cim")
    assert main(["-q", "-C", str(root), "validate", "-t", "dev", "--no-cache"]) == 1
    assert "observatory $.retention.hot_days: secret in plaintext" in capsys.readouterr().err


def test_a_dynamic_ref_spelled_encoded_lands_on_its_dynamic_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The secret walk matched ``$dynamicRef`` names to ``$dynamicAnchor`` as written: ``#%6Cim`` missed ``lim``."""
    defs = {"a": {"$dynamicAnchor": "lim", "type": "integer", "x-secret": True}}
    root = copy_example(tmp_path / "example")
    schema = json.loads((root / OBSERVATORY).read_text())
    schema["$defs"] = {**schema.get("$defs", {}), **defs}
    schema["properties"]["retention"]["properties"]["hot_days"] = {"$dynamicRef": "#%6Cim"}
    (root / OBSERVATORY).write_text(json.dumps(schema, indent=2) + "\n")
    assert main(["-q", "-C", str(root), "validate", "-t", "dev", "--no-cache"]) == 1
    assert "observatory $.retention.hot_days: secret in plaintext" in capsys.readouterr().err


def test_two_anchors_one_name_behind_equivalent_refs_are_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    defs = {"a": {"$anchor": "lim", "maximum": 1}, "b": {"$anchor": "lim", "maximum": 100}}
    root, _ = example_with(tmp_path, defs, ref="#%6Cim")
    assert main(["-q", "-C", str(root), "validate", "-t", "dev", "--no-cache"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("(one URI, two schemas)")


@pytest.mark.parametrize("ref", ["HTTP://H/nothing.json", "http://h:80/nothing.json", "%6Eothing.json"])
def test_a_missing_document_spelled_unnormalised_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    """The engine records a missing document in its normal form; compared as written, the reference
    passed the check and stood for ``false``: under ``not``, a schema that takes anything (exit 0)."""
    root = copy_example(tmp_path / "example")
    schema = json.loads((root / OBSERVATORY).read_text())
    schema["properties"]["retention"]["properties"]["hot_days"] = {"not": {"$ref": ref}}
    text = json.dumps(schema, indent=2) + "\n"
    (root / OBSERVATORY).write_text(text)
    assert main(["-q", "-C", str(root), "validate", "-t", "dev", "--no-cache"]) == 2
    where = line_col(text, f'"$ref": "{ref}"')
    assert capsys.readouterr().err.startswith(f"llmcc: {OBSERVATORY}:{where}: $ref {ref!r} does not resolve: ")
