"""``llmcc ci comment FILE``: post FILE as the one marked comment of the pull/merge request, updated in place.

Run by the CI templates (``hooks/ci/``) after ``llmcc diff --format markdown``.
The first run creates the comment; every later run of the same pull request
updates it (found by a hidden marker line, among the token's own user's
comments only), so a review has one diff comment, always the latest (issue
13 §3). A body over the platform's limit is cut, with a note pointing at the
job artifact that holds the whole file (``compiler.ci.comment``). Python's
standard library does the HTTP: no ``gh``, ``glab`` or ``curl`` is needed on
the runner.

Environment: GitHub Actions — ``GITHUB_TOKEN`` (the step's env),
``GITHUB_REPOSITORY``, ``GITHUB_EVENT_PATH`` or ``GITHUB_REF``,
``GITHUB_API_URL``, ``LLMCC_COMMENT_AUTHOR`` (the login a GitHub App's token
posts as). GitLab CI — ``LLMCC_NOTES_TOKEN`` (a project access token,
api scope; a masked variable that is NOT protected, so merge-request pipelines
of unprotected branches get it), ``CI_API_V4_URL``, ``CI_PROJECT_ID``,
``CI_MERGE_REQUEST_IID``, ``CI_JOB_URL``.

``--output PATH`` (or ``LLMCC_COMMENT_OUTPUT``, so a template's step runs
unchanged) writes the body that would be posted — marker, cut and all — to
PATH and posts nothing: no token, no API call. For a dry run of the step, a
fork's pull request whose token cannot comment, or a test of the whole loop.

Failing closed (issue 13 "Fragile"): the variable is easy to leave set, and a
job that exits 0 looks like it posted. So, on a CI runner, when the variable
(not ``--output``) is set and the platform's posting token is too, the step
refuses (exit 2): the job was given what it needs to post, and something
switched posting off. Whenever a CI run posts nothing, GitHub's job summary
(``$GITHUB_STEP_SUMMARY``) says so and where the comment went.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from compiler.cli import Context
from compiler.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="ci_command", metavar="STEP", required=True)
    c = sub.add_parser(
        "comment",
        help="post FILE as the pull/merge request's one marked comment (created once, then updated)",
        description="Post FILE (markdown) as the pull or merge request's one marked comment: created by the first "
        "run, updated in place by every later one. Reads the platform's CI variables.",
    )
    c.add_argument("file", metavar="FILE", help="the markdown to post")
    c.add_argument("--platform", choices=["github", "gitlab"], help="default: from GITHUB_ACTIONS / GITLAB_CI")
    c.add_argument("--marker", default="diff", metavar="NAME", help="which marked comment (default diff)")
    c.add_argument(
        "--artifact",
        metavar="PATH",
        help="the job artifact holding the whole FILE, named when the comment is cut (default: FILE)",
    )
    c.add_argument(
        "--output",
        metavar="PATH",
        help="write the comment (marker and cut included) to PATH instead of posting it: no token, no API call; "
        "'-' for stdout (default: $LLMCC_COMMENT_OUTPUT, so a template's step runs unchanged)",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.ci.comment import comment_body, marker_line
    from compiler.ci.forges import FORGES, detect_platform, upsert_comment

    env = dict(os.environ)
    try:
        marker = marker_line(args.marker)
    except ValueError as e:
        raise UsageError(f"ci comment: {e}") from e
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"ci comment: {args.file}: {e.strerror if isinstance(e, OSError) else e}") from e
    artifact = args.artifact or args.file
    output = args.output if args.output is not None else env.get("LLMCC_COMMENT_OUTPUT", "")
    platform = args.platform or _platform_or_none(env)
    if args.output is None and output:
        _refuse_a_leftover_output(env, output, platform)
    if output:
        code = _write_comment(output, text, marker, artifact, platform)
        _summarize_posted_nothing(env, output, "--output" if args.output is not None else "LLMCC_COMMENT_OUTPUT")
        return code
    forge = FORGES[args.platform or detect_platform(env)](env)
    body = comment_body(text, marker, limit=forge.limit, artifact=forge.artifact_url(artifact) or artifact)
    action, comment_id = upsert_comment(forge, body, marker)
    cut = " (cut to the platform's limit)" if len(body) < len(text) + len(marker) + 1 else ""
    print(f"llmcc: ci comment: {action} {forge.name} comment {comment_id}{cut}", file=sys.stderr)
    return 0


# the variable each platform's posting token is in (compiler.ci.forges reads the same)
POSTING_TOKENS = {"github": "GITHUB_TOKEN", "gitlab": "LLMCC_NOTES_TOKEN"}


def _refuse_a_leftover_output(env: dict[str, str], output: str, platform: str | None) -> None:
    """Refuse ``LLMCC_COMMENT_OUTPUT`` on a CI runner whose step also holds the posting token.

    Raises:
        UsageError: in CI, the variable is set and so is the platform's token (any platform's, when unknown).
    """
    from compiler.cli._store import in_ci

    if not in_ci(env):
        return
    names = [POSTING_TOKENS[platform]] if platform in POSTING_TOKENS else list(POSTING_TOKENS.values())
    token = next((n for n in names if env.get(n, "").strip()), None)
    if token is not None:
        raise UsageError(
            f"ci comment: LLMCC_COMMENT_OUTPUT is set ({output}) and so is {token}: this step would post nothing"
            f" while the job looks like it posted; unset LLMCC_COMMENT_OUTPUT to post, or pass --output {output}"
            " to write the comment only"
        )


def _summarize_posted_nothing(env: dict[str, str], output: str, how: str) -> None:
    """On a CI runner with a job summary (GitHub), add a line that no comment was posted."""
    from compiler.cli._store import in_ci

    summary = env.get("GITHUB_STEP_SUMMARY", "")
    if not summary or not in_ci(env):
        return
    where = "the job log" if output == "-" else f"`{output}`"
    try:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(f"> [!WARNING]\n> llmcc ci comment posted **no** review comment: {how} sent it to {where}.\n\n")
    except OSError as e:
        raise UsageError(f"ci comment: GITHUB_STEP_SUMMARY {summary}: {e.strerror or e}") from e


def _platform_or_none(env: dict[str, str]) -> str | None:
    from compiler.ci.forges import detect_platform

    try:
        return detect_platform(env)
    except UsageError:
        return None


def _write_comment(output: str, text: str, marker: str, artifact: str, platform: str | None) -> int:
    """The body ``upsert_comment`` would post, to ``output`` (``-``: stdout); off a CI platform, GitHub's limit."""
    from compiler.ci.comment import comment_body
    from compiler.ci.forges import LIMITS

    limit = LIMITS[platform] if platform else min(LIMITS.values())
    body = comment_body(text, marker, limit=limit, artifact=artifact)
    if output == "-":
        sys.stdout.write(body)
    else:
        try:
            Path(output).write_text(body, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"ci comment: {output}: {e.strerror or e}") from e
    cut = " (cut to the platform's limit)" if len(body) < len(text) + len(marker) + 1 else ""
    where = "stdout" if output == "-" else output
    print(
        f"llmcc: ci comment: wrote the {platform or 'github'} comment to {where}, posted nothing{cut}", file=sys.stderr
    )
    return 0
