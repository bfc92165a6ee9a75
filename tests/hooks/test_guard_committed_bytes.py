"""Issue 14, attacked: a committed credential the secrets guard read nothing of, each closed.

- A file whose name is not UTF-8: git's name lists were decoded with replacement characters,
  the name opened named no file, and the file was taken for deleted (every mode).
- A gzip file of several members: only the first was read.
- A symlink whose target name holds the credential: git commits the name, the guard followed
  the link (dangling: "gone"; in a revision: only a warning).
- A listed file that is there but cannot be read is refused (exit 2), never skipped.
"""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import GitRepo
from tests.hooks.test_plaintext_guard import _alnum, git, run

pytestmark = pytest.mark.usefixtures("issue6_commands")


def _aws() -> str:
    return "AKIA" + _alnum(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def _commit_then_another(root: Path) -> str:
    """Commit everything without hooks, then one more commit on top; the commit before both."""
    base = git(root, "rev-parse", "HEAD").stdout.strip()
    git(root, "add", "-A")
    git(root, "commit", "-qm", "the credential", "--no-verify")
    (root / "other.txt").write_text("hi\n")
    git(root, "add", "other.txt")
    git(root, "commit", "-qm", "another", "--no-verify")
    return base


def _every_mode_refuses(capsys: pytest.CaptureFixture[str], root: Path, base: str, aws: str) -> list[str]:
    errs = []
    for argv in (("hook", "secrets-guard"), ("hook", "secrets-guard", "--since", base), ("validate",)):
        code, out, err = run(capsys, root, *argv)
        assert code == 1, (argv, out, err)
        assert aws not in out + err
        errs.append(err)
    return errs


def test_a_committed_file_whose_name_is_not_utf8_is_read(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    aws = _aws()
    (root / os.fsdecode(b"notes-\xff.txt")).write_bytes(f"aws_access_key_id = {aws}\n".encode())
    base = _commit_then_another(root)
    errs = _every_mode_refuses(capsys, root, base, aws)
    assert "notes-\\udcff.txt:1:" in errs[0], errs[0]  # printable_path: the byte escaped, no crash
    assert "in commit" in errs[1]


def test_every_member_of_a_gzip_file_is_read(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = example_repo.path
    aws = _aws()
    key = f"aws_access_key_id = {aws}\n".encode()
    (root / "multi.txt.gz").write_bytes(gzip.compress(b"hello\n") + gzip.compress(key))
    code, out, err = run(capsys, root, "hook", "secrets-guard", "--", "multi.txt.gz")
    assert code == 1, err
    assert "multi.txt.gz:2:" in err
    assert aws not in out + err
    (root / "tail.txt.gz").write_bytes(gzip.compress(b"hello\n") + key)  # trailing bytes that are no member
    assert run(capsys, root, "hook", "secrets-guard", "--", "tail.txt.gz")[0] == 1
    (root / "bad.txt.gz").write_bytes(gzip.compress(b"hello\n") + b"\x1f\x8b" + key)  # a member that breaks
    assert run(capsys, root, "hook", "secrets-guard", "--", "bad.txt.gz")[0] == 1
    (root / "ok.txt.gz").write_bytes(gzip.compress(b"hello\n") + gzip.compress(b"world\n"))
    assert run(capsys, root, "hook", "secrets-guard", "--", "ok.txt.gz")[0] == 0


def test_a_credential_as_a_symlink_target_is_scanned_in_every_mode(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    aws = _aws()
    (root / "lnk").symlink_to(f"aws_access_key_id={aws}")  # dangling: git commits the name
    base = _commit_then_another(root)
    errs = _every_mode_refuses(capsys, root, base, aws)
    assert errs[0].startswith("lnk:1:19: AWS Access Key"), errs[0]
    assert "lnk:1:19: AWS Access Key" in errs[1]
    assert "is a symlink" not in errs[1]


def test_a_listed_file_that_cannot_be_read_is_refused(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = example_repo.path
    outside = tmp_path / "outside"
    (outside / "d").mkdir(parents=True)
    (outside / "d" / "x.txt").write_text("x\n")
    (root / "d").mkdir()
    (root / "d" / "x.txt").write_text("x\n")
    git(root, "add", "d/x.txt")
    (root / "d" / "x.txt").unlink()
    (root / "d").rmdir()
    (root / "d").symlink_to(outside / "d")  # the index holds d/x.txt; the work tree's d leads outside
    code, _, err = run(capsys, root, "hook", "secrets-guard")
    assert code == 2, err
    assert "llmcc: d: points outside the repository" in err
    assert "cannot pass" in err


@pytest.mark.slow
def test_an_amend_with_nothing_staged_is_judged_by_the_scaffold_hooks(tmp_path: Path) -> None:
    """F8: ``git commit --amend`` with nothing staged ran no guard ("(no files to check) Skipped"):
    the scaffold's guard now always runs, and names HEAD as where the credential is."""
    from tests.hooks.test_precommit import commit, new_config_repo, sh

    repo = new_config_repo(tmp_path, "conf")
    extra = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    sh(repo, sys.executable, "-m", "pre_commit", "install", extra=extra)
    assert commit(repo, "llmcc init", extra).returncode == 0
    aws = _aws()
    (repo / "notes.txt").write_text(f"aws_access_key_id = {aws}\n")
    sh(repo, "git", "add", "notes.txt", extra=extra)
    sh(repo, "git", "commit", "-qm", "no hooks", "--no-verify", extra=extra)
    head = sh(repo, "git", "rev-parse", "--short=12", "HEAD").stdout.strip()
    amend = sh(repo, "git", "commit", "--amend", "-m", "msg", check=False, extra=extra)
    out = amend.stdout + amend.stderr
    assert amend.returncode != 0, out
    assert "notes.txt:1:21: AWS Access Key" in out, out
    assert f"(in HEAD {head}, which this commit keeps)" in out, out
    assert aws not in out


def test_a_finding_head_holds_says_so(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """The commit after a ``--no-verify`` one keeps HEAD's change: its finding names HEAD, not the staged files."""
    root = example_repo.path
    aws = _aws()
    (root / "notes.txt").write_text(f"aws_access_key_id = {aws}\n")
    git(root, "add", "notes.txt")
    git(root, "commit", "-qm", "no hooks", "--no-verify")
    head = git(root, "rev-parse", "--short=12", "HEAD").stdout.strip()
    (root / "other.txt").write_text("hi\n")
    git(root, "add", "other.txt")
    code, out, err = run(capsys, root, "hook", "secrets-guard", "--", "other.txt")
    assert code == 1, err
    assert "notes.txt:1:21: AWS Access Key: credential in plaintext" in err
    assert f"(in HEAD {head}, which this commit keeps)" in err
    assert aws not in out + err
    (root / "notes.txt").write_text("fixed\n")
    git(root, "add", "notes.txt")  # staged now: the finding is the staged change's, not HEAD's
    (root / "notes.txt").write_text(f"aws_access_key_id = {aws}\n")
    code, _, err = run(capsys, root, "hook", "secrets-guard", "--", "notes.txt")
    assert code == 1
    assert "in HEAD" not in err


def test_validate_rev_scans_a_symlink_as_its_target_name(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sibling: a revision's file list left symlinks out, so ``validate --rev`` never saw the link's name."""
    root = example_repo.path
    aws = _aws()
    (root / "lnk").symlink_to(f"aws_access_key_id={aws}")
    git(root, "add", "lnk")
    git(root, "commit", "-qm", "link", "--no-verify")
    (root / "lnk").unlink()  # gone from the work tree: the revision still holds it
    code, out, err = run(capsys, root, "validate", "--rev", "HEAD")
    assert code == 1, out + err
    assert "lnk:1:19: AWS Access Key" in out + err
    assert aws not in out + err
