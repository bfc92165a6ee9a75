"""Issue 13 §3: an explicit BASE is compared through its merge-base with HEAD, and ``A...B`` works as in git."""

from __future__ import annotations

import json

import pytest

from compiler.cli import diff as diff_cmd
from tests.conftest import GitRepo
from tests.diff._support import run_command, seed, write


def _behind(repo: GitRepo) -> None:
    """A feature branch that changed dev, behind main, which changed staging after the branch left it."""
    seed(repo)
    repo.git("checkout", "-q", "-b", "feature")
    write(repo, {"environments/dev.yaml": "vars:\n  model: small\n"})
    repo.commit("feature work", author="Bob Builder <bob@example.com>")
    repo.git("checkout", "-q", "main")
    write(repo, {"environments/staging.yaml": "vars:\n  temperature: 0.1\n"})
    repo.commit("main moves on", author="Ada Author <ada@example.com>")
    repo.git("checkout", "-q", "feature")


def _changed(out: str) -> dict[str, list[str]]:
    doc = json.loads(out)
    return {t["target"]: [c["path"] for c in t["changes"]] for t in doc["targets"] if t["changes"]}


@pytest.mark.parametrize("argv", [["main", "HEAD"], ["main...HEAD"], ["main...feature"], ["main..HEAD"], ["main..."]])
def test_a_branch_behind_base_shows_only_its_own_changes(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    _behind(git_repo)
    fork = git_repo.git("merge-base", "main", "feature").strip()
    assert run_command(diff_cmd, git_repo.path, *argv, "--format", "json") == 0
    out = capsys.readouterr().out
    # main's later staging temperature is not shown reversed as if the branch had set it back
    assert _changed(out) == {"dev": ["$.model.name"]}
    assert json.loads(out)["base"] == f"main (merge-base {fork[:7]})"


def test_a_base_that_is_an_ancestor_is_used_as_it_is(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    _behind(git_repo)
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["base"].startswith("HEAD~1 (")
    assert _changed(json.dumps(doc)) == {"dev": ["$.model.name"]}


def test_the_gitlab_diff_base_sha_gives_the_same_diff(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """GitLab's CI_MERGE_REQUEST_DIFF_BASE_SHA is the merge-base: passed as BASE it is itself."""
    _behind(git_repo)
    sha = git_repo.git("merge-base", "main", "HEAD").strip()
    assert run_command(diff_cmd, git_repo.path, sha, "HEAD", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["base"] == sha[:7]
    assert _changed(json.dumps(doc)) == {"dev": ["$.model.name"]}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["main...HEAD", "HEAD"], "llmcc: diff: give either a range 'main...HEAD' or BASE HEAD, not both\n"),
        (["nope...HEAD"], "llmcc: unknown revision 'nope'\n"),
        (["main", "nope"], "llmcc: unknown revision 'nope'\n"),
    ],
)
def test_bad_ranges_are_one_line_exit_2(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    _behind(git_repo)
    assert run_command(diff_cmd, git_repo.path, *argv) == 2
    assert capsys.readouterr().err == message


def test_unrelated_histories_are_refused(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    seed(git_repo)
    git_repo.git("checkout", "-q", "--orphan", "other")
    git_repo.commit("a new root", author="Bob Builder <bob@example.com>")
    assert run_command(diff_cmd, git_repo.path, "main", "HEAD") == 2
    err = capsys.readouterr().err
    assert err.startswith("llmcc: ")
    assert err.endswith("have no common ancestor (unrelated histories); nothing to diff against\n")


def test_a_shallow_clone_says_to_fetch_the_history(
    git_repo: GitRepo, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    _behind(git_repo)
    clone = tmp_path / "shallow"
    git_repo.git("clone", "-q", "--depth", "1", "--no-single-branch", f"file://{git_repo.path}", str(clone))
    assert run_command(diff_cmd, clone, "origin/main", "origin/feature") == 2
    assert (
        "the clone is shallow: fetch the whole history (git fetch --unshallow; fetch-depth: 0)"
        in capsys.readouterr().err
    )


def test_directory_outside_git_is_a_usage_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "llmcc.yaml").write_text("project: x\n")
    assert run_command(diff_cmd, tmp_path, "main", "HEAD") == 2
    assert "not a git repository" in capsys.readouterr().err
