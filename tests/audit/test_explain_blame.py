"""`llmcc explain` names the commit, author, date and message behind every line that set a value."""

from __future__ import annotations

import json
import uuid

import pytest

from compiler.audit.blame import NOT_COMMITTED, blame_line, parse_porcelain
from compiler.cli import explain as explain_cmd
from tests.audit._history import build_history
from tests.conftest import DEMO_IDENTITY, GitRepo
from tests.diff._support import encrypt, run_command, seed, write


def test_template_value_names_template_line_and_variable_line_commits(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    shas = build_history(git_repo)
    write(git_repo, {"environments/prod.yaml": "modules:\n  engine:\n    model:\n      temperature: 0.25\n"})
    assert run_command(explain_cmd, git_repo.path, "staging@acme", "engine.model.temperature") == 0
    assert capsys.readouterr().out.splitlines() == [
        "staging@acme engine $.model.temperature = 0.35",
        "  templates/engine.yaml:3:3      template '{{ temperature }}'",
        f"                                   {shas['Ada'][:7]} 2026-01-01 Ada Author <ada@example.com>: "
        "Initial platform config",
        "  environments/staging.yaml:2:3  variable temperature  (layer staging)",
        f"                                   {shas['Bob'][:7]} 2026-01-02 Bob Example <bob@example.com>: "
        "Cooler staging",
        "  environments/base.yaml:3:3     variable temperature  (layer base)  (overridden)",
        f"                                   {shas['Grace'][:7]} 2026-01-07 Grace Example <grace@example.com>: "
        "Warmer default",
    ]


def test_overridden_and_uncommitted_lines(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    shas = build_history(git_repo)
    write(git_repo, {"environments/prod.yaml": "modules:\n  engine:\n    model:\n      temperature: 0.25\n"})
    assert run_command(explain_cmd, git_repo.path, "prod", "engine.model.temperature", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["value"] == 0.25
    first, *rest = doc["sources"]
    assert (first["file"], first["kind"], first["commit"]) == ("environments/prod.yaml", "set", {"committed": False})
    template, variable, base_variable = rest
    assert template["file"] == "templates/engine.yaml"
    assert template["effective"] is False
    assert (base_variable["file"], base_variable["effective"]) == ("environments/base.yaml", False)
    assert variable["commit"] == {
        "committed": True,
        "sha": shas["Bob"],
        "author": "Bob Example <bob@example.com>",
        "date": "2026-01-02T10:00:00+00:00",
        "summary": "Cooler staging",
    }
    capsys.readouterr()
    assert run_command(explain_cmd, git_repo.path, "prod", "engine.model.temperature") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  environments/prod.yaml:4:7")
    assert lines[2].strip() == "not committed yet"


def test_explain_at_a_revision_blames_that_revision(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    shas = build_history(git_repo)
    assert run_command(explain_cmd, git_repo.path, "prod", "engine.model.temperature", "--rev", shas["Eve"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prod engine $.model.temperature = 0.2"
    assert lines[1].startswith("  environments/prod.yaml:5:7")
    assert lines[2].split() == [
        shas["Eve"][:7],
        "2026-01-05",
        "Eve",
        "Example",
        "<eve@example.com>:",
        "Pin",
        "prod",
        "temperature",
    ]


def test_secret_explain_shows_who_changed_it_but_no_value(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = f"canary-{uuid.uuid4()}"
    seed(git_repo)
    encrypt(git_repo, "environments/prod.secrets.sops.yaml", f"modules:\n  engine:\n    api_key: {canary}\n")
    sha = git_repo.commit("prod key", author="Sam Secops <sam@example.com>")
    for extra in ([], ["--identity", str(DEMO_IDENTITY)]):
        assert run_command(explain_cmd, git_repo.path, "prod", "engine.api_key", *extra) == 0
        out = capsys.readouterr().out
        assert canary not in out
        assert "ENC[" not in out
        assert out.splitlines()[0] == "prod engine $.api_key = <secret>"
        assert f"{sha[:7]} 2026-01-01 Sam Secops <sam@example.com>: prod key" in out


def test_blame_outside_git_and_porcelain_edge_cases(tmp_path) -> None:
    (tmp_path / "f.yaml").write_text("a: 1\n")
    assert blame_line(tmp_path, "f.yaml", 1) is None
    assert blame_line(tmp_path, "f.yaml", 1, rev="--output=x") is None
    assert parse_porcelain("") is None
    assert parse_porcelain("0" * 40 + " 1 1 1\n") is NOT_COMMITTED
    assert NOT_COMMITTED.describe() == "not committed yet"


def test_blame_in_a_repository_without_commits(git_repo: GitRepo) -> None:
    git_repo.write("f.yaml", "a: 1\n")
    assert blame_line(git_repo.path, "f.yaml", 1) == NOT_COMMITTED
