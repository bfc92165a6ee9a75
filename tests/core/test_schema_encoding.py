"""A JSON file under ``schemas/`` must be UTF-8 (RFC 8259 §8.1; issue 14, F7).

``json.loads`` of bytes guesses UTF-16 and UTF-32 and parsed such a file, then the
code that took its text as UTF-8 failed: exit 70 (``UnicodeDecodeError``, or
``JSONDecodeError`` for UTF-16-LE without a byte-order mark). It is refused at the
first byte that is not UTF-8 text, exit 2, by validate, compile and ``hook validate``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main
from compiler.errors import InputError
from compiler.validate.schema import ModuleSchema
from tests.conftest import DEMO_IDENTITY, copy_example

ENCODINGS = {"utf-16": "1:1", "utf-16-le": "1:2", "utf-16-be": "1:1", "utf-32": "1:1", "utf-32-le": "1:2"}
COMMANDS = {
    "validate": ["validate"],
    "validate-no-cache": ["validate", "--no-cache"],
    "compile": ["compile", "--identity", str(DEMO_IDENTITY)],
    "hook": ["hook", "validate"],
}
WHY = "not UTF-8 (RFC 8259 §8.1): JSON files must be UTF-8, not UTF-16 or UTF-32"


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_a_schema_file_in_utf16_or_utf32_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str, command: str
) -> None:
    root = copy_example(tmp_path / "example")
    (root / "schemas/x").mkdir()
    (root / "schemas/x/e.json").write_bytes('{"type": "string"}'.encode(encoding))
    assert main(["-q", "-C", str(root), *COMMANDS[command]]) == 2
    err = capsys.readouterr().err
    assert f"llmcc: schemas/x/e.json:{ENCODINGS[encoding]}: {WHY}" in err, err
    assert "internal error" not in err


def test_a_module_schema_in_utf16_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_example(tmp_path / "example")
    schema = root / "schemas/observatory.schema.json"
    schema.write_bytes(schema.read_text().encode("utf-16"))
    for _ in range(2):
        assert main(["-q", "-C", str(root), "validate"]) == 2
        assert f"llmcc: schemas/observatory.schema.json:1:1: {WHY}" in capsys.readouterr().err


def test_bad_utf8_is_refused_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_example(tmp_path / "example")
    (root / "schemas/bad.json").write_bytes(b'{\n  "description": "caf\xe9"\n}')
    assert main(["-q", "-C", str(root), "validate", "--no-cache"]) == 2
    assert capsys.readouterr().err.startswith(f"llmcc: schemas/bad.json:2:22: {WHY}")


class _Vouched:
    """A store that says every schema passed the checks before (``CheckedSchemas``)."""

    def checked(self, path: str, digest: str) -> bool:
        return True

    def learn_checked(self, path: str, digest: str) -> None:  # pragma: no cover - never asked: all vouched for
        raise AssertionError(path)


def test_utf16_bytes_said_checked_are_refused_still() -> None:
    data = '{"type": "string"}'.encode("utf-16")
    with pytest.raises(InputError, match=r"^schemas/m\.schema\.json:1:1: not UTF-8"):
        ModuleSchema.load("m", "schemas/m.schema.json", data, lazy=True, checked=_Vouched())
