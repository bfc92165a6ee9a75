"""What makes compile fail makes validate fail, in the same run (issue 10 §1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.cli import main


def run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["-C", str(root), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize(
    "expr",
    ["'\\\\ud800'", "'ok \\\\udfff'", "{'\\\\ud83d': 1}", "['a', '\\\\udc00']"],
)
def test_a_lone_surrogate_from_a_template_is_an_error_at_its_line(
    config: Path, capsys: pytest.CaptureFixture[str], expr: str
) -> None:
    # Was: validate reported a policy conversion error for prod only, and compile ended in exit 70
    # (UnicodeEncodeError while writing the bundle).
    tpl = config / "templates/assistant.yaml"
    lines = tpl.read_text().splitlines()
    n = next(i for i, ln in enumerate(lines) if ln.startswith("system_prompt:"))
    lines[n] = f'system_prompt: "{{{{ {expr} }}}}"'
    tpl.write_text("\n".join(lines) + "\n")
    where = f"templates/assistant.yaml:{n + 1}:1: ValueError: the result holds a lone surrogate"
    for command in ("validate", "compile"):
        code, _, err = run(capsys, config, command)
        assert code == 2, command
        assert err.startswith(f"llmcc: {where}"), err


def test_text_around_a_surrogate_pair_escape_is_fine(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tpl = config / "templates/assistant.yaml"
    text = tpl.read_text()
    prompt = next(ln for ln in text.splitlines() if ln.startswith("system_prompt:"))
    tpl.write_text(text.replace(prompt, "system_prompt: \"Hi {{ '\\\\U0001F600' }}\""))
    assert run(capsys, config, "compile")[0] == 0


def test_a_policy_matching_an_unknown_environment(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Was: the rule applied to no target, so a prod temperature of 1.5 passed silently.
    policies = config / "policies/assistant.yaml"
    policies.write_text(policies.read_text().replace("match: {environments: [prod]}", "match: {environments: [prdo]}"))
    (config / "environments/prod.yaml").write_text("vars:\n  temperature: 1.5\n")
    code, _, err = run(capsys, config, "validate")
    assert code == 2
    lines = policies.read_text().splitlines()
    rule = lines.index("- name: prod-temperature-bounded") + 1
    assert err.splitlines()[0] == (
        f"llmcc: policies/assistant.yaml:{rule}:3: policy prod-temperature-bounded: match.environments: 'prdo' is "
        "not one of llmcc.yaml's environments (did you mean 'prod'?)"
    )


def test_a_policy_matching_an_unknown_module(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = config / "policies/assistant.yaml"
    policies.write_text(
        policies.read_text().replace("match: {environments: [prod]}", "match: {modules: [asistant], tenants: []}")
    )
    code, _, err = run(capsys, config, "validate")
    assert code == 2
    assert "match.modules: 'asistant' is not one of llmcc.yaml's modules (did you mean 'assistant'?)" in err


def test_a_waiver_for_no_target(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = config / "policies/assistant.yaml"
    policies.write_text(
        "rules:\n"
        + "".join("  " + ln + "\n" if ln else "\n" for ln in policies.read_text().splitlines())
        + "waivers:\n  - {policy: prod-temperature-bounded, targets: [prod@acme], reason: r, owner: o, "
        "expires: 2099-01-01}\n"
    )
    code, _, err = run(capsys, config, "validate")
    assert code == 2
    assert err.splitlines()[0].endswith(
        "waiver of policy prod-temperature-bounded: targets: 'prod@acme' matches no target (did you mean 'prod'?)"
    )
