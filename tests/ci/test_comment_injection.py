"""Issue 13, attacked: a pull request's own text must not break out of the review comment's code blocks.

The CI templates put ``llmcc validate``'s report in a code fence of the one
marked comment. The report quotes the repository's text (a policy's
description, a waiver's reason, a key of llmcc.yaml); a line of it that
starts with a fence would close the block, and what follows would be live
markdown: ``<!--`` hides the rest of the comment (the diff), a heading claims
"validate ok". Every line after a finding's first is indented four spaces or
more, which no fence closer is (CommonMark 4.5).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.diagnostics import Diagnostic
from tests.ci._forge import GITHUB_TOKEN, GITLAB_TOKEN, running_forge
from tests.ci._runner import run_github_job, run_gitlab_job
from tests.ci.test_templates_run import MARKER, _checkout, _github_env, _gitlab_env, _load, seed_remote

EVIL = "fine\n```\n</details>\n\n## llmcc: validate ok\r```\r\n<!--"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _live_lines(markdown: str) -> list[str]:
    """The lines of ``markdown`` outside fenced code blocks (CommonMark 4.5's opening and closing rules)."""
    live: list[str] = []
    fence: str | None = None
    for line in re.split(r"\r\n?|\n", markdown):
        m = _FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
            else:
                live.append(line)
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line[m.end() :].strip():
            fence = None
    return live


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_a_finding_of_several_lines_indents_all_but_its_first() -> None:
    d = Diagnostic(message=f"policy x failed: {EVIL}", notes=("rule: true", f"policy: {EVIL}"))
    first, *rest = d.format().split("\n")
    assert first == "policy x failed: fine"
    assert len(rest) == 14  # 6 more lines of the message, the 2 notes, 6 more lines of the second
    assert all(line.startswith("    ") for line in rest)
    assert "\r" not in d.format()
    assert _live_lines("```\n" + d.format() + "\n```\n") == [""]


def test_an_error_line_quoting_a_key_of_several_lines_stays_in_its_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    assert main(["init", str(repo), "--keys-dir", str(tmp_path / "keys")]) == 0
    with (repo / "llmcc.yaml").open("a") as f:
        f.write('"x\\n```\\n<!--": 1\n')
    capsys.readouterr()
    assert main(["-C", str(repo), "validate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmcc: llmcc.yaml:")
    assert all(line.startswith("    ") for line in err.splitlines()[1:])
    assert _live_lines("```\n" + err + "```\n") == [""]


def _github_comment(tmp_path: Path, bare: Path) -> tuple[Path, str]:
    """The GitHub check job run as written on the pull request's merge checkout: (checkout, comment it left)."""
    with running_forge() as forge:
        work = _checkout(tmp_path, bare, "run", merge=True)
        steps = run_github_job(
            _load("hooks/ci/github-workflow.yaml"),
            "check",
            cwd=work,
            env=_github_env(tmp_path, forge, work),
            secrets={"GITHUB_TOKEN": GITHUB_TOKEN},
        )
        assert [(s.name, s.code) for s in steps if s.code != 0] == []
        (body,) = [b for _, b in forge.thread("acme/platform-config#7") if b.startswith(MARKER)]
    return work, body


@pytest.fixture
def evil_remote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A bare remote whose feature branch adds a warning policy with a description that tries to break out."""
    seed, bare = seed_remote(tmp_path, capsys)
    with (seed / "policies" / "assistant.yaml").open("a", newline="") as f:
        f.write("\n- name: sneaky\n  severity: warning\n  rule: config.assistant.temperature > 5.0\n")
        f.write(f"  description: {EVIL!r}\n".replace("'", '"'))
    _git(seed, "commit", "-qam", "a policy `</details><!-- llmcc:diff -->` $(touch pwned)")
    _git(seed, "push", "-q", "origin", "main", "feature")
    return bare


def test_a_policy_description_cannot_break_out_of_the_github_comment(tmp_path: Path, evil_remote: Path) -> None:
    work, body = _github_comment(tmp_path, evil_remote)
    assert "policy sneaky failed" in body
    live = _live_lines(body)
    assert "## llmcc: validate ok" not in live
    assert not any(line.startswith("<!--") for line in live[1:])
    assert not any(line.strip() == "</details>" for line in live[: live.index("### llmcc validate") + 2])
    assert not (work / "pwned").exists()


_OUTPUTS = ("llmcc-validate.txt", "llmcc-diff.md", "llmcc-diff.err", "llmcc-comment.md")


@pytest.fixture
def symlink_remote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A bare remote whose feature branch commits the templates' output files as symlinks out of the checkout.

    The job's shell writes those files with ``>``, which follows a symlink: on a
    self-hosted runner the pull request would choose what file of the runner's
    user to overwrite with text it writes itself (a diff of its values), e.g.
    a shell start-up file that later jobs, holding secrets, run.
    """
    seed, bare = seed_remote(tmp_path, capsys)
    for name in _OUTPUTS:
        (seed / name).symlink_to(tmp_path / "runner-home" / f"{name}.profile")
    _git(seed, "add", "-A")
    _git(seed, "commit", "-qm", "outputs point at the runner's home")
    _git(seed, "push", "-q", "origin", "main", "feature")
    return bare


def _runner_home(tmp_path: Path) -> Path:
    home = tmp_path / "runner-home"
    home.mkdir(exist_ok=True)
    for name in _OUTPUTS:
        (home / f"{name}.profile").write_text("export PATH=/usr/bin\n")
    return home


def _untouched(home: Path) -> None:
    assert {p.name: p.read_text() for p in home.iterdir()} == {
        f"{name}.profile": "export PATH=/usr/bin\n" for name in _OUTPUTS
    }


def test_the_github_check_job_writes_no_file_through_a_committed_symlink(tmp_path: Path, symlink_remote: Path) -> None:
    home = _runner_home(tmp_path)
    work, body = _github_comment(tmp_path, symlink_remote)
    _untouched(home)
    assert "llmcc: validate ok" in body
    assert "export PATH" not in body
    assert not (work / "llmcc-diff.md").is_symlink()  # the artifact step uploads our diff, not the link's target


def test_the_gitlab_diff_job_writes_no_file_through_a_committed_symlink(tmp_path: Path, symlink_remote: Path) -> None:
    home = _runner_home(tmp_path)
    with running_forge() as forge:
        work = _checkout(tmp_path, symlink_remote, "run")
        env = _gitlab_env(forge, work, token=GITLAB_TOKEN)
        run = run_gitlab_job(_load("hooks/ci/gitlab-ci.yaml"), "llmcc-diff", cwd=work, env=env)
        assert run.code == 0, run.stderr
        (body,) = [b for _, b in forge.thread("42#3") if b.startswith(MARKER)]
    _untouched(home)
    assert "llmcc: validate ok" in body
    assert not (work / "llmcc-diff.md").is_symlink()
