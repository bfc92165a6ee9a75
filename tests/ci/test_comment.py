"""``llmcc ci comment``: the marked comment's body, the cut at the platform's limit, the platform's variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.ci.comment import comment_body, is_marked, marker_line
from compiler.ci.forges import GitHubForge, detect_platform
from compiler.cli import main
from compiler.errors import UsageError
from tests.ci._forge import GITHUB_TOKEN, running_forge

MARKER = "<!-- llmcc:diff -->"


def _section(i: int, lines: int) -> str:
    body = "\n".join(f'  "key_{i}_{j}": "{"v" * 60}",' for j in range(lines))
    return f"\n<details><summary>section {i}</summary>\n\n```json\n{{\n{body}\n}}\n```\n</details>\n"


def test_a_body_under_the_limit_is_the_marker_and_the_text() -> None:
    assert comment_body("hello\n", MARKER, limit=100, artifact=None) == f"{MARKER}\nhello\n"
    assert is_marked(f"{MARKER}\nhello\n", MARKER)
    assert not is_marked(f"quote:\n{MARKER}\n", MARKER)


def test_a_long_body_is_cut_inside_a_block_closed_and_points_at_the_artifact() -> None:
    text = "### llmcc diff\n" + "".join(_section(i, 200) for i in range(10))
    body = comment_body(text, MARKER, limit=20_000, artifact="https://ci.example/run/1 (artifact llmcc-diff.md)")
    assert len(body) <= 20_000
    assert body.startswith(MARKER + "\n### llmcc diff\n")
    assert body.count("<details>") == body.count("</details>")
    assert body.count("```") % 2 == 0
    tail = body.rsplit("\n\n", 1)[1]
    assert tail.startswith("> **Cut:** this comment shows the first ")
    assert tail.endswith(
        f" of {len(text):,} characters (the limit of a comment is 20,000); the whole diff is in the job artifact:"
        " https://ci.example/run/1 (artifact llmcc-diff.md)\n"
    )


@pytest.mark.parametrize("limit", [300, 1_000, 5_000])
def test_any_limit_gives_balanced_markdown_under_it(limit: int) -> None:
    text = "".join(_section(i, 30) for i in range(5))
    body = comment_body(text, MARKER, limit=limit, artifact=None)
    assert len(body) <= limit
    assert body.count("<details>") == body.count("</details>")
    assert body.count("```") % 2 == 0
    assert body.endswith("the whole diff is in this job's artifacts\n")


@pytest.mark.parametrize("name", ["", "a -->", "x" * 65, "two words"])
def test_a_marker_that_could_break_the_html_comment_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="use 1-64 letters"):
        marker_line(name)


def test_the_cli_cuts_at_githubs_limit_and_names_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "llmcc-comment.md"
    big.write_text("".join(_section(i, 100) for i in range(30)))
    with running_forge() as forge:
        for k, v in {
            "GITHUB_ACTIONS": "true",
            "GITHUB_TOKEN": GITHUB_TOKEN,
            "GITHUB_REPOSITORY": "acme/conf",
            "GITHUB_REF": "refs/pull/12/merge",
            "GITHUB_API_URL": forge.url,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": "77",
        }.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
        assert main(["ci", "comment", str(big), "--artifact", "llmcc-diff.md"]) == 0
        ((_, body),) = forge.thread("acme/conf#12")
    assert capsys.readouterr().err == "llmcc: ci comment: created github comment 1001 (cut to the platform's limit)\n"
    assert len(body) <= GitHubForge.limit
    assert body.endswith(
        "the whole diff is in the job artifact: https://github.example/acme/conf/actions/runs/77"
        " (artifact llmcc-diff.md)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["ci", "comment", "missing.md", "--platform", "github"],
            "llmcc: ci comment: missing.md: No such file or directory\n",
        ),
        (
            ["ci", "comment", "x.md", "--marker", "a b"],
            "llmcc: ci comment: marker 'a b': use 1-64 letters, digits, '.', '_' or '-'\n",
        ),
        (
            ["ci", "comment", "x.md"],
            "llmcc: ci comment: not on GitHub Actions or GitLab CI; give --platform github|gitlab\n",
        ),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.md").write_text("x")
    for var in ("GITHUB_ACTIONS", "GITLAB_CI"):
        monkeypatch.delenv(var, raising=False)
    assert main(argv) == 2
    assert capsys.readouterr().err == message


def test_the_pull_request_number_comes_from_the_event_then_the_ref(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 5}}))
    env = {
        "GITHUB_TOKEN": "t",
        "GITHUB_REPOSITORY": "a/b",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REF": "refs/pull/9/merge",
    }
    assert GitHubForge(env)._number == 5
    assert GitHubForge({**env, "GITHUB_EVENT_PATH": ""})._number == 9
    assert GitHubForge({**env, "LLMCC_PR_NUMBER": "3"})._number == 3
    with pytest.raises(UsageError, match="not a pull request"):
        GitHubForge({**env, "GITHUB_EVENT_PATH": "", "GITHUB_REF": "refs/heads/main"})
    event.write_text("{")
    with pytest.raises(UsageError, match=r"GITHUB_EVENT_PATH: "):
        GitHubForge(env)
    assert detect_platform({"GITLAB_CI": "true"}) == "gitlab"


def test_an_unreachable_api_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "c.md").write_text("x")
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", "a/b")
    monkeypatch.setenv("LLMCC_PR_NUMBER", "1")
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    assert main(["ci", "comment", str(tmp_path / "c.md"), "--platform", "github"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmcc: github API: GET /repos/a/b/issues/1/comments: ")
    assert GITHUB_TOKEN not in err
    assert len(err.splitlines()) == 1
