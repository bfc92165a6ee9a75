"""A ``$ref`` cycle that never reaches a schema with another keyword is refused (issue 14, F6).

``l1 -> l2 -> l1`` (or ``l1 -> l1``) constrains nothing: the engine accepted any value there and
the secret walk saw no ``x-secret`` mark, so a plaintext API key passed ``validate`` (exit 0, with
and without the result cache). It is refused at the referring line (exit 2): in a module schema, in
another file under ``schemas/``, across files, and in the secret walk itself. A recursive schema
(a cycle through real structure) stays legal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compiler.cli import main
from compiler.errors import InputError
from compiler.validate.schema import ModuleSchema
from compiler.validate.secretwalk import secret_paths
from tests.conftest import copy_example

OBSERVATORY = "schemas/observatory.schema.json"
PLAIN = "not-a-real-key-1234"  # a value the test wants in plaintext in the file (no canary: it is not leaked)
ID = "https://llmcc.example.com/schemas/"  # observatory's $id names its directory
LOOPS: dict[str, dict[str, Any]] = {
    "two": {"l1": {"$ref": "#/$defs/l2"}, "l2": {"$ref": "#/$defs/l1"}},
    "self": {"l1": {"$ref": "#/$defs/l1"}},
    "annotated": {"l1": {"$ref": "#/$defs/l2", "description": "d"}, "l2": {"$comment": "c", "$ref": "#/$defs/l1"}},
    "all-of": {"l1": {"allOf": [{"$ref": "#/$defs/l1"}]}},
    "any-of-two": {"l1": {"anyOf": [{"$ref": "#/$defs/l2"}]}, "l2": {"oneOf": [{"$ref": "#/$defs/l1"}]}},
    "across-files": {"l1": {"$ref": "shared/back.json#/$defs/b"}, "l2": {"$ref": "#/$defs/l1"}},
}


def _example(tmp_path: Path, defs: dict[str, Any], field: object) -> Path:
    """The example with ``defs`` in observatory's schema, its ``exporter.api_key`` the schema ``field``,
    a plaintext value for it in dev, and ``schemas/shared/back.json`` referring back to ``l2``.
    """
    root = copy_example(tmp_path / "example")
    schema = json.loads((root / OBSERVATORY).read_text())
    schema["$defs"] = defs
    schema["properties"]["exporter"]["properties"]["api_key"] = field
    (root / OBSERVATORY).write_text(json.dumps(schema, indent=2))
    (root / "schemas/shared").mkdir()
    back = {"$id": f"{ID}shared/back.json", "$defs": {"b": {"$ref": "../observatory.schema.json#/$defs/l2"}}}
    (root / "schemas/shared/back.json").write_text(json.dumps(back, indent=2))
    dev = (root / "environments/dev.yaml").read_text()
    dev = dev.replace("  observatory:\n", f"  observatory:\n    exporter:\n      api_key: {PLAIN}\n", 1)
    (root / "environments/dev.yaml").write_text(dev)
    return root


@pytest.mark.parametrize("case", sorted(LOOPS))
def test_a_reference_cycle_with_no_other_keyword_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    root = _example(tmp_path, LOOPS[case], {"$ref": "#/$defs/l1"})
    if case != "across-files":
        (root / "schemas/shared/back.json").unlink()
    line = next(i for i, t in enumerate((root / OBSERVATORY).read_text().splitlines(), 1) if '"api_key": {' in t)
    for _ in range(2):  # the second run may read the result cache: it must not skip the refusal
        assert main(["-q", "-C", str(root), "validate"]) == 2
        err = capsys.readouterr().err
        where = "schemas/shared/back.json:5:" if case == "across-files" else f"{OBSERVATORY}:{line + 1}:"
        assert err.startswith(f"llmcc: {where}"), err  # the files no module is are checked first
        assert "enters a reference cycle with no other keyword" in err, err
    assert main(["-q", "-C", str(root), "hook", "validate"]) == 2
    assert "reference cycle" in capsys.readouterr().err


def test_a_cycle_in_a_file_no_module_uses_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_example(tmp_path / "example")
    loop = {"$defs": {"l1": {"$ref": "#/$defs/l2"}, "l2": {"$ref": "#/$defs/l1"}}}
    (root / "schemas/loop.json").write_text(json.dumps(loop, indent=1))
    assert main(["-q", "-C", str(root), "validate", "--no-cache"]) == 2
    assert capsys.readouterr().err.startswith("llmcc: schemas/loop.json:4:"), "at l1's $ref"


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ({"$ref": "#/$defs/tree"}, 0),  # a cycle through properties: a recursive schema
        ({"$ref": "#/$defs/l1"}, 1),  # l1 -> l2 -> l1 with l2 a secret string: the plaintext value is refused
    ],
)
def test_a_cycle_through_real_structure_stays_legal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: object, code: int
) -> None:
    defs = {
        "tree": {"type": ["object", "string"], "properties": {"child": {"$ref": "#/$defs/tree"}}},
        "l1": {"$ref": "#/$defs/l2"},
        "l2": {"type": "string", "minLength": 8, "x-secret": True, "$ref": "#/$defs/l1"},
    }
    root = _example(tmp_path, defs, field)
    (root / "schemas/shared/back.json").unlink()
    assert main(["-q", "-C", str(root), "validate", "--no-cache"]) == code
    err = capsys.readouterr().err
    assert ("secret in plaintext" in err) == (code == 1), err


class _Unchecked:
    """A schema as the secret walk sees it (``SchemaResolver``), without the load's checks."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.base = "https://llmcc.invalid/schemas/m.schema.json"
        self.path = "schemas/m.schema.json"
        self._ms = ModuleSchema.load("m", self.path, json.dumps({"$defs": {}}).encode())
        self._lookups: dict[str, Any] = {}

    def resolve(self, base: str, ref: str) -> tuple[str, Any]:
        assert ref.startswith("#/$defs/")
        name = ref.removeprefix("#/$defs/")
        return self.base, self.schema["$defs"][name]

    def matches(self, pattern: str, key: str) -> bool:
        return self._ms.matches(pattern, key)


@pytest.mark.parametrize("case", ["two", "self", "annotated", "all-of", "any-of-two"])
def test_the_secret_walk_refuses_a_cycle_the_load_did_not(case: str) -> None:
    schema = {"properties": {"k": {"$ref": "#/$defs/l1"}}, "$defs": LOOPS[case]}
    with pytest.raises(InputError, match="closes a reference cycle with no other keyword"):
        list(secret_paths(_Unchecked(schema), {"k": "plain"}))


def test_the_secret_walk_follows_a_recursive_schema() -> None:
    tree = {"properties": {"child": {"$ref": "#/$defs/t"}, "key": {"x-secret": True}}}
    schema = {"$ref": "#/$defs/t", "$defs": {"t": tree}}
    found = list(secret_paths(_Unchecked(schema), {"key": "a", "child": {"child": {"key": "b"}}}))
    assert sorted(found) == [("child", "child", "key"), ("key",)]
