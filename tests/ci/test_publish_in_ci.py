"""Issue 13 §3: in CI, ``publish`` to a store inside the work tree is an error unless explicitly allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import GitRepo
from tests.storage._cli import llmcc

SIGNING = ["--signing-key", "keys/demo-signing.pem"]
REFUSED = (
    "llmcc: file://.llmcc/store: a store inside the work tree {tree}, and CI is set: the runner's disk is thrown away"
    " after the job, so no reader would see this publish; set storage.default to an s3:// or oci:// store,"
    " or pass --allow-worktree-store if the job keeps the directory\n"
)


@pytest.fixture
def example(example_repo: GitRepo, demo_identity: Path) -> Path:
    return example_repo.path


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_publish_in_ci_to_the_work_tree_is_refused_before_anything_is_written(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    assert llmcc(example, "publish", *SIGNING) == 2
    assert capsys.readouterr().err == REFUSED.format(tree=example)
    assert not (example / ".llmcc/store").exists()
    assert llmcc(example, "publish", "--refresh-pointer", *SIGNING) == 2  # the scheduled job too
    assert capsys.readouterr().err == REFUSED.format(tree=example)


def test_a_subdirectory_store_given_absolute_is_refused_too(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    url = f"file://{example}/environments/../out"
    assert llmcc(example, "publish", *SIGNING, "--store", url) == 2
    assert "a store inside the work tree" in capsys.readouterr().err


def test_the_flag_allows_it_and_outside_ci_nothing_changes(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CI", "true")
    assert llmcc(example, "publish", *SIGNING, "--allow-worktree-store") == 0
    assert capsys.readouterr().out.count(": published version 1 ") == 6
    outside = tmp_path / "store"
    assert llmcc(example, "publish", *SIGNING, "--store", f"file://{outside}") == 0  # a runner's mounted volume
    capsys.readouterr()
    for value in ("false", "0", ""):
        monkeypatch.setenv("CI", value)
        assert llmcc(example, "verify") == 0
        assert llmcc(example, "publish", *SIGNING) == 0
    assert capsys.readouterr().out.count(": unchanged at version 1 ") == 18


@pytest.mark.parametrize(("var", "value"), [("TF_BUILD", "True"), ("JENKINS_URL", "https://jenkins.example/")])
def test_runners_that_do_not_set_ci_are_recognised(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    """Azure Pipelines and Jenkins set no ``CI``: their own variable says a runner's disk is in use."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(var, value)
    assert llmcc(example, "publish", *SIGNING) == 2
    assert capsys.readouterr().err == REFUSED.format(tree=example)
    monkeypatch.setenv("CI", "false")  # an explicit CI still decides
    assert llmcc(example, "publish", *SIGNING, "-t", "dev") == 0
