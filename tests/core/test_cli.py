"""The CLI through its real entry point ``main([...])``: exit codes and the exact lines printed."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from unittest import mock

import pytest

from compiler.cli import main
from tests.core._repos import mini_repo

BROKEN_PROD = "modules:\n  engine:\n    model:\n      max_tokens: 0\n"
BROKEN_LINE = "environments/prod.yaml:4:7: engine $.model.max_tokens: 0 is less than the minimum of 1"


def run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["-C", str(root), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err or any("--debug".startswith(a) and len(a) > 4 for a in argv)
    return code, out, err


# --- compile --------------------------------------------------------------------------------


def test_compile_writes_a_bundle_for_every_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    code, out, err = run(capsys, root, "compile")
    assert code == 0
    targets = ["dev", "staging", "prod", "staging@acme", "prod@acme"]
    assert out.splitlines() == [f"dist/{t}.bundle.json" for t in targets]
    assert sorted(p.name for p in (root / "dist").iterdir()) == sorted(f"{t}.bundle.json" for t in targets)
    assert err.startswith("llmcc: compiled 5 targets in ")
    bundle = json.loads((root / "dist" / "prod@acme.bundle.json").read_text())
    assert bundle["apiVersion"] == "llmcc/v1"
    assert bundle["kind"] == "Bundle"
    assert bundle["metadata"]["target"] == "prod@acme"
    assert bundle["modules"]["engine"]["model"] == {"name": "big", "temperature": 0.5, "max_tokens": 4000}


def test_compile_one_target_to_another_directory_quietly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path / "repo")
    code, out, err = run(capsys, root, "compile", "-q", "--target", "prod", "--out", str(tmp_path / "out"))
    assert (code, out, err) == (0, f"{tmp_path / 'out'}/prod.bundle.json\n", "")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["prod.bundle.json"]


def test_a_failed_target_leaves_no_stale_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    assert run(capsys, root, "compile")[0] == 0
    (root / "environments/prod.yaml").write_text(BROKEN_PROD)
    code, out, err = run(capsys, root, "compile")
    assert code == 1
    assert err.splitlines() == [
        f"{BROKEN_LINE} (target prod, layer prod)",
        f"{BROKEN_LINE} (target prod@acme, layer prod)",
        "llmcc: 2 of 5 targets failed validation: prod, prod@acme",
    ]
    assert not (root / "dist/prod.bundle.json").exists()
    assert not (root / "dist/prod@acme.bundle.json").exists()
    assert sorted(p.name for p in (root / "dist").iterdir()) == [
        "dev.bundle.json",
        "staging.bundle.json",
        "staging@acme.bundle.json",
    ]
    assert out.splitlines() == ["dist/dev.bundle.json", "dist/staging.bundle.json", "dist/staging@acme.bundle.json"]


# --- validate -------------------------------------------------------------------------------


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, mini_repo(tmp_path), "validate") == (
        0,
        "",
        "llmcc: validate ok: 5 targets, 0 errors, 0 warnings\n",
    )


def test_validate_on_a_broken_layer_names_the_culprit_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path, {"environments/prod.yaml": BROKEN_PROD})
    code, out, err = run(capsys, root, "validate")
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"{BROKEN_LINE} (target prod, layer prod)",
        f"{BROKEN_LINE} (target prod@acme, layer prod)",
        "llmcc: validate FAILED: 5 targets, 2 errors, 0 warnings",
    ]


def test_validate_through_a_variable_shows_the_variable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = mini_repo(tmp_path, {"environments/dev.yaml": "vars:\n  model: tiny\n  temperature: 3\n"})
    code, _, err = run(capsys, root, "validate", "-t", "dev", "-q")
    assert code == 1
    assert err.splitlines() == [
        "environments/dev.yaml:3:3: engine $.model.temperature: 3 is greater than the maximum of 1.0 "
        "(target dev, layer dev)",
        "    templates/engine.yaml:3:3: via template '{{ temperature }}'",
    ]


@pytest.mark.parametrize("command", ["validate", "compile"])
def test_bad_yaml_exits_2_with_file_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    root = mini_repo(tmp_path, {"environments/staging.yaml": "vars:\n  region: [eu\n"})
    code, out, err = run(capsys, root, command)
    assert code == 2
    assert err.splitlines()[0] == "llmcc: environments/staging.yaml:3:1: invalid YAML: did not find expected ',' or ']'"
    assert "Traceback" not in out + err


def test_bad_manifest_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path, {"llmcc.yaml": "project: p\nenvironments:\n  dev: {extends: nope}\n"})
    assert run(capsys, root, "validate") == (
        2,
        "",
        "llmcc: llmcc.yaml:3:9: environments.dev.extends: unknown environment 'nope'\n",
    )


def test_no_manifest_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, tmp_path, "validate")
    assert (code, out) == (2, "")
    assert err == (
        f"llmcc: {tmp_path}: no llmcc.yaml here or in a directory above "
        "(use -C DIR, or `llmcc init DIR` for a new repository)\n"
    )


def alias_bomb() -> str:
    lines = ["vars:", "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 12):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (alias_bomb(), "nodes with aliases expanded"),
        ("".join(f"{' ' * i}k{i}:\n" for i in range(5000)), "nesting deeper than 64 levels"),
        ("vars: " + "[" * 5000 + "]" * 5000 + "\n", "nesting deeper than 64 levels"),
    ],
)
@pytest.mark.parametrize("file", ["environments/base.yaml", "llmcc.yaml", "templates/engine.yaml"])
def test_alias_bombs_and_deep_documents_fail_fast_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str, file: str
) -> None:
    root = mini_repo(tmp_path, {file: text})
    code, _out, err = run(capsys, root, "validate")
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith(f"llmcc: {file}:")
    assert first.endswith(message)


@pytest.mark.parametrize("parent", ["../outside.yaml", "/etc/hosts.yaml", "a/../../outside.yaml"])
def test_dotdot_and_absolute_paths_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], parent: str) -> None:
    (tmp_path / "outside.yaml").write_text("model: {name: stolen}\n")
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": f"extends: {parent}\nmodel: {{}}\n"})
    code, out, err = run(capsys, root, "validate", "-t", "dev")
    assert code == 2
    assert err.splitlines()[0] == (
        f"llmcc: 'templates/{parent}': path escapes the repository or is not a plain relative path"
    )
    assert "stolen" not in out + err


def test_a_symlink_out_of_the_repository_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("vars: {model: stolen}\n")
    root = mini_repo(tmp_path / "repo", {"environments/dev.yaml": None})
    os.symlink(outside, root / "environments/dev.yaml")
    code, out, err = run(capsys, root, "validate", "-t", "dev")
    assert code == 2
    assert err.splitlines()[0] == (
        f"llmcc: environments/dev.yaml: points outside the repository (symlink to {outside})"
    )
    assert "stolen" not in out + err


def test_a_symlinked_directory_out_of_the_repository_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "acme.yaml").write_text("vars: {model: stolen}\n")
    root = mini_repo(tmp_path / "repo")
    os.symlink(tmp_path / "elsewhere", root / "environments/tenants")
    code, _, err = run(capsys, root, "validate", "-t", "prod@acme")
    assert code == 2
    assert "environments/tenants/acme.yaml: points outside the repository" in err.splitlines()[0]


def test_a_symlink_inside_the_repository_is_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    (root / "environments/dev.yaml").unlink()
    os.symlink("staging.yaml", root / "environments/dev.yaml")
    assert run(capsys, root, "validate", "-t", "dev")[0] == 0


def test_unknown_target_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    for command in ("validate", "compile"):
        assert run(capsys, root, command, "--target", "qa") == (
            2,
            "",
            "llmcc: unknown target 'qa'; llmcc.yaml defines: dev, staging, prod, staging@acme, prod@acme\n",
        )
    assert run(capsys, root, "validate", "--target", "Prod")[2] == (
        "llmcc: 'Prod' is not a target (ENV or ENV@TENANT, lowercase names)\n"
    )


# --- output formats -------------------------------------------------------------------------


def one_json(out: str) -> dict:
    doc = json.loads(out)  # fails on a second document or any other text
    assert isinstance(doc, dict)
    return doc


def test_validate_json_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, mini_repo(tmp_path), "validate", "--format", "json")
    assert (code, err) == (0, "")
    assert one_json(out) == {
        "ok": True,
        "exit_code": 0,
        "targets": ["dev", "staging", "prod", "staging@acme", "prod@acme"],
        "diagnostics": [],
    }


def test_validate_json_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path, {"environments/prod.yaml": BROKEN_PROD})
    code, out, err = run(capsys, root, "validate", "--format", "json", "-t", "prod")
    assert (code, err) == (1, "")
    doc = one_json(out)
    assert (doc["ok"], doc["exit_code"]) == (False, 1)
    assert doc["diagnostics"] == [
        {
            "severity": "error",
            "message": "0 is less than the minimum of 1",
            "target": "prod",
            "module": "engine",
            "path": "$.model.max_tokens",
            "rule": None,
            "file": "environments/prod.yaml",
            "line": 4,
            "column": 7,
            "layer": "prod",
            "notes": [],
        }
    ]


@pytest.mark.parametrize(
    ("files", "argv", "message"),
    [
        (
            {"environments/prod.yaml": "modules: {\n"},
            [],
            "environments/prod.yaml:2:1: invalid YAML: did not find expected node content",
        ),
        ({}, ["-t", "nope"], "unknown target 'nope'; llmcc.yaml defines: dev, staging, prod, staging@acme, prod@acme"),
        ({"llmcc.yaml": "project: [\n"}, [], "llmcc.yaml:2:1: invalid YAML: did not find expected node content"),
        (
            {"environments/staging.yaml": None},
            [],
            "environments/staging.yaml: missing layer file for environment 'staging' (see llmcc.yaml)",
        ),
    ],
)
def test_validate_json_exit_2_is_still_one_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict, argv: list[str], message: str
) -> None:
    root = mini_repo(tmp_path, files)
    code, out, err = run(capsys, root, "validate", "--format", "json", *argv)
    assert (code, err) == (2, "")
    doc = one_json(out)
    assert (doc["ok"], doc["exit_code"]) == (False, 2)
    # the location prefix is split into file/line/column
    located = [
        f"{d['file']}:{d['line']}:{d['column']}: {d['message']}" if d["file"] else d["message"]
        for d in doc["diagnostics"]
    ]
    assert located == [message]


def test_validate_github_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path, {"environments/prod.yaml": BROKEN_PROD})
    code, out, err = run(capsys, root, "validate", "--format", "github", "-t", "prod")
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        "::error file=environments/prod.yaml,line=4,col=7,title=llmcc prod::"
        "engine $.model.max_tokens: 0 is less than the minimum of 1 (target prod, layer prod)"
    ]


# --- explain --------------------------------------------------------------------------------


def test_explain_prints_the_value_and_every_layer_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    code, out, err = run(capsys, root, "explain", "prod", "engine.model.max_tokens")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "prod engine $.model.max_tokens = 4000",
        "  environments/prod.yaml:4:7  set  (layer prod)",
        "  templates/engine.yaml:4:3   template '{{ max_tokens | default(1000) }}'  (overridden)",
    ]


def test_explain_a_template_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    code, out, _ = run(capsys, root, "explain", "prod@acme", "engine.region")
    assert code == 0
    assert out.splitlines() == [
        'prod@acme engine $.region = "eu-west-1"',
        "  templates/engine.yaml:7:1      template '{{ region }}'",
        "  environments/staging.yaml:2:3  variable region  (layer staging)",
        "  environments/base.yaml:4:3     variable region  (layer base)  (overridden)",
    ]


def test_explain_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    code, out, _ = run(capsys, root, "explain", "prod", "engine.model.max_tokens", "--format", "json")
    assert code == 0
    doc = one_json(out)
    assert doc["value"] == 4000
    assert [(s["file"], s["line"], s["layer"], s["effective"]) for s in doc["sources"]] == [
        ("environments/prod.yaml", 4, "prod", True),
        ("templates/engine.yaml", 4, "template", False),
    ]


def test_explain_hides_secret_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(
        tmp_path, {"environments/dev.yaml": "vars: {model: m}\nmodules:\n  engine:\n    api_key: hunter2\n"}
    )
    code, out, _ = run(capsys, root, "explain", "dev", "engine.api_key")
    assert code == 0
    assert out.splitlines()[0] == "dev engine $.api_key = <secret>"
    assert "hunter2" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prod", "engine.nope"], "llmcc: prod: engine$.nope: no value in this target"),
        (["prod@acme", "engine.model.nope.x"], "llmcc: prod@acme: engine$.model.nope: no value in this target"),
        (["prod", "nope.x"], "llmcc: unknown module 'nope'; modules: engine"),
        (
            ["qa", "engine.region"],
            "llmcc: unknown target 'qa'; llmcc.yaml defines: dev, staging, prod, staging@acme, prod@acme",
        ),
    ],
)
def test_explain_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert run(capsys, mini_repo(tmp_path), "explain", *argv) == (2, "", message + "\n")


# --- the error boundary -----------------------------------------------------------------------


def test_an_internal_error_is_one_line_and_exit_70(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path)
    with mock.patch("compiler.compile.pipeline.compile_target", side_effect=RuntimeError("boom")):
        code, out, err = run(capsys, root, "validate", "-t", "dev")
    assert (code, out) == (70, "")
    assert err == "llmcc: internal error: RuntimeError: boom (run with --debug for the traceback)\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "compile", "-t", "dev"],
        ["--deb", "compile", "-t", "dev"],  # argparse's abbreviation: main reads --debug from the parse
        ["compile", "-t", "dev", "--debu"],
    ],
)
def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    root = mini_repo(tmp_path)
    with mock.patch("compiler.compile.pipeline.compile_target", side_effect=RuntimeError("boom")):
        code, _, err = run(capsys, root, *argv)
    assert code == 70
    assert err.startswith("Traceback (most recent call last):\n")
    assert "RuntimeError: boom" in err
    assert err.splitlines()[-1] == "llmcc: internal error: RuntimeError: boom (run with --debug for the traceback)"


def test_interrupt_exits_130(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with mock.patch("compiler.compile.pipeline.compile_target", side_effect=KeyboardInterrupt):
        assert run(capsys, mini_repo(tmp_path), "validate", "-t", "dev") == (130, "", "llmcc: interrupted\n")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: llmcc")


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(tmp_path), "frobnicate"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(
        "llmcc: unknown command 'frobnicate' (expected one of: agent, ci, compile, diff, exec, explain, "
    )
    assert err.endswith(" validate, verify) (see llmcc --help)\n")


# --- the example repository ---------------------------------------------------------------------


def test_the_example_validates_without_an_identity(example_repo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, example_repo.path, "validate")
    assert (code, out) == (0, "")
    assert err == "llmcc: validate ok: 6 targets, 0 errors, 0 warnings\n"


def test_explain_on_the_example_names_the_layer_and_line(example_repo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, example_repo.path, "explain", "prod", "inference-engine.model.temperature")
    assert code == 0
    assert out.splitlines()[0] == "prod inference-engine $.model.temperature = 0.3"
    assert re.search(r"^  templates/inference-engine\.yaml:\d+:\d+ +template '\{\{ temperature \}\}'$", out, re.M)
    found = re.search(r"^  environments/prod\.yaml:(\d+):\d+ +variable temperature  \(layer prod\)$", out, re.M)
    assert found
    line = (example_repo.path / "environments/prod.yaml").read_text().splitlines()[int(found.group(1)) - 1]
    assert line.strip() == "temperature: 0.3"


@pytest.mark.parametrize("jobs", ["0", "-3", "two"])
def test_jobs_must_be_a_positive_number(tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str) -> None:
    root = mini_repo(tmp_path, {})
    code, _, err = run(capsys, root, "compile", "-j", jobs)
    assert code == 2
    expected = f"llmcc: argument -j/--jobs: {jobs!r} is not a positive number of workers (see llmcc compile --help)"
    assert err == expected + "\n"


class _Terminal:
    """A stderr that says it is a terminal and records what was written."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_on_a_terminal_only_without_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> None:
    root = mini_repo(tmp_path)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["-C", str(root), "compile", "-j", "1", *(["-q"] if quiet else [])]) == 0
    steps = re.findall(r"\r\x1b\[K\[(\d+)/(\d+)\] (\S+)", terminal.text)
    if quiet:
        assert steps == []
        assert terminal.text == ""
    else:
        assert [(int(n), int(total)) for n, total, _ in steps] == [(n, 5) for n in range(1, 6)]
        assert "\r\x1b[Kllmcc: compiled 5 targets" in terminal.text  # the progress line is cleared first


def test_explain_masks_each_secret_inside_the_value(example_repo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, example_repo.path, "explain", "prod", "data-pipeline.db", "--format", "json")
    assert code == 0
    doc = one_json(out)
    assert doc["secret"] is False
    assert doc["value"]["password"] == "<secret>"
    assert doc["value"]["username"] == "pipeline_prod"
    assert "ENC[" not in out
