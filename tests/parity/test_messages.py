"""Messages a user can act on: unknown keys named with a suggestion, no empty "(layer )", plurals right."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main
from compiler.fields import fields_at, first_error, suggestion
from compiler.manifest_schema import Manifest


def run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["-C", str(root), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_misspelt_manifest_key_is_named_with_a_suggestion(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(config / "llmcc.yaml", "environments:", "enviroments:")
    code, _, err = run(capsys, config, "validate")
    assert (code, err) == (
        2,
        "llmcc: llmcc.yaml:3:1: enviroments: unknown field (did you mean 'environments'?) (and 1 more)\n",
    )


def test_a_misspelt_nested_manifest_key(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(config / "llmcc.yaml", "  compiler: {provider: age,", "  compilr: {provider: age,")
    code, _, err = run(capsys, config, "validate")
    assert code == 2
    assert err.endswith(": keys.compilr: unknown field (did you mean 'compiler'?)\n")
    edit(config / "llmcc.yaml", "compilr: {provider: age,", "compiler: {provder: age,")
    code, _, err = run(capsys, config, "validate")
    assert err.endswith(": keys.compiler.provder: unknown field (did you mean 'provider'?)\n")


def test_a_misspelt_policy_field(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config / "policies/assistant.yaml"
    line = path.read_text().splitlines().index(next(ln for ln in path.read_text().splitlines() if "severity:" in ln))
    edit(path, "  severity: error", "  serverity: error")
    code, _, err = run(capsys, config, "validate")
    assert code == 2
    assert err.splitlines()[0] == (
        f"llmcc: policies/assistant.yaml:{line + 1}:3: [0].serverity: unknown field (did you mean 'severity'?)"
    )


def test_a_misspelt_policy_test_field(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(config / "policies/tests/assistant.yaml", "  expect:", "  expct:")
    code, _, err = run(capsys, config, "policy", "test")
    assert code == 2
    assert err.splitlines()[0] == (
        "llmcc: policies/tests/assistant.yaml:6:3: [0].expct: unknown field (did you mean 'expect'?)"
    )


def test_a_misspelt_key_file_field(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(config / "keys/targets/prod.yaml", "commitment:", "comitment:")
    code, _, err = run(capsys, config, "compile", "-t", "prod")
    assert code == 1
    assert err.splitlines()[0].startswith(
        "keys/targets/prod.yaml:6:1: cannot read the data key: unknown field 'comitment' (did you mean 'commitment'?)"
    )
    edit(config / "keys/targets/prod.yaml", "comitment:", "commitment:")
    edit(config / "keys/targets/prod.yaml", "  key_id:", "  keyid:")
    code, _, err = run(capsys, config, "compile", "-t", "prod")
    assert code == 1
    assert "consumer: unknown field 'keyid' (did you mean 'key_id'?)" in err.splitlines()[0]


def test_github_format_has_no_empty_layer(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "environments/dev.yaml").write_text("vars: [\n")
    code, out, _ = run(capsys, config, "validate", "--format", "github")
    assert code == 2
    assert out.startswith("::error file=environments/dev.yaml,line=2,col=1,title=llmcc::invalid YAML: ")
    assert "(layer" not in out


def test_one_target_is_singular(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, config, "compile", "-t", "dev")
    assert code == 0
    assert err.startswith("llmcc: compiled 1 target in ")
    (config / "environments/dev.yaml").write_text("vars:\n  temperature: 9\n")
    code, _, err = run(capsys, config, "compile", "-t", "dev")
    assert err.splitlines()[-1] == "llmcc: 1 of 1 target failed validation: dev"


def test_suggestions() -> None:
    assert suggestion("tenats", ["environments", "tenants"]) == " (did you mean 'tenants'?)"
    assert suggestion("zzz", ["b", "a"]) == " (expected one of: a, b)"
    assert suggestion("zzz", []) == ""
    assert fields_at(Manifest, ("environments", "dev")) == ["extends"]
    assert fields_at(Manifest, ("keys", "targets", "*")) == fields_at(Manifest, ("keys", "compiler"))
    assert fields_at(Manifest, ("project",)) == []
    assert fields_at(Manifest, ("nothing", "here")) == []


def test_an_unknown_field_in_a_list_item() -> None:
    from pydantic import BaseModel, ConfigDict
    from pydantic import ValidationError as PydanticValidationError

    class Item(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str

    class Doc(BaseModel):
        model_config = ConfigDict(extra="forbid")
        items: list[Item] | None = None

    with pytest.raises(PydanticValidationError) as info:
        Doc.model_validate({"items": [{"name": "a"}, {"nmae": "b"}]})
    assert first_error(info.value, Doc) == (("items", 1, "nmae"), "unknown field (did you mean 'name'?)")
