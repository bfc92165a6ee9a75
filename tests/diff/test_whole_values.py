"""Issue 13 §3: a new target or module is rendered in full (collapsed in markdown), not as a 200-char JSON blob."""

from __future__ import annotations

import json

import pytest

from compiler.cli import diff as diff_cmd
from compiler.diff.compute import Change, DiffResult, TargetDiff
from compiler.diff.masking import SecretDigest
from compiler.diff.render import render_markdown, render_text, whole_values
from tests.conftest import GitRepo
from tests.diff._support import run_command, seed, write

_LONG = {f"key_{i:02d}": {"value": "x" * 20, "n": i} for i in range(20)}


def _added_target(repo: GitRepo) -> None:
    seed(repo)
    manifest = (repo.path / "llmcc.yaml").read_text()
    write(
        repo,
        {"llmcc.yaml": manifest.replace("  dev: {}\n", "  dev: {}\n  qa: {}\n"), "environments/qa.yaml": "vars: {}\n"},
    )
    repo.commit("a qa environment", author="Bob Builder <bob@example.com>")


def test_a_new_target_is_in_full_in_markdown_inside_details(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    _added_target(git_repo)
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD", "--format", "markdown") == 0
    out = capsys.readouterr().out
    assert "| added | `$` |  | _in full below_ |" in out
    assert "<details><summary><code>engine $</code> added (" in out
    block = out.split("```json\n", 1)[1].split("\n```", 1)[0]
    module = json.loads(block)
    assert module["routes"] == [
        {"name": "chat", "timeout": 30},
        {"name": "embed", "timeout": 10},
        {"name": "batch", "timeout": 300},
    ]
    assert module["prompt"].endswith("Line 20 of the system prompt.\n")  # the whole prompt, not cut at 200 characters
    assert "…" not in out
    assert out.count("<details>") == out.count("</details>")


def test_a_new_target_is_in_full_in_text(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    _added_target(git_repo)
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD") == 0
    out = capsys.readouterr().out
    assert "  + $:\n    + {\n" in out
    assert '    +   "fallbacks": [\n    +     "small",' in out
    assert "chars)" not in out


def test_a_new_key_holding_a_map_is_in_full_and_secrets_stay_masked() -> None:
    value = {**_LONG, "api_key": SecretDigest(b"d" * 32)}
    added = Change(target="prod", module="engine", path=("extra",), kind="added", new=value)
    removed = Change(target="prod", module="engine", path=("old",), kind="removed", old=_LONG)
    result = DiffResult(
        base="a",
        head="b",
        targets=[TargetDiff(target="prod", status="changed", changes=[added, removed], compiled=True)],
        secrets_by_ciphertext=False,
    )
    text = render_text(result)
    assert '    +   "key_19": {' in text
    assert '    -   "key_19": {' in text
    assert '"api_key": "<secret>"' in text
    md = render_markdown(result)
    assert "| removed | `$.old` | _in full below_ |  |" in md
    assert "<code>engine $.extra</code> added (" in md
    assert '"api_key": "<secret>"' in md


@pytest.mark.parametrize(
    "change",
    [
        Change(target="p", module="m", path=("a",), kind="added", new=1),
        Change(target="p", module="m", path=("a",), kind="added", new={}),
        Change(target="p", module="m", path=("a",), kind="changed", old=1, new=2),
        Change(target="p", module="m", path=("a",), kind="added", secret=True),
        Change(target="p", module="m", path=("a", 1), kind="moved", old=0, new=1, item={"a": 1}),
    ],
)
def test_scalars_moves_and_secrets_stay_one_line(change: Change) -> None:
    assert whole_values(change) == {}


def test_a_scalar_that_becomes_a_map_shows_the_map_in_full() -> None:
    """The sibling of a new module: a value whose type changes to a map was cut at 200 characters too."""
    c = Change(target="prod", module="engine", path=("limits",), kind="changed", old="none", new=_LONG)
    result = DiffResult(
        base="a",
        head="b",
        targets=[TargetDiff(target="prod", status="changed", changes=[c], compiled=True)],
        secrets_by_ciphertext=False,
    )
    text = render_text(result)
    assert '  ~ $.limits: "none" ->\n    + {\n' in text
    assert '    +   "key_19": {' in text
    md = render_markdown(result)
    assert '| changed | `$.limits` | `"none"` | _in full below_ |' in md
    assert "<code>engine $.limits</code> new value (" in md
    assert "chars)" not in md


def test_backticks_in_a_value_get_a_longer_fence() -> None:
    value = {"prompt": "use ```code``` here"}
    c = Change(target="p", module="m", path=(), kind="added", new=value)
    result = DiffResult(
        base="a",
        head="b",
        targets=[TargetDiff(target="p", status="added", changes=[c], compiled=True)],
        secrets_by_ciphertext=False,
    )
    assert "````json\n" in render_markdown(result)
