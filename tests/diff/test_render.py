"""Report details: the markdown size limit, colour on a terminal, line diffs of prompts."""

from __future__ import annotations

import json

import pytest

from compiler.cli import diff as diff_cmd
from compiler.diff.compute import Change, DiffResult, TargetDiff
from compiler.diff.render import MARKDOWN_LIMIT, line_diff, render_markdown, render_text
from tests.conftest import GitRepo, init_repo
from tests.diff._support import FILES, run_command, write


def _result(targets: int, changes: int, *, width: int = 40) -> DiffResult:
    diffs = []
    for t in range(targets):
        name = f"prod@t{t:03d}"
        cs = [
            Change(
                target=name, module="engine", path=("k", f"key_{i}"), kind="changed", old="a" * width, new=f"{t}-{i}"
            )
            for i in range(changes)
        ]
        diffs.append(TargetDiff(target=name, status="changed", changes=cs, compiled=True))
    return DiffResult(base="HEAD~1 (aaaaaaa)", head="HEAD (bbbbbbb)", targets=diffs, secrets_by_ciphertext=False)


def test_markdown_stays_under_the_limit_with_a_note() -> None:
    text = render_markdown(_result(60, 300))
    assert len(text) <= MARKDOWN_LIMIT
    assert "> **Truncated:**" in text
    assert text.count("<details>") == text.count("</details>")
    assert "| `prod@t059` | 300 | engine |" in text  # the summary table lists every target


def test_one_huge_section_is_cut_inside() -> None:
    text = render_markdown(_result(1, 3000, width=100), limit=20_000)
    assert len(text) <= 20_000
    assert text.count("<details>") == text.count("</details>") == 1


def test_small_diff_is_not_truncated() -> None:
    text = render_markdown(_result(2, 3))
    assert "Truncated" not in text
    assert text.count("<details>") == 2


def test_huge_prompt_change_is_a_bounded_line_diff() -> None:
    old = "".join(f"line {i}\n" for i in range(50_000))
    new = old.replace("line 25000\n", "line 25000 changed\n")
    change = Change(target="prod", module="prompt-registry", path=("system",), kind="changed", old=old, new=new)
    diff = line_diff(change)
    assert diff == [
        "@@ -24998,7 +24998,7 @@",
        " line 24997",
        " line 24998",
        " line 24999",
        "-line 25000",
        "+line 25000 changed",
        " line 25001",
        " line 25002",
        " line 25003",
    ]
    added = Change(target="prod", module="m", path=("p",), kind="added", new="a\nb\n")
    assert line_diff(added) == ["@@ -0,0 +1,2 @@", "+a", "+b"]
    assert line_diff(Change(target="prod", module="m", path=("p",), kind="changed", old="a", new="b")) is None
    assert line_diff(Change(target="prod", module="m", path=("p",), kind="changed", old="a\nb", new=3)) is None


def test_colour_only_when_asked() -> None:
    result = _result(1, 1)
    assert "\x1b[33m" in render_text(result, colour=True)
    assert "\x1b[" not in render_text(result)


def test_config_in_a_subdirectory_of_the_git_repository(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = init_repo(tmp_path / "mono")
    cfg = GitRepo(repo.path / "config")
    write(cfg, dict(FILES))
    repo.write("README.md", "monorepo\n")
    repo.commit("config", author="Ada Author <ada@example.com>")
    write(cfg, {"environments/dev.yaml": "vars:\n  model: small\n"})
    repo.commit("dev model", author="Bob Builder <bob@example.com>")
    assert run_command(diff_cmd, cfg.path, "HEAD~1", "HEAD", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(t["target"], len(t["changes"])) for t in doc["targets"] if t["changes"]] == [("dev", 1)]
    write(cfg, {"environments/prod.yaml": "modules:\n  engine:\n    region: eu\n"})
    assert run_command(diff_cmd, cfg.path, "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert {t["target"] for t in doc["targets"] if t["changes"]} == {"prod", "prod@acme", "prod@globex"}
