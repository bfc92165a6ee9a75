"""Issue 13 §3: ``--format github`` annotates a policy finding on the layer line of the value it judged."""

from __future__ import annotations

import pytest

from compiler.cli import main
from tests.conftest import GitRepo

RULE = (
    'rule: config["inference-engine"].model.temperature >= 0.0 && config["inference-engine"].model.temperature <= 1.0'
)


def _annotations(capsys: pytest.CaptureFixture[str], root: str) -> list[str]:
    assert main(["-C", root, "validate", "-t", "prod", "--format", "github"]) == 1
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("::")]


def test_a_variable_the_template_reads_is_annotated_where_it_is_set(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    prod = example_repo.path / "environments/prod.yaml"
    prod.write_text(prod.read_text().replace("temperature: 0.3", "temperature: 1.4"))
    (found,) = [a for a in _annotations(capsys, str(example_repo.path)) if "prod-temperature-bounded" in a]
    assert found == (
        "::error file=environments/prod.yaml,line=7,col=3,title=llmcc prod policy prod-temperature-bounded::"
        'policy prod-temperature-bounded failed: config["inference-engine"].model.temperature is 1.4, expected <= 1.0'
        " (target prod, layer prod)"
        "%0Apolicies/production.yaml:4:3: policy prod-temperature-bounded"
        f"%0A{RULE}"
        "%0Apolicy: Production models run with a temperature between 0.0 and 1.0"
    )


def test_a_module_value_set_in_a_layer_is_annotated_on_its_line(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    prod = example_repo.path / "environments/prod.yaml"
    text = prod.read_text().replace(
        "  inference-engine:\n    routing:", "  inference-engine:\n    model:\n      temperature: 1.5\n    routing:"
    )
    prod.write_text(text)
    line = text.splitlines().index("      temperature: 1.5") + 1
    (found,) = [a for a in _annotations(capsys, str(example_repo.path)) if "prod-temperature-bounded" in a]
    assert found.startswith(f"::error file=environments/prod.yaml,line={line},col=7,")
    assert "is 1.5, expected <= 1.0 (target prod, layer prod)%0Apolicies/production.yaml:4:3: " in found


def test_text_output_keeps_the_rule_first_and_the_value_line_as_a_note(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    prod = example_repo.path / "environments/prod.yaml"
    prod.write_text(prod.read_text().replace("temperature: 0.3", "temperature: 1.4"))
    assert main(["-C", str(example_repo.path), "validate", "-t", "prod"]) == 1
    err = capsys.readouterr().err.splitlines()
    at = err.index(next(e for e in err if "prod-temperature-bounded failed" in e))
    assert err[at].startswith("policies/production.yaml:4:3: policy prod-temperature-bounded failed: ")
    assert err[at + 1] == "    environments/prod.yaml:7:3: the value comes from variable 'temperature' set here"


def test_a_file_name_cannot_inject_a_workflow_command(capsys: pytest.CaptureFixture[str]) -> None:
    """A pull request names its own files (policies/*.yaml): ``,``, ``::`` and a newline in one stay in ``file=``."""
    from compiler.cli._output import report_github
    from compiler.diagnostics import Diagnostic, Origin

    path = "policies/a,line=1::x\n::warning file=llmcc.yaml::all good.yaml"
    report_github([Diagnostic(message="bad", origin=Origin(path=path, line=2, column=3, layer="policy"))], {})
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(
        "::error file=policies/a%2Cline=1%3A%3Ax%0A%3A%3Awarning file=llmcc.yaml%3A%3Aall good.yaml,"
        "line=2,col=3,title=llmcc::"
    )
