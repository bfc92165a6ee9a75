"""Jinja syntax where nothing renders it fails validate, never reaches a bundle as text (issue 10 §1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.secrets.sops import encrypt_sops
from compiler.validate.literal_jinja import jinja_in_comments
from tests.secrets._secrets_support import new_canary

LAYER = (
    "Jinja syntax in a layer file is never rendered (only templates/ are): move the expression into the module's "
    "template, or write literal text without {{ {% {#"
)
KEY = "Jinja syntax in a key is never rendered (only string values of templates are)"
SOPS = "environments/prod.secrets.sops.yaml"


def run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["-C", str(root), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_jinja_in_a_layer_file_fails_validate_and_compile(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config / "environments/dev.yaml").write_text(
        'vars:\n  greeting: "hi {{ name }}"\nmodules:\n  assistant:\n    system_prompt: "You help {{ brand }}."\n'
    )
    code, _, err = run(capsys, config, "validate")
    assert code == 1
    assert err.splitlines() == [
        f"environments/dev.yaml:2:3: {LAYER} (target dev, layer dev)",
        f"environments/dev.yaml:5:5: assistant $.system_prompt: {LAYER} (target dev, layer dev)",
        "llmcc: validate FAILED: 3 targets, 2 errors, 0 warnings",
    ]
    code, out, _ = run(capsys, config, "compile")
    assert code == 1
    assert out.splitlines() == ["dist/staging.bundle.json", "dist/prod.bundle.json"]


def test_jinja_in_a_key_of_a_layer(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = config / "environments/base.yaml"
    base.write_text(base.read_text().replace("vars:", 'vars:\n  "{{ env }}_model": x', 1))
    code, _, err = run(capsys, config, "validate")
    assert code == 1
    assert err.splitlines()[0] == f"environments/base.yaml:3:3: {KEY} (target dev, layer base)"


def test_jinja_in_a_key_of_a_template(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tpl = config / "templates/assistant.yaml"
    tpl.write_text(tpl.read_text() + '"{{ provider }}_region": eu\n')
    line = len(tpl.read_text().splitlines())
    code, _, err = run(capsys, config, "validate")
    assert code == 2
    assert err.splitlines()[0] == f"llmcc: templates/assistant.yaml:{line}:1: {KEY}"


def test_a_jinja_statement_in_a_template_comment(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tpl = config / "templates/assistant.yaml"
    text = tpl.read_text()
    tpl.write_text(text.replace("max_tokens:", "# {% if prod %}\nmax_tokens:") + "# {% endif %}\n")
    code, _, err = run(capsys, config, "validate")
    assert code == 2
    line = text.splitlines().index(next(ln for ln in text.splitlines() if ln.startswith("max_tokens:"))) + 1
    assert err.splitlines()[0] == (
        f"llmcc: templates/assistant.yaml:{line}:1: a Jinja statement in a YAML comment is never rendered: llmcc "
        "renders string values, not lines (use a single-expression value, e.g. '{{ x if cond else y }}')"
    )


def test_braces_in_a_comment_and_in_a_block_scalar_are_fine(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tpl = config / "templates/assistant.yaml"
    prompt = next(ln for ln in tpl.read_text().splitlines() if ln.startswith("system_prompt:"))
    block = "# the prompt names {{ brand }}\nsystem_prompt: |\n  # {% if true %}Hi{% endif %} #1\n  x"
    tpl.write_text(tpl.read_text().replace(prompt, block))
    assert run(capsys, config, "validate")[0] == 0
    assert run(capsys, config, "compile")[0] == 0
    bundle = json.loads((config / "dist/dev.bundle.json").read_text())
    assert bundle["modules"]["assistant"]["system_prompt"] == "# Hi #1\nx\n"


def test_a_secret_value_is_never_judged_but_a_secret_key_is(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "{{ " + new_canary() + " }}"  # braces are a legal password
    plain = json.dumps({"modules": {"assistant": {"api_key": secret}}}).encode()
    (config / SOPS).write_bytes(encrypt_sops(plain, path=SOPS, cwd=config))
    code, out, err = run(capsys, config, "validate")
    assert (code, out) == (0, "")
    assert run(capsys, config, "compile")[0] == 0
    plain = json.dumps({"modules": {"assistant": {"{{ key }}": new_canary()}}}).encode()
    (config / SOPS).write_bytes(encrypt_sops(plain, path=SOPS, cwd=config))
    code, _, err = run(capsys, config, "validate")
    assert code == 1
    assert f"{SOPS}:3:9: assistant $['{{{{ key }}}}']: {KEY} (target prod, layer prod (secrets))" in err.splitlines()


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("a: 1  # {% if x %}\n", [(1, 7)]),
        ("# {% if x %}\na: 1\n", [(1, 1)]),
        ("a: '# {% if x %}'\n", []),
        ('a: "x #{% y %}"  # plain\n', []),
        ("a: b#{% c %}\n", []),
        ("a: |\n  # {% if x %}\n  text\nb: 1 # {%\n", [(4, 6)]),
        ("a: [1, 2]  # {{ doc }} only\n", []),
        ("a:\n  - '{% raw %}'   # {% x %}\n", [(2, 19)]),
    ],
)
def test_jinja_in_comments(text: str, found: list[tuple[int, int]]) -> None:
    assert jinja_in_comments(text.encode()) == found


def test_jinja_in_extends(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tpl = config / "templates/assistant.yaml"
    tpl.write_text('extends: "{{ base }}.yaml"\n' + tpl.read_text())
    code, _, err = run(capsys, config, "validate")
    assert (code, err.splitlines()[0]) == (
        2,
        "llmcc: templates/assistant.yaml:1:1: extends is not rendered: name the template file",
    )


def test_jinja_inside_a_tagged_list_and_next_to_escapes_is_found(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file is walked only when its repr shows a delimiter (issue 14 §3): one inside a
    tagged list, or in a string with quotes, newlines and backslashes, still shows."""
    (config / "environments/dev.yaml").write_text(
        'modules:\n  assistant:\n    tags: !append ["x", "it\'s \\\\ {{ a }}"]\n    note: "a\\n{% b %}\\t\\""\n'
    )
    code, _, err = run(capsys, config, "validate")
    assert code == 1
    found = [line.split(" (target")[0] for line in err.splitlines() if "Jinja syntax" in line]
    assert [f.split(": ")[0] + ": " + f.split(": ")[1] for f in found] == [
        "environments/dev.yaml:3:25: assistant $.tags[1]",
        "environments/dev.yaml:4:5: assistant $.note",
    ]
