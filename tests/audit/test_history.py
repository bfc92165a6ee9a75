"""`llmcc history`: exactly the commits that changed the effective value, newest first."""

from __future__ import annotations

import json
import uuid

import pytest

from compiler.cli import history as history_cmd
from tests.audit._history import PROD_TEMPERATURE, build_history
from tests.conftest import DEMO_IDENTITY, GitRepo
from tests.diff._support import encrypt, run_command, seed, write


def test_lists_exactly_the_commits_that_changed_the_value(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    shas = build_history(git_repo)
    assert run_command(history_cmd, git_repo.path, "prod", "engine.model.temperature") == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()
        == [
            "prod engine $.model.temperature: 3 changes in 5 commits that touched its files",
            f"{shas['Eve'][:7]}  2026-01-05  Eve Example <eve@example.com>  Pin prod temperature",
            "    0.35 -> 0.2",
            f"{shas['Bob'][:7]}  2026-01-02  Bob Example <bob@example.com>  Cooler staging",  # inherited from staging
            "    0.4 -> 0.35",
            f"{shas['Ada'][:7]}  2026-01-01  Ada Author <ada@example.com>  Initial platform config",
            "    introduced: 0.4",
        ]
    )


def test_json_and_another_target(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    shas = build_history(git_repo)
    assert run_command(history_cmd, git_repo.path, "prod@acme", "engine.model.name", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(c["commit"], c["kind"], c["old"], c["new"]) for c in doc["changes"]] == [
        (shas["Frank"], "changed", "big", "acme-xl"),
        (shas["Ada"], "introduced", None, "big"),
    ]
    assert doc["path"] == "$.model.name"
    assert doc["changes"][0]["author"] == "Frank Example <frank@example.com>"


def test_start_revision_and_a_value_that_appears_later(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    shas = build_history(git_repo)
    assert run_command(history_cmd, git_repo.path, "prod", "engine.model", "--rev", shas["Eve"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prod engine $.model: 3 changes in 4 commits that touched its files"
    assert lines[-2].startswith(shas["Ada"][:7])
    capsys.readouterr()
    write(git_repo, {"environments/prod.yaml": "modules:\n  engine:\n    region: eu\n"})
    git_repo.commit("prod region", author="Hal Example <hal@example.com>")
    assert run_command(history_cmd, git_repo.path, "prod", "engine.region") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prod engine $.region: 1 change in 2 commits that touched its files"
    assert lines[2] == '    introduced: "eu"'


def test_commits_that_do_not_compile_are_skipped(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    seed(git_repo)
    write(git_repo, {"environments/staging.yaml": "vars: [unclosed\n"})
    broken = git_repo.commit("oops", author="Bob Example <bob@example.com>")
    write(git_repo, {"environments/staging.yaml": "vars:\n  temperature: 0.3\n"})
    git_repo.commit("fix", author="Bob Example <bob@example.com>")
    assert run_command(history_cmd, git_repo.path, "staging", "engine.model.temperature") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "staging engine $.model.temperature: 2 changes in 2 commits that touched its files"
    assert lines[2] == "    0.4 -> 0.3"
    assert lines[-1].startswith(f"skipped {broken[:7]} (oops): does not compile: environments/staging.yaml:")


def test_secret_history_is_masked(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = f"canary-{uuid.uuid4()}", f"canary-{uuid.uuid4()}"
    seed(git_repo)
    rel = "environments/prod.secrets.sops.yaml"
    encrypt(git_repo, rel, f"modules:\n  engine:\n    api_key: {old}\n")
    git_repo.commit("prod key", author="Sam Secops <sam@example.com>")
    encrypt(git_repo, rel, f"modules:\n  engine:\n    api_key: {old}\n")
    git_repo.commit("re-encrypt", author="Sam Secops <sam@example.com>")
    encrypt(git_repo, rel, f"modules:\n  engine:\n    api_key: {new}\n")
    git_repo.commit("rotate", author="Sam Secops <sam@example.com>")
    outs = {}
    for extra in ([], ["--identity", str(DEMO_IDENTITY)]):
        for fmt in ("text", "json"):
            assert run_command(history_cmd, git_repo.path, "prod@acme", "engine.api_key", "--format", fmt, *extra) == 0
            outs[(fmt, bool(extra))] = capsys.readouterr().out
    for out in outs.values():
        assert old not in out
        assert new not in out
        assert "ENC[" not in out
    with_id = outs[("text", True)].splitlines()
    assert with_id[0] == "prod@acme engine $.api_key: 2 changes in 4 commits that touched its files"
    assert [line for line in with_id if line.startswith("    ")] == ["    <secret changed>", "    <secret added>"]
    without = outs[("text", False)].splitlines()
    assert without[1] == "note: secrets compared by SOPS ciphertext; provide an identity to compare values"
    assert without[0].startswith("prod@acme engine $.api_key: 3 changes")  # the re-encryption shows
    assert json.loads(outs[("json", True)])["changes"][0] == {
        "commit": git_repo.git("rev-parse", "HEAD").strip(),
        "author": "Sam Secops <sam@example.com>",
        "date": json.loads(outs[("json", True)])["changes"][0]["date"],
        "subject": "rotate",
        "kind": "changed",
        "secret": True,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prod", "engine.x", "--rev", "nope"], "llmcc: unknown revision 'nope'\n"),
        (["qa", "engine.x"], "llmcc: unknown target 'qa'; llmcc.yaml defines: "),
        (["prod", "nomodule.x"], "llmcc: unknown module 'nomodule'; modules: engine\n"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    seed(git_repo)
    assert run_command(history_cmd, git_repo.path, *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_a_merge_history_follows_the_first_parent_line(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """A change made on a merged branch shows as the merge; the mainline's own changes all show."""
    ada = seed(git_repo)
    git_repo.git("checkout", "-q", "-b", "side")
    write(git_repo, {"environments/prod.yaml": PROD_TEMPERATURE})  # side: prod 0.2
    git_repo.commit("Side: prod at 0.2", author="Dan Example <dan@example.com>", date="2026-01-03T10:00:00Z")
    git_repo.git("checkout", "-q", "main")
    write(git_repo, {"environments/staging.yaml": "vars:\n  temperature: 0.35\n"})  # main: prod 0.35
    bob = git_repo.commit("Cooler staging", author="Bob Example <bob@example.com>", date="2026-01-02T10:00:00Z")
    git_repo.git("merge", "-q", "--no-ff", "-m", "Merge side", "side")
    merge = git_repo.git("rev-parse", "HEAD").strip()
    assert run_command(history_cmd, git_repo.path, "prod", "engine.model.temperature") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1::2]] == [merge[:7], bob[:7], ada[:7]]
    assert lines[2::2] == ["    0.35 -> 0.2", "    0.4 -> 0.35", "    introduced: 0.4"]
