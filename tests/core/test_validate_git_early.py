"""``validate`` starts its git processes before it loads the compile stack (issue 14 §1): the source info
always, and without the result cache the list of files git can take. What it reports is the same."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.errors import InputError
from compiler.sources import worktree
from compiler.sources.worktree import WorkTree
from tests.conftest import GitRepo
from tests.core._repos import mini_repo
from tests.hooks.test_plaintext_guard import assert_reported, plant


@pytest.mark.parametrize("argv", [["--no-cache"], []], ids=["no-cache", "cache"])
def test_a_credential_in_a_new_file_is_found_with_the_files_listed_early(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    root = example_repo.path
    rel, value, label = plant(root, "aws")  # untracked, not ignored: git can take it
    capsys.readouterr()
    assert main(["-C", str(root), "validate", *argv]) == 1
    assert_reported(capsys.readouterr().err, rel, value, label)
    (root / rel).unlink()  # the canary sweep finds none left behind


def test_a_dirty_tree_is_seen_through_the_early_source_info(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    layer = root / "environments/dev.yaml"
    layer.write_text(layer.read_text() + "\n# edited\n")
    assert main(["-C", str(root), "validate", "--no-cache", "--format", "json"]) == 0
    assert '"ok": true' in capsys.readouterr().out


def test_outside_git_validate_without_the_cache_scans_nothing_and_passes(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "plain")
    assert main(["-q", "-C", str(root), "validate", "--no-cache"]) == 0


def test_what_git_gave_in_the_background_is_what_it_gives_in_the_foreground(example_repo: GitRepo) -> None:
    early = WorkTree(example_repo.path)
    early.start_git(files=True)
    late = WorkTree(example_repo.path)
    assert early.source_info() == late.source_info()
    assert early.committable_files() == late.committable_files()
    # each result is taken once: the next call asks git again
    (example_repo.path / "new.txt").write_text("x\n")
    assert "new.txt" in early.committable_files()  # type: ignore[operator]
    outside = WorkTree(mini_repo(example_repo.path.parent / "outside"))
    outside.start_git(files=True)
    assert (outside.source_info(), outside.committable_files()) == (None, None)


def test_an_error_in_the_background_is_raised_where_the_result_is_taken(
    example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_git(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        raise InputError("git is not installed")

    tree = WorkTree(example_repo.path)
    monkeypatch.setattr(worktree, "_start_git", no_git)
    tree.start_git(files=True)
    with pytest.raises(InputError, match="git is not installed"):
        tree.source_info()
    with pytest.raises(InputError, match="git is not installed"):
        tree.committable_files()
