"""``llmcc ci comment``: the marked comment's body, the cut at the platform's limit, the platform's variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.ci.comment import comment_body, is_marked, marker_line
from compiler.ci.forges import GitHubForge, detect_platform
from compiler.cli import main
from compiler.errors import UsageError
from tests.ci._forge import GITHUB_APP_TOKEN, GITHUB_PAT, GITHUB_TOKEN, GITHUB_USERS, GITLAB_TOKEN, running_forge

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
        forge.seed("acme/conf#12", "LGTM")
        assert main(["ci", "comment", str(big), "--artifact", "llmcc-diff.md"]) == 0
        assert main(["ci", "comment", str(big), "--artifact", "llmcc-diff.md"]) == 0
        (_, (_, body)) = forge.thread("acme/conf#12")
        monkeypatch.setenv("GITHUB_API_URL", f"{forge.url}/elsewhere")
        assert main(["ci", "comment", str(big), "--artifact", "llmcc-diff.md"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "llmcc: ci comment: created github comment 1002 (cut to the platform's limit)",
        "llmcc: ci comment: updated github comment 1002 (cut to the platform's limit)",
        "llmcc: github API: GET /elsewhere/repos/acme/conf/issues/12/comments: HTTP 404 Not Found",
    ]
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


def _gitlab(monkeypatch: pytest.MonkeyPatch, url: str, token: str) -> None:
    for var in ("GITHUB_ACTIONS", "CI_JOB_URL"):
        monkeypatch.delenv(var, raising=False)
    for k, v in {
        "GITLAB_CI": "true",
        "LLMCC_NOTES_TOKEN": token,
        "CI_API_V4_URL": f"{url}/api/v4",
        "CI_PROJECT_ID": "acme/conf",
        "CI_MERGE_REQUEST_IID": "4",
    }.items():
        monkeypatch.setenv(k, v)


def test_gitlab_notes_are_created_once_then_updated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "llmcc-diff.md"
    with running_forge() as forge:
        _gitlab(monkeypatch, forge.url, GITLAB_TOKEN)
        forge.seed("acme%2Fconf#4", f"{MARKER}\nmentioned in a commit", system=True)
        note.write_text("first\n")
        assert main(["ci", "comment", str(note)]) == 0
        note.write_text("second\n")
        assert main(["ci", "comment", str(note)]) == 0
        notes = forge.thread("acme%2Fconf#4")
        writes = forge.writes()
    assert notes[1] == (1002, f"{MARKER}\nsecond\n")
    assert len(notes) == 2
    assert writes == [
        ("POST", "/api/v4/projects/acme%2Fconf/merge_requests/4/notes"),
        ("PUT", "/api/v4/projects/acme%2Fconf/merge_requests/4/notes/1002"),
    ]
    assert capsys.readouterr().err.splitlines() == [
        "llmcc: ci comment: created gitlab comment 1002",
        "llmcc: ci comment: updated gitlab comment 1002",
    ]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (
            "html",
            "llmcc: gitlab API: GET /api/v4/projects/acme%2Fconf/merge_requests/4/notes: the answer is not JSON\n",
        ),
        (
            "object",
            "llmcc: gitlab API: GET /api/v4/projects/acme%2Fconf/merge_requests/4/notes: not a list of comments\n",
        ),
        ("noid", "llmcc: gitlab API: POST notes: the answer names no note id\n"),
        ("redirect", "llmcc: gitlab API: GET /api/v4/projects/acme%2Fconf/merge_requests/4/notes: HTTP 302 Found\n"),
        (None, None),
    ],
)
def test_a_strange_or_refusing_api_is_one_line_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    broken: str | None,
    message: str | None,
) -> None:
    (tmp_path / "c.md").write_text("x")
    with running_forge() as forge:
        forge.broken = broken
        _gitlab(monkeypatch, forge.url, GITLAB_TOKEN if broken else "glpat-revoked")
        assert main(["ci", "comment", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err
    if message is None:  # a revoked token: the advice names the unprotected variable
        assert err.startswith("llmcc: gitlab API: GET /api/v4/projects/acme%2Fconf/merge_requests/4/notes: HTTP 401 ")
        assert "on merge-request pipelines GitLab passes only variables that are not protected" in err
        assert "glpat-revoked" not in err
    else:
        assert err == message


def test_github_refusal_and_a_comment_without_an_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "c.md").write_text("x")
    with running_forge() as forge:
        for k, v in {"GITHUB_REPOSITORY": "a/b", "LLMCC_PR_NUMBER": "2", "GITHUB_API_URL": forge.url}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("GITHUB_RUN_ID", raising=False)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_wrong")
        assert main(["ci", "comment", str(tmp_path / "c.md"), "--platform", "github"]) == 2
        assert capsys.readouterr().err == (
            "llmcc: github API: GET /repos/a/b/issues/2/comments: HTTP 401 Unauthorized (the job needs"
            " `permissions: pull-requests: write` and GITHUB_TOKEN in its env)\n"
        )
        monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
        forge.broken = "noid"
        assert main(["ci", "comment", str(tmp_path / "c.md"), "--platform", "github"]) == 2
        assert capsys.readouterr().err == "llmcc: github API: POST comments: the answer names no comment id\n"
    assert (
        GitHubForge({"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "a/b", "LLMCC_PR_NUMBER": "1"}).artifact_url("x") is None
    )


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_a_marked_comment_by_another_user_is_never_edited(
    platform: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anyone may post a comment starting with the marker: the diff goes into the token's own comment only.

    Editing another user's comment would fail (403) on every run, or, with a maintainer's token, put
    the diff in a comment its author can rewrite afterwards.
    """
    note = tmp_path / "llmcc-diff.md"
    with running_forge() as forge:
        if platform == "gitlab":
            _gitlab(monkeypatch, forge.url, GITLAB_TOKEN)
            thread = "acme%2Fconf#4"
        else:
            for k, v in {
                "GITHUB_ACTIONS": "true",
                "GITHUB_TOKEN": GITHUB_TOKEN,
                "GITHUB_REPOSITORY": "acme/conf",
                "GITHUB_REF": "refs/pull/12/merge",
                "GITHUB_API_URL": forge.url,
            }.items():
                monkeypatch.setenv(k, v)
            monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
            thread = "acme/conf#12"
        spoof = forge.seed(thread, f"{MARKER}\nno config change, merge it", author="mallory")
        note.write_text("first\n")
        assert main(["ci", "comment", str(note)]) == 0
        note.write_text("second\n")
        assert main(["ci", "comment", str(note)]) == 0
        comments = forge.thread(thread)
    assert comments == [(spoof, f"{MARKER}\nno config change, merge it"), (1002, f"{MARKER}\nsecond\n")]
    assert capsys.readouterr().err.splitlines() == [
        f"llmcc: ci comment: created {platform} comment 1002",
        f"llmcc: ci comment: updated {platform} comment 1002",
    ]


@pytest.mark.parametrize(
    ("token", "author"),
    [
        (GITHUB_PAT, None),  # a person's token: GET /user names them
        (GITHUB_APP_TOKEN, "llmcc-app[bot]"),  # a GitHub App's token: GET /user refuses it, so it is named
    ],
)
def test_the_github_author_is_the_tokens_user_or_the_one_named(
    token: str, author: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = tmp_path / "llmcc-diff.md"
    note.write_text("diff\n")
    with running_forge() as forge:
        for k, v in {
            "GITHUB_TOKEN": token,
            "GITHUB_REPOSITORY": "acme/conf",
            "LLMCC_PR_NUMBER": "3",
            "GITHUB_API_URL": forge.url,
        }.items():
            monkeypatch.setenv(k, v)
        if author is None:
            monkeypatch.delenv("LLMCC_COMMENT_AUTHOR", raising=False)
        else:
            monkeypatch.setenv("LLMCC_COMMENT_AUTHOR", author)
        forge.seed("acme/conf#3", f"{MARKER}\nold", author="mallory")
        forge.seed("acme/conf#3", f"{MARKER}\nold")  # the Actions bot's, from before
        own = forge.seed("acme/conf#3", f"{MARKER}\nold", author=GITHUB_USERS[token])
        assert main(["ci", "comment", str(note), "--platform", "github"]) == 0
        bodies = forge.thread("acme/conf#3")
    assert bodies == [(own - 2, f"{MARKER}\nold"), (own - 1, f"{MARKER}\nold"), (own, f"{MARKER}\ndiff\n")]


def test_a_gitlab_user_without_an_id_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "llmcc-diff.md"
    note.write_text("diff\n")
    with running_forge() as forge:
        _gitlab(monkeypatch, forge.url, GITLAB_TOKEN)
        forge.seed("acme%2Fconf#4", f"{MARKER}\nold")
        forge.broken = "anonymous"
        assert main(["ci", "comment", str(note)]) == 2
    assert capsys.readouterr().err == "llmcc: gitlab API: GET /user: the answer names no user id\n"


# --- --output / LLMCC_COMMENT_OUTPUT: the body to a file, nothing posted -----------------------------


def test_output_writes_the_body_that_would_be_posted_and_needs_no_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_TOKEN", "LLMCC_NOTES_TOKEN", "LLMCC_COMMENT_OUTPUT"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "c.md").write_text("### llmcc diff\nhello\n")
    out = tmp_path / "comment.md"
    assert main(["ci", "comment", str(tmp_path / "c.md"), "--output", str(out)]) == 0
    assert out.read_text() == f"{MARKER}\n### llmcc diff\nhello\n"
    assert capsys.readouterr().err == f"llmcc: ci comment: wrote the github comment to {out}, posted nothing\n"
    assert main(["ci", "comment", str(tmp_path / "c.md"), "--output", "-", "--marker", "review"]) == 0
    assert capsys.readouterr().out == "<!-- llmcc:review -->\n### llmcc diff\nhello\n"


@pytest.mark.parametrize(("platform", "cut"), [("GITHUB_ACTIONS", True), ("GITLAB_CI", False), (None, True)])
def test_the_output_variable_switches_a_template_step_to_a_file_cut_at_the_platform_limit(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    platform: str | None,
    cut: bool,
) -> None:
    """The step ``llmcc ci comment llmcc-comment.md --artifact llmcc-diff.md`` as written, with the variable set."""
    for var in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_TOKEN", "LLMCC_NOTES_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    if platform:
        monkeypatch.setenv(platform, "true")
    out = tmp_path / "comment.md"
    monkeypatch.setenv("LLMCC_COMMENT_OUTPUT", str(out))
    text = "".join(_section(i, 200) for i in range(10))  # ~140,000 characters: over GitHub's limit only
    (tmp_path / "c.md").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["ci", "comment", "c.md", "--artifact", "llmcc-diff.md"]) == 0
    body = out.read_text()
    assert body.startswith(MARKER + "\n")
    if cut:
        assert len(body) <= 65_536
        assert body.endswith("the whole diff is in the job artifact: llmcc-diff.md\n")
        assert capsys.readouterr().err.endswith("posted nothing (cut to the platform's limit)\n")
    else:
        assert body == f"{MARKER}\n{text}"


def test_an_output_that_cannot_be_written_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.md").write_text("hello\n")
    code = main(["ci", "comment", str(tmp_path / "c.md"), "--output", str(tmp_path / "no" / "such" / "dir.md")])
    assert code == 2
    assert capsys.readouterr().err == (
        f"llmcc: ci comment: {tmp_path / 'no' / 'such' / 'dir.md'}: No such file or directory\n"
    )


# --- a leftover LLMCC_COMMENT_OUTPUT in CI fails closed (issue 13 "Fragile") --------------------------


@pytest.mark.parametrize(
    ("platform", "token"), [("GITHUB_ACTIONS", "GITHUB_TOKEN"), ("GITLAB_CI", "LLMCC_NOTES_TOKEN")]
)
def test_the_output_variable_with_a_posting_token_in_ci_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], platform: str, token: str
) -> None:
    for var in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_TOKEN", "LLMCC_NOTES_TOKEN", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv(platform, "true")
    monkeypatch.setenv(token, "t0ken-value-never-printed")
    out = tmp_path / "comment.md"
    monkeypatch.setenv("LLMCC_COMMENT_OUTPUT", str(out))
    (tmp_path / "c.md").write_text("hello\n")
    assert main(["ci", "comment", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"llmcc: ci comment: LLMCC_COMMENT_OUTPUT is set ({out}) and so is {token}: this step would post nothing"
        f" while the job looks like it posted; unset LLMCC_COMMENT_OUTPUT to post, or pass --output {out}"
        " to write the comment only\n"
    )
    assert "t0ken" not in err
    assert not out.exists()
    # an explicit --output is a choice: written, and the job summary says nothing was posted
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["ci", "comment", str(tmp_path / "c.md"), "--output", str(out)]) == 0
    assert out.read_text() == f"{MARKER}\nhello\n"
    assert summary.read_text() == (
        f"> [!WARNING]\n> llmcc ci comment posted **no** review comment: --output sent it to `{out}`.\n\n"
    )


def test_the_output_variable_without_a_token_in_ci_writes_and_says_so_in_the_job_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("GITLAB_CI", "GITHUB_TOKEN", "LLMCC_NOTES_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("LLMCC_COMMENT_OUTPUT", "-")
    (tmp_path / "c.md").write_text("hello\n")
    assert main(["ci", "comment", str(tmp_path / "c.md")]) == 0
    assert capsys.readouterr().out == f"{MARKER}\nhello\n"
    assert summary.read_text() == (
        "earlier step\n> [!WARNING]\n> llmcc ci comment posted **no** review comment:"
        " LLMCC_COMMENT_OUTPUT sent it to the job log.\n\n"
    )
    # off CI (a laptop's dry run), the variable with a token set is the user's choice: no refusal, no summary
    monkeypatch.setenv("CI", "false")
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    summary.unlink()
    assert main(["ci", "comment", str(tmp_path / "c.md")]) == 0
    assert not summary.exists()
    # a summary that cannot be written is an error, not a silent skip
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no" / "summary.md"))
    assert main(["ci", "comment", str(tmp_path / "c.md")]) == 2
    assert capsys.readouterr().err.endswith(
        f"GITHUB_STEP_SUMMARY {tmp_path / 'no' / 'summary.md'}: No such file or directory\n"
    )
