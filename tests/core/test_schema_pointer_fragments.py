"""A ``$ref`` fragment is percent-decoded before it is read (RFC 3986 §2.1, RFC 6901 §6, 2020-12 core §8.2).

``#%2F$defs%2Fsec`` is the JSON Pointer ``/$defs/sec``, as ``#/$defs%2Fsec`` is: before, jsonschema-rs
took a fragment not starting with a literal ``/`` for an anchor name, and ``validate`` refused the
schema ("does not resolve": a false refusal). The secret walk follows such a reference as any other,
and one that names nothing is still refused at its line, as written (fail closed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import copy_example
from tests.core.test_schema_uri_equivalence import OBSERVATORY, example_with, line_col

SECRET = {"type": "integer", "x-secret": True}
PLAINTEXT = "observatory $.retention.hot_days: secret in plaintext"


@pytest.mark.parametrize(
    ("defs", "ref"),
    [
        ({"sec": SECRET}, "#%2F$defs%2Fsec"),  # the case: every "/" encoded
        ({"sec": SECRET}, "#%2f%24defs%2fsec"),  # "$" and lower-case hex too
        ({"sec": SECRET}, "#/$defs%2Fsec"),  # resolved before as well
        ({"a/b": SECRET}, "#%2F$defs%2Fa~1b"),  # RFC 6901 §4: ~1 is "/" in a name, read after decoding
        ({"a~b": SECRET}, "#%2F$defs%2Fa~0b"),  # ~0 is "~"
        ({"a~1b": SECRET}, "#/$defs/a%7E01b"),  # "%7E0" decodes to "~0": the name "a~1b"
        ({"a%b": SECRET}, "#%2F$defs%2Fa%25b"),  # "%25" is a literal "%"
        ({"a b": SECRET}, "#%2F$defs%2Fa%20b"),  # a space stays encoded for the engine
        ({"é": SECRET}, "#%2F$defs%2F%C3%A9"),  # UTF-8
    ],
    ids=["all-encoded", "lower-hex", "tail-encoded", "tilde-1", "tilde-0", "encoded-tilde", "percent", "space", "utf8"],
)
def test_a_secret_behind_an_encoded_pointer_is_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], defs: dict[str, object], ref: str
) -> None:
    root, _ = example_with(tmp_path, defs, ref=ref)
    assert main(["-q", "-C", str(root), "validate", "-t", "dev", "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "does not resolve" not in err
    assert PLAINTEXT in err, err


def test_an_encoded_pointer_limits_as_the_plain_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = example_with(tmp_path, {"a": {"maximum": 1}}, ref="#%2F%24defs%2Fa")
    assert main(["-q", "-C", str(root), "validate", "-t", "dev", "--no-cache"]) == 1
    assert "$.retention.hot_days: 3 is greater than the maximum of 1" in capsys.readouterr().err


@pytest.mark.parametrize("keyword", ["$ref", "$dynamicRef"])
def test_an_encoded_pointer_into_another_file_reaches_its_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keyword: str
) -> None:
    root = copy_example(tmp_path / "example")
    (root / "schemas/shared").mkdir()
    shared = {"$id": "https://llmcc.example.com/schemas/shared/defs.json", "$defs": {"sec": SECRET}}
    (root / "schemas/shared/defs.json").write_text(json.dumps(shared, indent=2) + "\n")
    schema = json.loads((root / OBSERVATORY).read_text())
    schema["properties"]["retention"]["properties"]["hot_days"] = {keyword: "shared/defs.json#%2F$defs%2Fsec"}
    (root / OBSERVATORY).write_text(json.dumps(schema, indent=2) + "\n")
    for cached in ([], ["--no-cache"]):
        assert main(["-q", "-C", str(root), "validate", "-t", "dev", *cached]) == 1
        err = capsys.readouterr().err
        assert "does not resolve" not in err
        assert PLAINTEXT in err, err


def test_a_shared_files_encoded_pointer_is_read_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The reference sits in the shared file, which points on into its own $defs by an encoded pointer."""
    root = copy_example(tmp_path / "example")
    defs = {"hop": {"$ref": "#%2F$defs%2Fsec"}, "sec": SECRET}
    shared = {"$id": "https://llmcc.example.com/schemas/defs.json", "$defs": defs}
    (root / "schemas/defs.json").write_text(json.dumps(shared, indent=2) + "\n")
    schema = json.loads((root / OBSERVATORY).read_text())
    schema["properties"]["retention"]["properties"]["hot_days"] = {"$ref": "defs.json#/$defs/hop"}
    (root / OBSERVATORY).write_text(json.dumps(schema, indent=2) + "\n")
    assert main(["-q", "-C", str(root), "validate", "-t", "dev", "--no-cache"]) == 1
    assert PLAINTEXT in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("#%2F$defs%2Fnope", "has no '/$defs/nope'"),
        ("#%2F$defs%2Fsec%FF", "has no '%2F$defs%2Fsec%FF'"),  # not UTF-8: left as written, names nothing
    ],
)
def test_an_encoded_pointer_that_names_nothing_is_refused_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str, why: str
) -> None:
    root, text = example_with(tmp_path, {"sec": SECRET}, ref=ref)
    assert main(["-q", "-C", str(root), "validate", "-t", "dev", "--no-cache"]) == 2
    err = capsys.readouterr().err
    where = line_col(text, f'"$ref": "{ref}"')
    assert err.startswith(f"llmcc: {OBSERVATORY}:{where}: $ref {ref!r} does not resolve: "), err
    assert why in err, err
