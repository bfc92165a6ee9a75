"""A secret committed with ``--no-verify`` does not pass the next commit or an amend unseen, and CI refuses a
merge request whose history holds one, also when a later commit removed it (the last note's "not fixed").

The hooks compared the index with HEAD: a file the ``--no-verify`` commit added was "unchanged", so
``git commit --amend`` (which re-commits it on HEAD's parent) and any later commit passed both hooks
with it. They now judge the index against HEAD's parent. What no hook can see (a secret two commits
back, or one a later commit removed: both still pushed) is refused by CI's guard with ``--since`` the
merge request's base, which scans each of its commits (run here through the real templates).
Real git, real hook scripts, real ``git commit``; every planted value carries a canary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.cli import main
from tests.ci._forge import GITHUB_TOKEN, running_forge
from tests.ci._runner import run_github_job, run_gitlab_job
from tests.ci.test_templates_run import _checkout, _git, _github_env, _gitlab_env, _load, seed_remote
from tests.conftest import GitRepo
from tests.hooks.test_staged_content import (
    AWS,
    HOOKS,
    STAGED,
    credential_line,
    git_commit,
    head,
    install,
    secret_layer,
)

FINDING = "ops/notes.txt:2:20: AWS Access Key: credential in plaintext"
SECRET_FIELD = "environments/dev.yaml:41:7: data-pipeline $.db.password: secret in plaintext"


@pytest.fixture(autouse=True)
def _no_canary_left_on_disk(tmp_path: Path) -> Iterator[None]:
    """The planted files leave the working trees after each test (git's objects are compressed: the
    suite's canary sweep reads files as they are on disk)."""
    yield
    for path in tmp_path.rglob("*"):
        if ".git" not in path.parts and path.is_file() and not path.is_symlink() and b"canary-" in path.read_bytes():
            path.unlink()


def commit_secret_without_hooks(repo: GitRepo) -> str:
    """ops/notes.txt with a credential, committed with --no-verify (the hooks skipped); HEAD after."""
    repo.write("ops/notes.txt", "ops notes\n" + credential_line())
    repo.git("add", "ops/notes.txt")
    done = git_commit(repo, "--no-verify")
    assert done.returncode == 0, done.stderr
    return head(repo)


def stage_other_change(repo: GitRepo) -> None:
    layer = repo.path / "environments/dev.yaml"
    layer.write_text(layer.read_text().replace("pool_size: 2", "pool_size: 3"))
    repo.git("add", "environments/dev.yaml")


@pytest.mark.parametrize("amend", [True, False], ids=["amend", "next-commit"])
@pytest.mark.parametrize("hook", HOOKS)
def test_a_no_verify_secret_does_not_pass_the_amend_or_the_next_commit(
    example_repo: GitRepo, hook: str, amend: bool
) -> None:
    install(example_repo, hook, "git-hooks")
    bad = commit_secret_without_hooks(example_repo)
    stage_other_change(example_repo)
    done = git_commit(example_repo, *(["--amend"] if amend else []))
    assert done.returncode != 0, done.stderr
    assert FINDING in done.stderr
    assert "canary-" not in done.stderr
    assert AWS not in done.stderr
    assert head(example_repo) == bad


def test_a_no_verify_secret_fixed_only_in_the_working_tree_is_refused_on_amend(example_repo: GitRepo) -> None:
    """The fix not staged: the amend would commit the index, secret and all."""
    install(example_repo, "secrets-guard", "git-hooks")
    bad = commit_secret_without_hooks(example_repo)
    (example_repo.path / "ops/notes.txt").write_text("ops notes\n")
    stage_other_change(example_repo)
    done = git_commit(example_repo, "--amend")
    assert done.returncode != 0
    assert f"{FINDING}: " in done.stderr
    assert STAGED in done.stderr
    assert head(example_repo) == bad


def test_a_plaintext_secret_field_committed_without_hooks_is_refused_on_amend(example_repo: GitRepo) -> None:
    install(example_repo, "secrets-guard", "git-hooks")
    layer = example_repo.path / "environments/dev.yaml"
    clean = layer.read_text()
    layer.write_text(secret_layer(clean))
    example_repo.git("add", "environments/dev.yaml")
    assert git_commit(example_repo, "--no-verify").returncode == 0
    example_repo.write("ops/readme.txt", "notes\n")
    example_repo.git("add", "ops/readme.txt")
    done = git_commit(example_repo, "--amend")
    assert done.returncode != 0
    assert SECRET_FIELD in done.stderr
    layer.write_text(clean)
    example_repo.git("add", "environments/dev.yaml")
    assert git_commit(example_repo, "--amend").returncode == 0  # amended away: history never holds it


@pytest.mark.parametrize("hook", HOOKS)
def test_amending_the_secret_away_passes(example_repo: GitRepo, hook: str) -> None:
    install(example_repo, hook, "git-hooks")
    commit_secret_without_hooks(example_repo)
    example_repo.git("rm", "-q", "ops/notes.txt")
    stage_other_change(example_repo)
    done = git_commit(example_repo, "--amend")
    assert done.returncode == 0, done.stderr
    assert "ops/notes.txt" not in example_repo.git("show", "--name-only", "--format=", "HEAD")


def test_since_refuses_a_secret_a_later_commit_removed(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    base = head(example_repo)
    bad = commit_secret_without_hooks(example_repo)
    example_repo.git("rm", "-q", "ops/notes.txt")
    assert git_commit(example_repo).returncode == 0  # the tree is clean again; history is not
    root = ["-q", "-C", str(example_repo.path), "hook", "secrets-guard"]
    assert main(root) == 0
    capsys.readouterr()
    assert main([*root, "--since", base]) == 1
    err = capsys.readouterr().err
    assert f"{FINDING}: " in err
    assert f"(in commit {bad[:12]} of {base}..HEAD, which history keeps)" in err
    assert err.splitlines()[-1] == "llmcc: secrets-guard FAILED: 1 finding in 51 files and 2 commits"
    assert "canary-" not in err


def test_since_passes_a_clean_history_and_names_a_bad_revision(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    base = head(example_repo)
    example_repo.write("ops/ok.txt", "nothing secret\n")
    example_repo.commit("ok")
    root = ["-C", str(example_repo.path), "hook", "secrets-guard"]
    assert main([*root, "--since", base]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == "llmcc: secrets-guard ok: 52 files and 1 commit"
    assert main([*root, "--since", "origin/nowhere"]) == 2
    assert capsys.readouterr().err == (
        "llmcc: --since origin/nowhere: unknown revision 'origin/nowhere' (fetch it: git fetch origin)\n"
    )


def test_since_refuses_a_commit_it_cannot_judge(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """A commit whose llmcc.yaml does not load: its x-secret rules cannot run, so it is not passed."""
    base = head(example_repo)
    manifest = example_repo.path / "llmcc.yaml"
    good = manifest.read_text()
    manifest.write_text(good + "unknown_key: 1\n")
    example_repo.commit("broken manifest")
    broken = head(example_repo)
    manifest.write_text(good)
    example_repo.commit("fixed")
    assert main(["-q", "-C", str(example_repo.path), "hook", "secrets-guard", "--since", base]) == 2
    err = capsys.readouterr().err
    assert f"llmcc: commit {broken[:12]}: " in err
    assert "(the secrets guard cannot judge this commit)" in err


def _secret_then_removed_on_feature(tmp_path: Path, bare: Path) -> None:
    work = tmp_path / "laptop"
    _git(tmp_path, "clone", "-q", "-b", "feature", str(bare), str(work))
    (work / "ops").mkdir()
    (work / "ops/notes.txt").write_text("ops notes\n" + credential_line())
    _git(work, "add", "ops/notes.txt")
    _git(work, "commit", "-qm", "notes", "--no-verify")
    _git(work, "rm", "-q", "ops/notes.txt")
    _git(work, "commit", "-qm", "removed again")
    _git(work, "push", "-q", "origin", "feature")


def test_the_ci_templates_refuse_a_merge_request_whose_history_holds_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed, bare = seed_remote(tmp_path, capsys)
    _git(seed, "push", "-q", "origin", "main", "feature")
    _secret_then_removed_on_feature(tmp_path, bare)
    with running_forge() as forge:
        work = _checkout(tmp_path, bare, "github", merge=True)
        steps = run_github_job(
            _load("hooks/ci/github-workflow.yaml"),
            "check",
            cwd=work,
            env=_github_env(tmp_path, forge, work),
            secrets={"GITHUB_TOKEN": GITHUB_TOKEN},
        )
        (guard,) = [s for s in steps if s.name.startswith("Secrets guard")]
        assert guard.code == 1, guard.stderr
        assert f"{FINDING}: " in guard.stderr
        work = _checkout(tmp_path, bare, "gitlab")
        run = run_gitlab_job(
            _load("hooks/ci/gitlab-ci.yaml"), "llmcc-validate", cwd=work, env=_gitlab_env(forge, work, token=None)
        )
    assert run.code == 1, run.stderr
    assert f"{FINDING}: " in run.stderr
    assert "canary-" not in guard.stderr + run.stderr


def test_a_gitlab_default_branch_pipeline_still_guards_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No merge request, no base: the guard runs as before, on the checkout."""
    seed, bare = seed_remote(tmp_path, capsys)
    _git(seed, "push", "-q", "origin", "main")
    work = tmp_path / "main"
    _git(tmp_path, "clone", "-q", str(bare), str(work))
    with running_forge() as forge:
        env = _gitlab_env(forge, work, token=None)
    env.pop("CI_MERGE_REQUEST_DIFF_BASE_SHA")
    env["CI_PIPELINE_SOURCE"] = "push"
    run = run_gitlab_job(_load("hooks/ci/gitlab-ci.yaml"), "llmcc-validate", cwd=work, env=env)
    assert run.code == 0, run.stderr
    assert re.search(r"^llmcc: secrets-guard ok: \d+ files$", run.stderr, re.MULTILINE), run.stderr


def test_a_root_commit_changes_every_file_it_holds(example_repo: GitRepo) -> None:
    from compiler.commitscan import changed_files

    files = example_repo.git("ls-files").split()
    assert changed_files(example_repo.path, head(example_repo), None) == sorted(files)


def test_the_index_as_a_tree_is_what_the_next_commit_holds(example_repo: GitRepo) -> None:
    from compiler.errors import InputError
    from compiler.sources.gitrev import GitRevTree

    example_repo.write("ops/staged.txt", "staged\n")
    example_repo.git("add", "ops/staged.txt")
    (example_repo.path / "ops/staged.txt").write_text("working tree\n")
    index = GitRevTree.index(example_repo.path)
    assert index.read("ops/staged.txt") == b"staged\n"
    assert index.rev is None
    assert index.source_info() is None
    with pytest.raises(InputError, match=r"^ops/nothing.txt: no such file at the index$"):
        index.read("ops/nothing.txt")
