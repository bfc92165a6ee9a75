"""Every template has its schema and every schema its template, unless llmcc.yaml says otherwise (issue 10 §1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main

NOSCH = (
    "templates/nosch.yaml:1:1: no schemas/nosch.schema.json and no module extends it: this template is never "
    "rendered (add the schema, or list it under unpaired.templates in llmcc.yaml)"
)
NOTPL = (
    "schemas/audit.schema.json:1:1: no templates/audit.yaml: module audit has no template "
    "(add it, or list the module under unpaired.schemas in llmcc.yaml)"
)
AUDIT_SCHEMA = {"type": "object", "properties": {"level": {"type": "string"}}}


def run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["-C", str(root), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def add_unpaired(root: Path, text: str) -> None:
    path = root / "llmcc.yaml"
    path.write_text(path.read_text() + text)


def test_a_template_without_schema_fails_validate_and_compile(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "templates/nosch.yaml").write_text("level: debug\n")
    code, _, err = run(capsys, config, "validate")
    assert code == 1
    assert err.splitlines() == [NOSCH, "llmcc: validate FAILED: 3 targets, 1 error, 0 warnings"]
    code, out, err = run(capsys, config, "compile")
    assert code == 1
    assert out == ""
    # Reported once, not once per target: it is about the repository.
    assert err.splitlines() == [NOSCH, "llmcc: 3 of 3 targets failed validation: dev, staging, prod"]
    assert list((config / "dist").iterdir()) == []


def test_every_unpaired_file_in_one_run(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "templates/nosch.yaml").write_text("level: debug\n")
    (config / "templates/assistant.yml").write_text("model: x\n")
    (config / "schemas/audit.schema.json").write_text(json.dumps(AUDIT_SCHEMA))
    code, out, _ = run(capsys, config, "validate", "--format", "json")
    assert code == 1
    found = [(d["file"], d["line"], d["target"]) for d in json.loads(out)["diagnostics"]]
    assert found == [
        ("schemas/audit.schema.json", 1, None),
        ("templates/assistant.yml", 1, None),
        ("templates/nosch.yaml", 1, None),
    ]


def test_a_schema_without_template_is_an_error_unless_listed(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "schemas/audit.schema.json").write_text(json.dumps(AUDIT_SCHEMA))
    code, _, err = run(capsys, config, "validate")
    assert (code, err.splitlines()[0]) == (1, NOTPL)
    add_unpaired(config, "unpaired:\n  schemas: [audit]   # values from the layers alone\n")
    assert run(capsys, config, "validate")[0] == 0
    assert run(capsys, config, "compile")[0] == 0
    bundle = json.loads((config / "dist/prod.bundle.json").read_text())
    assert bundle["modules"]["audit"] == {}


def test_a_listed_template_is_kept_unused(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "templates/nosch.yaml").write_text("level: debug\n")
    add_unpaired(config, "unpaired:\n  templates: [nosch.yaml]\n")
    assert run(capsys, config, "validate")[0] == 0


def test_an_extends_base_needs_no_schema(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "templates/_common.yaml").write_text("provider: openai\n")
    tpl = config / "templates/assistant.yaml"
    tpl.write_text("extends: _common.yaml\n" + tpl.read_text().replace("provider:", "# provider:"))
    assert run(capsys, config, "validate")[0] == 0


def test_an_opt_out_that_is_not_needed_is_an_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "templates/_common.yaml").write_text("provider: openai\n")
    tpl = config / "templates/assistant.yaml"
    tpl.write_text("extends: _common.yaml\n" + tpl.read_text().replace("provider:", "# provider:"))
    n = len((config / "llmcc.yaml").read_text().splitlines()) + 2  # the line of `schemas:`
    add_unpaired(config, "unpaired:\n  schemas: [assistant, nothing]\n  templates: [_common.yaml, gone.yaml]\n")
    code, _, err = run(capsys, config, "validate")
    assert code == 1
    lines = err.splitlines()
    assert lines[:4] == [
        f"llmcc.yaml:{n}:13: unpaired.schemas: templates/assistant.yaml exists: remove 'assistant' from the list",
        f"llmcc.yaml:{n}:24: unpaired.schemas: no schemas/nothing.schema.json",
        f"llmcc.yaml:{n + 1}:15: unpaired.templates: templates/_common.yaml is rendered for module assistant: "
        "remove it from the list",
        f"llmcc.yaml:{n + 1}:29: unpaired.templates: no templates/gone.yaml",
    ]


def test_a_broken_template_is_reported_by_its_targets(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "templates/assistant.yaml").write_text("model: [\n")
    code, _, err = run(capsys, config, "validate")
    assert code == 2
    assert err.splitlines()[0].startswith("llmcc: templates/assistant.yaml:2:1: invalid YAML")


def test_a_layer_file_no_target_reads(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Misspelt environment and tenant files were ignored: their values silently never applied.
    (config / "environments/stagin.yaml").write_text("vars:\n  model: gpt-4o\n")
    (config / "environments/dev.yml").write_text("vars: {}\n")
    (config / "environments/tenants").mkdir()
    (config / "environments/tenants/acme.yaml").write_text("vars: {}\n")
    (config / "environments/prod/tenants").mkdir(parents=True)
    (config / "environments/prod/tenants/acme.yaml").write_text("vars: {}\n")
    code, _, err = run(capsys, config, "validate")
    assert code == 1
    tail = " (or list it under unpaired.layers)"
    assert err.splitlines() == [
        f"environments/dev.yml:1:1: no target reads this layer file: layer files end in .yaml{tail}",
        f"environments/prod/tenants/acme.yaml:1:1: no target reads this layer file: tenant 'acme' is not in "
        f"llmcc.yaml{tail}",
        "environments/stagin.yaml:1:1: no target reads this layer file: environment 'stagin' is not in llmcc.yaml "
        f"(did you mean 'staging'?){tail}",
        "environments/tenants/acme.yaml:1:1: no target reads this layer file: tenant 'acme' is not in "
        f"llmcc.yaml{tail}",
        "llmcc: validate FAILED: 3 targets, 4 errors, 0 warnings",
    ]
    add_unpaired(config, "tenants: {acme: {environments: [staging]}}\n")
    edit = config / "llmcc.yaml"
    edit.write_text(edit.read_text().replace("tenants: {}", "", 1))
    code, _, err = run(capsys, config, "validate")
    assert (
        "environments/prod/tenants/acme.yaml:1:1: no target reads this layer file: tenant 'acme' is not compiled "
        f"for environment 'prod' (tenants.acme.environments in llmcc.yaml){tail}"
    ) in err.splitlines()


def test_listed_unread_layers(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "environments/qa.yaml").write_text("vars: {}\n")
    n = len((config / "llmcc.yaml").read_text().splitlines()) + 2  # the line of `layers:`
    add_unpaired(config, "unpaired:\n  layers: [environments/qa.yaml, environments/dev.yaml, environments/x.yaml]\n")
    code, _, err = run(capsys, config, "validate")
    assert code == 1
    assert err.splitlines()[:2] == [
        f"llmcc.yaml:{n}:34: unpaired.layers: environments/dev.yaml is read by a target: remove it from the list",
        f"llmcc.yaml:{n}:57: unpaired.layers: no environments/x.yaml: remove it from the list",
    ]


def test_the_pre_commit_hook_reports_an_unread_layer(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The hook validated no target for a layer file no target reads, so the misspelt file passed.
    (config / "environments/stagin.yaml").write_text("vars: {}\n")
    code, _, err = run(capsys, config, "hook", "validate", str(config / "environments/stagin.yaml"))
    assert code == 1
    assert err.splitlines()[0].startswith("environments/stagin.yaml:1:1: no target reads this layer file")


def test_a_rotation_sidecar_of_a_layer_counts_as_read(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The files read are found by layer name once (issue 14 §4: not ~10 LayerRefs per target of a
    1,003-target repository); the secrets file and its rotation sidecar of each layer still count."""
    (config / "environments/dev.secrets.rotation.yaml").write_text("{}\n")
    (config / "environments/qa.secrets.rotation.yaml").write_text("{}\n")  # qa: no such environment
    code, _, err = run(capsys, config, "validate")
    assert code == 1
    assert [line.split(":")[0] for line in err.splitlines()[:-1]] == ["environments/qa.secrets.rotation.yaml"]
    n = len((config / "llmcc.yaml").read_text().splitlines()) + 2
    add_unpaired(config, "unpaired:\n  layers: [environments/dev.secrets.rotation.yaml]\n")
    code, _, err = run(capsys, config, "validate")
    assert (
        f"llmcc.yaml:{n}:12: unpaired.layers: environments/dev.secrets.rotation.yaml is read by a target: "
        "remove it from the list"
    ) in err.splitlines()
