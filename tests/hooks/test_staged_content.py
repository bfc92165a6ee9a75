"""The guards check what git commits (the index), also when run as a bare git hook (issue 14, fail-closed leftovers).

Under the pre-commit framework unstaged changes are stashed, so the working tree is
the index. A bare ``.git/hooks/pre-commit`` (or one under ``core.hooksPath``) runs on
the working tree as it is: before, a file staged with a plaintext secret and then
cleaned in the working tree passed both hooks, and the commit held the secret.

Real git repositories, a real hook script, real ``git commit`` runs. Every planted
value carries a canary; the guard's output never shows it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import main
from tests.conftest import GitRepo
from tests.secrets._secrets_support import new_canary

BIN = Path(sys.executable).parent
AWS = "AKIA" + "QYLPMN5HHHFPZAM2"  # the shape of an AWS access key id (not a real one)
HOOK = """#!/bin/sh
# a bare git hook: no framework, no stash; the staged files as arguments
files=$(git diff --cached --name-only --diff-filter=ACMR)
exec llmcc hook {hook} -- $files
"""
STAGED = "in the staged content, which git commits; the working tree differs"


def install(repo: GitRepo, hook: str, where: str) -> None:
    if where == "hooks-path":
        hooks = repo.path / "ci-hooks"
        repo.git("config", "core.hooksPath", "ci-hooks")
    else:
        hooks = repo.path / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    script = hooks / "pre-commit"
    script.write_text(HOOK.format(hook=hook))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def git_commit(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("SOPS_AGE_KEY_FILE", None)  # a hook has no identity
    return subprocess.run(
        ["git", "commit", "-q", "-m", "change", *args], cwd=repo.path, env=env, capture_output=True, text=True
    )


def head(repo: GitRepo) -> str:
    return repo.git("rev-parse", "HEAD").strip()


def credential_line() -> str:
    return f"aws_access_key_id: {AWS}  # {new_canary()}\n"


def secret_layer(text: str) -> str:
    """environments/dev.yaml with data-pipeline's x-secret db password set in plaintext."""
    return text.replace("      pool_size: 2\n", f"      pool_size: 2\n      password: {new_canary()}\n", 1)


HOOKS = ["secrets-guard", "validate"]
WHERE = ["git-hooks", "hooks-path"]


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("hook", HOOKS)
def test_a_credential_staged_then_cleaned_in_the_working_tree_is_refused(
    example_repo: GitRepo, hook: str, where: str
) -> None:
    install(example_repo, hook, where)
    before = head(example_repo)
    layer = example_repo.path / "environments/dev.yaml"
    clean = layer.read_text()
    layer.write_text(f"# {credential_line()}{clean}")  # a config file: `hook validate` runs for it
    example_repo.git("add", "environments/dev.yaml")
    layer.write_text(clean)  # the working tree is clean; the index is not
    done = git_commit(example_repo)
    assert done.returncode != 0, done.stderr
    assert "environments/dev.yaml:1:22: AWS Access Key: credential in plaintext" in done.stderr
    assert STAGED in done.stderr
    assert "canary-" not in done.stderr
    assert AWS not in done.stderr
    assert head(example_repo) == before


@pytest.mark.parametrize("hook", HOOKS)
def test_a_plaintext_secret_field_staged_then_cleaned_is_refused(example_repo: GitRepo, hook: str) -> None:
    install(example_repo, hook, "git-hooks")
    before = head(example_repo)
    layer = example_repo.path / "environments/dev.yaml"
    clean = layer.read_text()
    layer.write_text(secret_layer(clean))
    example_repo.git("add", "environments/dev.yaml")
    layer.write_text(clean.replace("pool_size: 2", "pool_size: 3"))  # a different, clean working tree
    done = git_commit(example_repo)
    assert done.returncode != 0, done.stderr
    assert "environments/dev.yaml:41:7: data-pipeline $.db.password: secret in plaintext" in done.stderr
    assert STAGED in done.stderr
    assert "canary-" not in done.stderr
    assert head(example_repo) == before


def test_a_file_staged_then_removed_from_the_working_tree_is_scanned(example_repo: GitRepo) -> None:
    install(example_repo, "secrets-guard", "git-hooks")
    notes = example_repo.write("ops/notes.txt", "ops notes\n" + credential_line())
    example_repo.git("add", "ops/notes.txt")
    notes.unlink()  # `rm`, not `git rm`: git still commits the staged file
    done = git_commit(example_repo)
    assert done.returncode != 0
    assert "ops/notes.txt:2:20: AWS Access Key: credential in plaintext: " in done.stderr
    assert f"({STAGED})" in done.stderr


@pytest.mark.parametrize("hook", HOOKS)
def test_commit_all_is_checked_on_the_index_it_commits(example_repo: GitRepo, hook: str) -> None:
    """`git commit -a` stages into a temporary index (GIT_INDEX_FILE): what the hook must read."""
    install(example_repo, hook, "git-hooks")
    before = head(example_repo)
    layer = example_repo.path / "environments/dev.yaml"
    clean = layer.read_text()
    layer.write_text(f"# {credential_line()}{clean}")
    done = git_commit(example_repo, "-a")
    layer.write_text(clean)  # the canary left nowhere on disk (the suite's sweep)
    assert done.returncode != 0
    assert "environments/dev.yaml:1:22: AWS Access Key: credential in plaintext" in done.stderr
    assert head(example_repo) == before


@pytest.mark.parametrize("hook", HOOKS)
def test_a_clean_partially_staged_change_passes(example_repo: GitRepo, hook: str) -> None:
    install(example_repo, hook, "git-hooks")
    layer = example_repo.path / "environments/dev.yaml"
    text = layer.read_text()
    layer.write_text(text.replace("pool_size: 2", "pool_size: 3"))
    example_repo.git("add", "environments/dev.yaml")
    layer.write_text(text.replace("pool_size: 2", "pool_size: 4"))
    done = git_commit(example_repo)
    assert done.returncode == 0, done.stderr
    assert example_repo.git("show", "HEAD:environments/dev.yaml") == text.replace("pool_size: 2", "pool_size: 3")


def test_validate_reports_the_staged_credential_in_one_line(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """`llmcc validate` (CI, by hand) scans the staged content too: git commits it next."""
    notes = example_repo.write("ops/notes.txt", "ops notes\n" + credential_line())
    example_repo.git("add", "ops/notes.txt")
    notes.write_text("ops notes\n")
    assert main(["-q", "-C", str(example_repo.path), "validate", "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "ops/notes.txt:2:20: AWS Access Key: credential in plaintext" in err
    assert STAGED in err


@pytest.mark.parametrize("hook", HOOKS)
def test_a_harmless_partially_staged_template_passes(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], hook: str
) -> None:
    """Before, a template whose staged content differed from the working tree was exit 2 whatever
    it held (it was checked only through the working tree); now its staged content is judged in
    the index, as the commit will hold it."""
    install(example_repo, hook, "git-hooks")
    template = example_repo.path / "templates/observatory.yaml"
    text = template.read_text()
    template.write_text(f"# staged\n{text}")
    example_repo.git("add", "templates/observatory.yaml")
    template.write_text(f"# staged\n{text}# not staged\n")
    assert main(["-q", "-C", str(example_repo.path), "hook", hook, "templates/observatory.yaml"]) == 0
    done = git_commit(example_repo)
    assert done.returncode == 0, done.stderr
    assert example_repo.git("show", "HEAD:templates/observatory.yaml") == f"# staged\n{text}"


def secret_template(text: str) -> str:
    """templates/data-pipeline.yaml with its x-secret db password set in plaintext."""
    return text.replace("  sslmode: verify-full\n", f"  sslmode: verify-full\n  password: {new_canary()}\n", 1)


@pytest.mark.parametrize("hook", HOOKS)
def test_a_secret_in_the_staged_part_of_a_template_is_refused(example_repo: GitRepo, hook: str) -> None:
    install(example_repo, hook, "git-hooks")
    before = head(example_repo)
    template = example_repo.path / "templates/data-pipeline.yaml"
    clean = template.read_text()
    template.write_text(secret_template(clean))
    example_repo.git("add", "templates/data-pipeline.yaml")
    template.write_text(clean.replace("pool_size: 10", "pool_size: 11"))  # the working tree: clean
    done = git_commit(example_repo)
    assert done.returncode != 0, done.stderr
    assert "templates/data-pipeline.yaml:29:3: data-pipeline $.db.password: secret in plaintext" in done.stderr
    assert STAGED in done.stderr
    assert "canary-" not in done.stderr
    assert head(example_repo) == before
    template.write_text(clean)  # the canary left nowhere on disk (the suite's sweep)


def test_a_field_a_staged_schema_newly_marks_secret_is_judged_in_the_index(example_repo: GitRepo) -> None:
    """The layer is committed already with a plain value; the schema, staged in part, makes that
    field secret: the commit would hold a plaintext secret that the working tree's schema hides."""
    install(example_repo, "secrets-guard", "git-hooks")
    before = head(example_repo)
    path = example_repo.path / "schemas/data-pipeline.schema.json"
    text = path.read_text()
    marked = text.replace('"username": {\n', '"username": {\n          "x-secret": true,\n', 1)
    assert marked != text
    path.write_text(marked)
    example_repo.git("add", "schemas/data-pipeline.schema.json")
    path.write_text(text)  # the working tree's schema: not secret
    done = git_commit(example_repo)
    assert done.returncode != 0, done.stderr
    assert "templates/data-pipeline.yaml:27:3: data-pipeline $.db.username: secret in plaintext" in done.stderr
    assert STAGED in done.stderr
    assert head(example_repo) == before


def test_a_staged_template_while_a_merge_conflicts_is_refused_in_one_line(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """The index cannot be read as a tree (git write-tree) until the conflict is resolved: a template
    staged otherwise than the working tree is refused (exit 2), never passed unjudged."""
    example_repo.write("ops/notes.txt", "ops notes\n")
    example_repo.commit("notes")
    example_repo.git("checkout", "-q", "-b", "other")
    example_repo.write("ops/notes.txt", "ops notes, other\n")
    example_repo.commit("other's notes")
    example_repo.git("checkout", "-q", "main")
    example_repo.write("ops/notes.txt", "ops notes, main\n")
    example_repo.commit("main's notes")
    merged = subprocess.run(["git", "merge", "-q", "other"], cwd=example_repo.path, capture_output=True, check=False)
    assert merged.returncode != 0  # the conflict
    template = example_repo.path / "templates/observatory.yaml"
    text = template.read_text()
    template.write_text(f"# staged\n{text}")
    example_repo.git("add", "templates/observatory.yaml")
    template.write_text(text)
    assert main(["-q", "-C", str(example_repo.path), "hook", "secrets-guard", "templates/observatory.yaml"]) == 2
    line = (
        "llmcc: templates/observatory.yaml: the staged content differs from the working tree, and the index "
        "cannot be read as a tree to check it: stage the file (git add) or run the hook under pre-commit, "
        "which stashes unstaged changes"
    )
    assert line in capsys.readouterr().err.splitlines()


def test_a_staged_blob_over_the_read_limit_is_not_scanned_and_fails(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    from compiler.load.yaml import MAX_FILE_BYTES

    big = example_repo.write("ops/big.txt", "x" * (MAX_FILE_BYTES + 1))
    example_repo.git("add", "ops/big.txt")
    big.write_text("small now\n")
    assert main(["-q", "-C", str(example_repo.path), "hook", "secrets-guard", "ops/big.txt"]) == 1
    err = capsys.readouterr().err
    assert "ops/big.txt:1:1: not scanned: the staged content is over the read limit" in err


def test_every_side_of_a_merge_conflict_is_scanned(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """While a merge conflicts the index holds each side (stages 1-3): all are what a resolution may take."""
    example_repo.write("ops/notes.txt", "ops notes\n")
    example_repo.commit("notes")
    example_repo.git("checkout", "-q", "-b", "other")
    example_repo.write("ops/notes.txt", "ops notes\n" + credential_line())
    example_repo.commit("a key")
    example_repo.git("checkout", "-q", "main")
    example_repo.write("ops/notes.txt", "ops notes, main\n")
    example_repo.commit("main's notes")
    merged = subprocess.run(["git", "merge", "-q", "other"], cwd=example_repo.path, capture_output=True, check=False)
    assert merged.returncode != 0  # the conflict
    (example_repo.path / "ops/notes.txt").write_text("ops notes, main\n")  # resolved clean, not staged yet
    assert main(["-q", "-C", str(example_repo.path), "hook", "secrets-guard", "ops/notes.txt"]) == 1
    err = capsys.readouterr().err
    assert "ops/notes.txt:2:20: AWS Access Key: credential in plaintext: " in err
    assert "canary-" not in err


@pytest.mark.parametrize("command", [["hook", "secrets-guard"], ["validate", "--no-cache"]])
def test_a_file_name_with_a_line_break_cannot_forge_a_line_of_the_output(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Git takes a newline in a name: printed raw, the finding's path wrote a line of its own (attacker)."""
    forged = "llmcc: secrets-guard ok: 23 files"
    name = f"x\n{forged}\rz.txt"
    (example_repo.path / name).write_text(credential_line())
    example_repo.git("add", "--", name)
    try:
        assert main(["-q", "-C", str(example_repo.path), *command]) == 1
    finally:
        (example_repo.path / name).unlink()  # the canary stays in the index only, out of the sweep's way
        example_repo.git("rm", "-q", "--cached", "--", name)
    err = capsys.readouterr().err
    assert forged not in err.splitlines()
    assert "\r" not in err
    assert "x\\nllmcc: secrets-guard ok: 23 files\\rz.txt:1:" in err


def test_a_staged_manifest_that_does_not_load_is_refused_in_one_line(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commit would hold the staged llmcc.yaml, against which the staged files' secrets cannot be judged."""
    manifest = example_repo.path / "llmcc.yaml"
    good = manifest.read_text()
    manifest.write_text(good + "unknown_key: 1\n")
    example_repo.git("add", "llmcc.yaml")
    manifest.write_text(good)
    assert main(["-q", "-C", str(example_repo.path), "hook", "secrets-guard", "llmcc.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmcc: llmcc.yaml:"), err
    assert "(the staged content)" in err.splitlines()[0]


def test_a_staged_note_alone_does_not_read_the_index_as_a_tree(example_repo: GitRepo) -> None:
    """Rules 1-2 judge no such file: its staged content gets rules 3-4 only, and no tree is written."""
    notes = example_repo.write("ops/notes.txt", "staged\n")
    example_repo.git("add", "ops/notes.txt")
    notes.write_text("working tree\n")
    objects = sorted(p.name for p in (example_repo.path / ".git/objects").rglob("*") if p.is_file())
    assert main(["-q", "-C", str(example_repo.path), "hook", "secrets-guard", "ops/notes.txt"]) == 0
    assert sorted(p.name for p in (example_repo.path / ".git/objects").rglob("*") if p.is_file()) == objects
