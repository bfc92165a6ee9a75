"""The CI workflows and hook definitions are valid YAML that call only real ``llmcc`` commands and flags.

Every ``llmcc ...`` invocation in them is parsed by the real argparse parser
(``compiler.cli.build_parser``): a subcommand or flag that does not exist fails.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.cli import build_parser
from compiler.cli.init import scaffold_files
from tests.conftest import REPO_ROOT
from tests.policy._support import ISSUE6_COMMANDS, REGISTERED_AT_IMPORT

WORKFLOWS = ["hooks/ci/github-workflow.yaml", "hooks/ci/gitlab-ci.yaml"]
HOOK_CONFIGS = [".pre-commit-hooks.yaml", ".pre-commit-config.yaml"]
_SHELL_OPS = {">", ">>", "<", "|", "||", "&&", ";", "&", "2>", "2>&1"}


def load(path: Path | str) -> Any:
    text = Path(path).read_text() if isinstance(path, Path) else path
    return YAML(typ="safe").load(text)


def scripts(doc: Any) -> Iterator[str]:
    """Every shell script in a GitHub workflow (``run:``) or GitLab CI file (``script:`` lists)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "run" and isinstance(value, str):
                yield value
            elif key in ("script", "before_script", "after_script") and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            else:
                yield from scripts(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from scripts(item)


def invocations(script: str) -> Iterator[list[str]]:
    """The argument lists of the ``llmcc`` commands in a shell script."""
    text = re.sub(r"\$\{\{[^}]*\}\}", "X", script)  # GitHub expressions
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        for i, tok in enumerate(tokens):
            if tok == "llmcc" or tok.endswith("/llmcc"):
                args = []
                stop = ""
                for t in tokens[i + 1 :]:
                    if t in _SHELL_OPS or t.startswith((">", "|", "&", ";")):
                        stop = t
                        break
                    args.append(t)
                if args and args[-1].isdigit() and stop.startswith(">") and f"{args[-1]}>" in line:  # "2> file"
                    args.pop()
                yield args


def check_command(args: list[str]) -> None:
    build_parser().parse_args(args)  # raises the usage error (exit 2) for an unknown command or flag


def ci_invocations() -> list[tuple[str, list[str]]]:
    return [(f, args) for f in WORKFLOWS for s in scripts(load(REPO_ROOT / f)) for args in invocations(s)]


def test_the_ci_files_call_the_commands_they_should() -> None:
    found = {(f, args[0]) for f, args in ci_invocations()}
    for f in WORKFLOWS:
        assert {(f, c) for c in ("validate", "policy", "diff", "publish", "verify", "ci")} <= found


@pytest.mark.parametrize(("path", "args"), ci_invocations(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_llmcc_call_in_ci_parses(path: str, args: list[str]) -> None:
    check_command(args)


def test_the_github_workflow_posts_the_markdown_diff_and_publishes_on_main() -> None:
    doc = load(REPO_ROOT / WORKFLOWS[0])
    assert set(doc["on"]) == {"pull_request", "push", "schedule"}
    runs = "\n".join(scripts(doc))
    assert "llmcc validate --format github" in runs
    # issue 13 §3: the merge-base of the base branch and the pull request, the whole diff kept as an artifact
    assert 'llmcc diff "origin/${GITHUB_BASE_REF}...HEAD" --format markdown --max-chars 0' in runs
    steps = doc["jobs"]["check"]["steps"]
    assert any(str(s.get("uses", "")).startswith("actions/upload-artifact@") for s in steps)
    assert "llmcc ci comment llmcc-comment.md --artifact llmcc-diff.md" in runs  # one comment, updated in place
    publish = doc["jobs"]["publish"]
    env = next(s["env"] for s in publish["steps"] if "env" in s)
    assert set(env) >= {"SOPS_AGE_KEY", "LLMCC_SIGNING_KEY"}


def test_both_ci_files_refresh_the_signed_pointers_on_a_schedule() -> None:
    """Issue 9 §3: readers refuse an expired pointer, so CI re-signs it daily, in the publish group."""
    github = load(REPO_ROOT / WORKFLOWS[0])
    job = github["jobs"]["refresh-pointer"]
    assert job["if"] == "github.event_name == 'schedule'"
    assert job["concurrency"]["group"] == github["jobs"]["publish"]["concurrency"]["group"]
    assert "llmcc publish --refresh-pointer" in "\n".join(scripts(job))
    gitlab = load(REPO_ROOT / WORKFLOWS[1])
    job = gitlab["llmcc-refresh-pointer"]
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert job["resource_group"] == gitlab["llmcc-publish"]["resource_group"]
    assert "llmcc publish --refresh-pointer" in job["script"]


def hook_entries() -> list[tuple[str, str]]:
    out = []
    for name in HOOK_CONFIGS:
        doc = load(REPO_ROOT / name)
        hooks = doc if isinstance(doc, list) else [h for r in doc["repos"] for h in r["hooks"]]
        out += [(name, h["entry"]) for h in hooks if "llmcc" in h["entry"]]
    scaffold = dict(scaffold_files())[".pre-commit-config.yaml"].decode()
    out += [("scaffold", h["entry"]) for r in load(scaffold)["repos"] for h in r["hooks"]]
    return out


@pytest.mark.parametrize(("source", "entry"), hook_entries())
def test_every_hook_entry_parses(source: str, entry: str) -> None:
    args = shlex.split(entry)[1:]
    check_command([*args, "environments/dev.yaml"] if args[-1] != "diff" else args)


def _hook_specs() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for name in HOOK_CONFIGS:
        doc = load(REPO_ROOT / name)
        out += [(name, h) for h in (doc if isinstance(doc, list) else [h for r in doc["repos"] for h in r["hooks"]])]
    scaffold = load(dict(scaffold_files())[".pre-commit-config.yaml"].decode())
    return out + [("scaffold", h) for r in scaffold["repos"] for h in r["hooks"]]


@pytest.mark.parametrize(("source", "hook"), [s for s in _hook_specs() if "llmcc" in s[1]["entry"]])
def test_hooks_that_take_files_end_with_a_double_dash_and_the_guard_sees_every_file(
    source: str, hook: dict[str, Any]
) -> None:
    """README: a staged file named ``-x`` is a file, not an option; the secrets guard is given every staged
    file (a key copied outside environments/ is caught), never a ``files:`` subset."""
    if hook.get("pass_filenames", True):
        assert hook["entry"].endswith(" --"), (source, hook["id"])
    if hook["id"] == "llmcc-secrets-guard":
        assert not {"files", "exclude", "types", "types_or"} & set(hook), (source, hook)
        assert hook.get("always_run") is True, (source, hook)  # an amend with nothing staged is judged too


def test_the_published_hooks() -> None:
    hooks = {h["id"]: h for h in load(REPO_ROOT / ".pre-commit-hooks.yaml")}
    assert set(hooks) == {"llmcc-validate", "llmcc-secrets-guard", "llmcc-diff"}
    assert all(h["language"] == "python" and h["entry"].startswith("llmcc hook ") for h in hooks.values())
    assert hooks["llmcc-validate"]["require_serial"] is True
    assert hooks["llmcc-diff"]["pass_filenames"] is False
    assert hooks["llmcc-diff"]["always_run"] is True


def test_init_ships_the_same_github_workflow() -> None:
    shipped = dict(scaffold_files())[".github/workflows/llmcc.yaml"]
    assert shipped == (REPO_ROOT / WORKFLOWS[0]).read_bytes()


def test_the_commands_are_registered() -> None:
    """``compiler/cli/_commands.py`` lists policy, hook and init (other tests register them if missing)."""
    assert set(ISSUE6_COMMANDS) <= REGISTERED_AT_IMPORT


def test_the_ci_files_run_the_secrets_guard_on_every_file() -> None:
    """Issue 9 §4: CI runs the guard without FILE (every file of the checkout), before it validates;
    on a merge request with ``--since`` its base, so each commit of it is judged too."""
    for f in WORKFLOWS:
        calls = [args for path, args in ci_invocations() if path == f]
        guards = [i for i, a in enumerate(calls) if a[:2] == ["hook", "secrets-guard"]]
        assert all(len(calls[i]) == 2 or calls[i][2] == "--since" for i in guards), f  # never a FILE list
        assert guards[0] < next(i for i, a in enumerate(calls) if a[0] == "validate"), f
        assert "--since" in calls[guards[0]], f  # the merge request's job comes first
    shipped = load(dict(scaffold_files())[".github/workflows/llmcc.yaml"].decode())
    assert 'llmcc hook secrets-guard --since "origin/${GITHUB_BASE_REF}"' in list(scripts(shipped))


def test_the_ci_secrets_guard_step_passes_a_new_repository_and_fails_a_committed_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    import pyrage

    from compiler.cli import main

    repo = tmp_path / "conf"
    assert main(["init", str(repo), "--keys-dir", str(tmp_path / "keys")]) == 0
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "llmcc init"], cwd=repo, check=True)
    capsys.readouterr()
    monkeypatch.chdir(repo)  # CI runs at the checkout's root
    (step,) = {tuple(args) for _, args in ci_invocations() if args == ["hook", "secrets-guard"]}  # on main
    assert main(list(step)) == 0
    assert capsys.readouterr().err.startswith("llmcc: secrets-guard ok: ")
    (repo / "keys/ci.agekey").write_text(f"{pyrage.x25519.Identity.generate()}\n")
    subprocess.run(["git", "add", "-f", "keys/ci.agekey"], cwd=repo, check=True)  # *.agekey is ignored: forced
    assert main(list(step)) == 1
    assert capsys.readouterr().err.startswith("keys/ci.agekey:1:1: age identity: private key material")
    (repo / "keys/ci.agekey").unlink()
