"""`llmcc diff` on a real git history: blast radius, formats, defaults, errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from compiler.cli import diff as diff_cmd
from tests.conftest import GitRepo
from tests.diff._support import PROMPT, run_command, seed, write

GOLDEN = Path(__file__).parent / "golden" / "diff_head1_head.md"


def _review_change(repo: GitRepo) -> str:
    """Bob's commit: a staging variable, a reordered route list, a prompt edit, a new and a dropped value."""
    seed(repo)
    write(
        repo,
        {
            "environments/staging.yaml": "vars:\n  temperature: 0.3\n",
            "templates/engine.yaml": (repo.path / "templates/engine.yaml")
            .read_text()
            .replace("fallbacks: [small, medium, large]", "fallbacks: [large, small, medium]")
            .replace(
                "  - {name: chat, timeout: 30}\n  - {name: embed, timeout: 10}\n",
                "  - {name: embed, timeout: 10}\n  - {name: chat, timeout: 45}\n",
            ),
            "environments/base.yaml": (repo.path / "environments/base.yaml")
            .read_text()
            .replace("Line 10 of the system prompt.", "Line 10 of the system prompt, reworded."),
            "environments/prod.yaml": "modules:\n  engine:\n    model:\n      max_tokens: 4000\n      region: eu\n",
            "environments/tenants/acme.yaml": None,
        },
    )
    return repo.commit("Tune staging and routes", author="Bob Builder <bob@example.com>", date="2026-01-02T10:00:00Z")


def _normalise(text: str) -> str:
    return re.sub(r"\b[0-9a-f]{7}\b", "<sha>", text)


def _sides(repo: GitRepo, *, shared: bool) -> tuple:
    from compiler.cli import Context
    from compiler.cli.diff import _rev_side
    from compiler.compile.repository import Repository
    from compiler.compile.sharing import ParseCache
    from compiler.diff.compute import Side
    from compiler.secrets.identity import Identities
    from compiler.secrets.sources import SopsOpener
    from compiler.sources.gitrev import GitRevTree

    ctx = Context(root=repo.path, quiet=True, debug=False)
    if shared:
        cache = ParseCache()
        return tuple(_rev_side(ctx, rev, rev, cache, Identities()) for rev in ("HEAD~1", "HEAD"))
    return tuple(
        Side(repo=Repository(GitRevTree(repo.path, rev), open_secrets=SopsOpener(None)), label=rev)
        for rev in ("HEAD~1", "HEAD")
    )


def test_markdown_between_two_commits_matches_golden(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    _review_change(git_repo)
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD", "--format", "markdown") == 0
    out = _normalise(capsys.readouterr().out)
    if os.environ.get("LLMCC_UPDATE_GOLDEN"):  # regenerate: LLMCC_UPDATE_GOLDEN=1 pytest tests/diff
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(out)
    assert out == GOLDEN.read_text()


def test_text_summary_first_and_line_diff_for_prompts(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    _review_change(git_repo)
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD", "--exit-code") == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert _normalise(lines[0]) == "llmcc diff HEAD~1 (<sha>) -> HEAD (<sha>): 6 of 6 targets change, 34 values"
    assert lines[1].split() == ["dev", "4", "values", "in", "engine"]
    assert "# prod, prod@globex (2 targets)" in lines
    assert "\x1b[" not in out  # no colour when stdout is not a terminal
    assert "  ~ $.model.temperature: 0.4 -> 0.3" in out
    assert "  > $.routes[name=embed]: moved from index 1 to 0" in out
    assert '  > $.fallbacks[0]: "large" moved from index 2 to 0' in out
    assert "  ~ $.routes[name=chat].timeout: 30 -> 45" in out
    assert '  + $.model.region: "eu"' in out
    assert "  ~ $.model.max_tokens: 2000 -> 4000" in out  # prod@acme lost its tenant file
    # The prompt shows as a unified diff with 3 lines of context, not as two whole values.
    prompt = out.split("  ~ $.prompt:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.strip() for line in prompt] == [
        "@@ -7,7 +7,7 @@",
        *(f"Line {i} of the system prompt." for i in (7, 8, 9)),
        "-Line 10 of the system prompt.",
        "+Line 10 of the system prompt, reworded.",
        *(f"Line {i} of the system prompt." for i in (11, 12, 13)),
    ]
    assert "Line 1 of" not in out


def test_json_is_one_document(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    _review_change(git_repo)
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD", "--format", "json", "-t", "prod") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["changed"] is True
    assert [t["target"] for t in doc["targets"]] == ["prod"]
    by_path = {c["path"]: c for c in doc["targets"][0]["changes"]}
    assert by_path["$.model.temperature"] == {
        "module": "engine",
        "path": "$.model.temperature",
        "kind": "changed",
        "secret": False,
        "old": 0.4,
        "new": 0.3,
    }
    assert by_path["$.prompt"]["new"] == PROMPT.replace(
        "Line 10 of the system prompt.", "Line 10 of the system prompt, reworded."
    )


def test_unchanged_targets_are_not_compiled_and_exit_code_0(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(git_repo)
    write(git_repo, {"environments/dev.yaml": "vars:\n  model: small\n"})
    git_repo.commit("dev model", author="Cy Dev <cy@example.com>")
    from compiler.diff.compute import compute_diff

    result = compute_diff(*_sides(git_repo, shared=True), key=b"k" * 32)
    assert {t.target: (t.status, t.compiled) for t in result.targets} == {
        "dev": ("changed", True),
        "staging": ("unchanged", False),
        "prod": ("unchanged", False),
        "staging@acme": ("unchanged", False),
        "prod@acme": ("unchanged", False),
        "prod@globex": ("unchanged", False),
    }
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD", "-t", "prod", "--exit-code") == 0
    assert capsys.readouterr().out.endswith("no changes in 1 target\n")


@pytest.mark.parametrize("change", ["review", "tenant"])
def test_skipping_and_sharing_give_the_same_changes_as_compiling_everything(git_repo: GitRepo, change: str) -> None:
    from compiler.diff.compute import compute_diff

    if change == "review":
        _review_change(git_repo)
    else:
        seed(git_repo)
        write(git_repo, {"environments/tenants/acme.yaml": "vars:\n  model: acme-xl\n"})
        git_repo.commit("acme model", author="Frank Example <frank@example.com>")
    fast = compute_diff(*_sides(git_repo, shared=True), key=b"k" * 32)
    full = compute_diff(*_sides(git_repo, shared=False), key=b"k" * 32)
    assert [(t.target, t.status, t.changes) for t in fast.targets] == [
        (t.target, t.status, t.changes) for t in full.targets
    ]
    assert all(t.compiled for t in full.targets)
    if change == "tenant":
        assert [t.target for t in fast.changed] == ["staging@acme", "prod@acme"]
        assert [t.target for t in fast.targets if t.compiled] == ["staging@acme", "prod@acme"]


def test_default_base_on_main_shows_uncommitted_changes(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    seed(git_repo)
    write(git_repo, {"environments/dev.yaml": "vars:\n  model: small\n"})
    assert run_command(diff_cmd, git_repo.path) == 0
    out = capsys.readouterr().out
    assert _normalise(out.splitlines()[0]) == "llmcc diff HEAD (<sha>) -> working tree: 1 of 6 targets change, 1 value"
    assert '  ~ $.model.name: "tiny" -> "small"' in out


def test_default_base_on_a_branch_is_the_merge_base(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    seed(git_repo)
    git_repo.git("checkout", "-q", "-b", "feature")
    write(git_repo, {"environments/dev.yaml": "vars:\n  model: small\n"})
    git_repo.commit("feature work", author="Bob Builder <bob@example.com>")
    git_repo.git("checkout", "-q", "main")
    write(git_repo, {"environments/staging.yaml": "vars:\n  temperature: 0.1\n"})
    git_repo.commit("main moves on", author="Ada Author <ada@example.com>")
    git_repo.git("checkout", "-q", "feature")
    write(git_repo, {"environments/prod.yaml": "modules:\n  engine:\n    model:\n      max_tokens: 1\n"})
    assert run_command(diff_cmd, git_repo.path, "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["base"].startswith("merge-base (")
    assert doc["head"] == "working tree"
    changed = {t["target"]: [c["path"] for c in t["changes"]] for t in doc["targets"] if t["changes"]}
    # the branch's commit and the uncommitted edit; not main's later staging change
    assert changed == {"dev": ["$.model.name"], "prod": ["$.model.max_tokens"], "prod@globex": ["$.model.max_tokens"]}


def test_bad_revision_is_one_line_exit_2(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    seed(git_repo)
    assert run_command(diff_cmd, git_repo.path, "no-such-rev", "HEAD") == 2
    captured = capsys.readouterr()
    assert captured.err == "llmcc: unknown revision 'no-such-rev'\n"
    assert captured.out == ""


def test_no_commit_yet_is_a_usage_error(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    write(git_repo, {"llmcc.yaml": "project: x\n"})
    assert run_command(diff_cmd, git_repo.path) == 2
    assert "no commit yet" in capsys.readouterr().err


def test_unknown_target_is_exit_2(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    seed(git_repo)
    assert run_command(diff_cmd, git_repo.path, "HEAD", "HEAD", "-t", "qa") == 2
    assert capsys.readouterr().err.startswith("llmcc: unknown target 'qa'")


def test_symlink_in_a_revision_is_refused(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    seed(git_repo)
    (git_repo.path / "environments/dev.yaml").unlink()
    (git_repo.path / "environments/dev.yaml").symlink_to("/etc/hostname")
    git_repo.commit("sneaky link", author="Mallory <m@example.com>")
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD") == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()]
    assert "environments/dev.yaml: is a symlink at HEAD; symlinks are refused" in err


def test_added_and_removed_targets(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    seed(git_repo)
    manifest = (git_repo.path / "llmcc.yaml").read_text()
    write(git_repo, {"llmcc.yaml": manifest.replace("  dev: {}\n", "  qa: {}\n"), "environments/qa.yaml": "vars: {}\n"})
    git_repo.commit("dev becomes qa", author="Bob Builder <bob@example.com>")
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD", "--format", "markdown") == 0
    out = capsys.readouterr().out
    assert "| `qa` | target added | engine |" in out
    assert "| `dev` | target removed | engine |" in out


def test_example_repository(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    prod = example_repo.path / "environments" / "prod.yaml"
    prod.write_text(prod.read_text().replace("temperature: 0.3", "temperature: 0.25"))
    example_repo.commit("Cooler prod", author="Bob Builder <bob@example.com>")
    assert run_command(diff_cmd, example_repo.path, "HEAD~1", "HEAD", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    changed = {t["target"]: [(c["path"], c["old"], c["new"]) for c in t["changes"]] for t in doc["targets"]}
    assert {t: c for t, c in changed.items() if c} == {
        "prod": [("$.model.temperature", 0.3, 0.25)],
        "prod@globex": [("$.model.temperature", 0.3, 0.25)],  # prod@acme sets its own
    }
