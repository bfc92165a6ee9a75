"""Every JSON file under ``schemas/`` is checked on validate and compile, referenced or not.

A ``$ref`` may name any of them, so an invalid one must not sit there until the day a reference
reaches it: before, a file no module referenced was never read (``validate`` exit 0 with a file
that was not even JSON), also after a run that filled the result cache. A ``$schema`` other than
2020-12's is refused wherever it is, an embedded resource's too (the engine reads such a
subschema in that dialect, or would fetch its meta-schema).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import DEMO_IDENTITY, copy_example
from tests.core.test_schema_uri_equivalence import OBSERVATORY

DRAFT7 = "http://json-schema.org/draft-07/schema#"
BAD = {
    "not-json": ('{"type": "object",\n', "2:1: invalid JSON: "),
    "draft-07": (
        json.dumps({"$schema": DRAFT7}),
        f"1:13: $schema must be 'https://json-schema.org/draft/2020-12/schema', not {DRAFT7!r}",
    ),
    "embedded-draft-07": (
        json.dumps({"$defs": {"a": {"$id": "http://h/a", "$schema": DRAFT7}}}),
        "1:50: $schema must be ",
    ),
    "meta-schema": (json.dumps({"type": "nope"}), "1:10: invalid JSON Schema at type: "),
    "unfollowed-secret": (
        json.dumps({"properties": {"a": {"not": {"x-secret": True}}}}),
        "1:43: x-secret under 'not' is not followed by the secret walk",
    ),
    "dangling-ref": (json.dumps({"$ref": "#/$defs/nope"}), "1:10: $ref '#/$defs/nope' does not resolve: "),
    "pattern": (json.dumps({"pattern": "(?=x)"}), "1:13: pattern '(?=x)' at pattern needs lookaround"),
}


@pytest.mark.parametrize("where", ["schemas/junk.json", "schemas/shared/deep/junk.json"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_an_unreferenced_schema_file_that_is_not_valid_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, case: str
) -> None:
    root = copy_example(tmp_path / "example")
    assert main(["-q", "-C", str(root), "validate"]) == 0  # fills the result cache: every target a hit next
    text, message = BAD[case]
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    (root / where).write_text(text)
    capsys.readouterr()
    for cached in (["validate"], ["validate", "--no-cache"]):
        assert main(["-q", "-C", str(root), *cached]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"llmcc: {where}:{message}"), err


def test_compile_refuses_it_and_leaves_dist_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_example(tmp_path / "example")
    identity = ["--identity", str(DEMO_IDENTITY)]
    assert main(["-q", "-C", str(root), "compile", *identity]) == 0
    before = {p.name: p.read_bytes() for p in (root / "dist").iterdir()}
    (root / "schemas/junk.json").write_text(json.dumps({"$schema": DRAFT7}))
    capsys.readouterr()
    assert main(["-q", "-C", str(root), "compile", *identity]) == 2
    assert capsys.readouterr().err.startswith("llmcc: schemas/junk.json:1:13: $schema must be ")
    assert {p.name: p.read_bytes() for p in (root / "dist").iterdir()} == before


def test_valid_unreferenced_files_and_other_files_pass(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "example")
    (root / "schemas/shared").mkdir()
    defs = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {"port": {"type": "integer"}}}
    (root / "schemas/shared/defs.json").write_text(json.dumps(defs))
    (root / "schemas/README.md").write_text("not a schema: a $ref to it is refused\n")
    assert main(["-q", "-C", str(root), "validate", "--no-cache"]) == 0


def test_a_module_schemas_embedded_resource_in_another_dialect_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_example(tmp_path / "example")
    schema = json.loads((root / OBSERVATORY).read_text())
    schema["$defs"] = {"old": {"$id": "http://h/old", "$schema": DRAFT7, "type": "integer"}}
    (root / OBSERVATORY).write_text(json.dumps(schema, indent=2) + "\n")
    assert main(["-q", "-C", str(root), "validate", "--no-cache"]) == 2
    assert f"$schema must be 'https://json-schema.org/draft/2020-12/schema', not {DRAFT7!r}" in capsys.readouterr().err
