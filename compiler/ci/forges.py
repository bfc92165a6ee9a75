"""The REST APIs that hold a pull request's comments: GitHub and GitLab, through the standard library.

The one place in ``compiler/ci`` that talks to the network. No ``gh``, ``glab``
or ``curl``: a stock runner with Python can post. Each platform is read from
the variables its runner sets (``GITHUB_*``, ``CI_*``); the token comes from
the environment and is never printed (errors name the method, the URL path
and the status only).

Endpoints (REST v3 / v4):

- GitHub: ``GET|POST /repos/{repo}/issues/{number}/comments``,
  ``PATCH /repos/{repo}/issues/comments/{id}`` (a pull request is an issue).
- GitLab: ``GET|POST /projects/{id}/merge_requests/{iid}/notes``,
  ``PUT /projects/{id}/merge_requests/{iid}/notes/{note_id}``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.client import HTTPMessage
from typing import IO, Protocol

from compiler.ci.comment import is_marked
from compiler.errors import LlmccError, UsageError

PAGE_SIZE = 100
MAX_PAGES = 50  # 5,000 comments: a bound, so a server that always returns a full page cannot loop forever
TIMEOUT_SECONDS = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class Comment:
    id: int
    body: str
    author: str  # the platform's login (GitHub) or user id (GitLab); "" when the answer names none


class Forge(Protocol):
    """One pull/merge request's comments."""

    name: str
    limit: int  # the longest body the platform accepts, in characters

    def comments(self) -> Iterator[Comment]: ...

    def me(self) -> str:
        """Who the token posts as, spelled as :attr:`Comment.author` is."""
        ...

    def create(self, body: str) -> int: ...

    def update(self, comment_id: int, body: str) -> None: ...

    def artifact_url(self, path: str) -> str | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class _Http:
    """JSON over HTTP with one set of headers; errors become one line without the headers."""

    platform: str
    headers: Mapping[str, str] = field(repr=False)  # holds the token: never printed

    def call(
        self, method: str, url: str, body: Mapping[str, object] | None = None, *, refused: tuple[int, ...] = ()
    ) -> object:
        """The JSON answer; None for an empty answer or an HTTP status in ``refused``.

        Raises:
            LlmccError: any other HTTP error, no answer, or an answer that is not JSON.
        """
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=dict(self.headers))  # noqa: S310
        if data is not None:
            request.add_header("Content-Type", "application/json")
        where = f"{self.platform} API: {method} {urllib.parse.urlsplit(url).path}"
        try:
            with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            if e.code in refused:
                return None
            raise LlmccError(f"{where}: HTTP {e.code} {e.reason}{_advice(e.code, self.platform)}") from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise LlmccError(f"{where}: {reason}") from e
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError as e:
            raise LlmccError(f"{where}: the answer is not JSON") from e


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same scheme, host and port: urllib would send the token header anywhere."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            return None  # urllib then raises the redirect as an HTTPError
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


def _advice(status: int, platform: str) -> str:
    if status not in (401, 403):
        return ""
    if platform == "gitlab":
        return (
            " (LLMCC_NOTES_TOKEN needs the api scope and at least the Reporter role; on merge-request"
            " pipelines GitLab passes only variables that are not protected)"
        )
    return " (the job needs `permissions: pull-requests: write` and GITHUB_TOKEN in its env)"


def _pages(http: _Http, url: str) -> Iterator[object]:
    for page in range(1, MAX_PAGES + 1):
        sep = "&" if "?" in url else "?"
        items = http.call("GET", f"{url}{sep}per_page={PAGE_SIZE}&page={page}")
        if not isinstance(items, list):
            raise LlmccError(f"{http.platform} API: GET {urllib.parse.urlsplit(url).path}: not a list of comments")
        yield from items
        if len(items) < PAGE_SIZE:
            return


def _comment(item: object, *, author: tuple[str, str] = ("user", "login")) -> Comment | None:
    """A comment from an API answer; ``author``: where its author is (GitHub ``user.login``, GitLab ``author.id``)."""
    if isinstance(item, dict) and isinstance(item.get("id"), int) and isinstance(item.get("body"), str):
        who = item.get(author[0])
        name = who.get(author[1]) if isinstance(who, dict) else None
        return Comment(id=item["id"], body=item["body"], author=str(name) if isinstance(name, str | int) else "")
    return None


def _need(env: Mapping[str, str], name: str, why: str) -> str:
    value = env.get(name, "")
    if not value:
        raise UsageError(f"ci comment: ${name} is not set ({why})")
    return value


class GitHubForge:
    """A pull request's conversation on GitHub (or GitHub Enterprise: ``GITHUB_API_URL``)."""

    name = "github"
    limit = 65_536

    def __init__(self, env: Mapping[str, str]) -> None:
        token = _need(env, "GITHUB_TOKEN", "give the step env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}")
        self._repo = _need(env, "GITHUB_REPOSITORY", "owner/name; GitHub Actions sets it")
        self._api = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
        self._number = _pull_number(env)
        self._run = (env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"), env.get("GITHUB_RUN_ID", ""))
        self._author = env.get("LLMCC_COMMENT_AUTHOR", "")
        self._http = _Http(
            platform="github",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "llmcc",
            },
        )

    def comments(self) -> Iterator[Comment]:
        for item in _pages(self._http, f"{self._api}/repos/{self._repo}/issues/{self._number}/comments"):
            found = _comment(item)
            if found is not None:
                yield found

    def me(self) -> str:
        """``LLMCC_COMMENT_AUTHOR``, else the token's login (``GET /user``), else ``github-actions[bot]``.

        GitHub refuses ``GET /user`` to GITHUB_TOKEN (an installation token, 403),
        whose comments are the Actions bot's; a GitHub App's token posts as
        ``<app-slug>[bot]``: name it in ``LLMCC_COMMENT_AUTHOR``.
        """
        if self._author:
            return self._author
        user = self._http.call("GET", f"{self._api}/user", refused=(403, 404))
        login = user.get("login") if isinstance(user, dict) else None
        return login if isinstance(login, str) and login else "github-actions[bot]"

    def create(self, body: str) -> int:
        made = self._http.call("POST", f"{self._api}/repos/{self._repo}/issues/{self._number}/comments", {"body": body})
        found = _comment(made)
        if found is None:
            raise LlmccError("github API: POST comments: the answer names no comment id")
        return found.id

    def update(self, comment_id: int, body: str) -> None:
        self._http.call("PATCH", f"{self._api}/repos/{self._repo}/issues/comments/{comment_id}", {"body": body})

    def artifact_url(self, path: str) -> str | None:
        server, run = self._run
        return f"{server}/{self._repo}/actions/runs/{run} (artifact {path})" if run else None


def _pull_number(env: Mapping[str, str]) -> int:
    """The pull request's number: ``LLMCC_PR_NUMBER``, the event payload, or ``refs/pull/N/merge``."""
    text = env.get("LLMCC_PR_NUMBER", "")
    if not text and env.get("GITHUB_EVENT_PATH"):
        try:
            with open(env["GITHUB_EVENT_PATH"], encoding="utf-8") as f:
                event = json.load(f)
        except (OSError, ValueError) as e:
            raise UsageError(f"ci comment: $GITHUB_EVENT_PATH: {e}") from e
        number = event.get("pull_request", {}).get("number") if isinstance(event, dict) else None
        text = str(number) if isinstance(number, int) else ""
    if not text:
        parts = env.get("GITHUB_REF", "").split("/")
        text = parts[2] if len(parts) == 4 and parts[:2] == ["refs", "pull"] else ""
    if not (text.isascii() and text.isdigit()):
        raise UsageError("ci comment: not a pull request (no pull_request event, GITHUB_REF is not refs/pull/N/...)")
    return int(text)


class GitLabForge:
    """A merge request's notes on GitLab (``CI_API_V4_URL``, any instance)."""

    name = "gitlab"
    limit = 1_000_000

    def __init__(self, env: Mapping[str, str]) -> None:
        token = _need(
            env,
            "LLMCC_NOTES_TOKEN",
            "a project access token with the api scope, Reporter role; define the variable masked but NOT"
            " protected, or merge-request pipelines of unprotected branches do not get it",
        )
        api = _need(env, "CI_API_V4_URL", "GitLab CI sets it").rstrip("/")
        project = _need(env, "CI_PROJECT_ID", "GitLab CI sets it")
        iid = _need(env, "CI_MERGE_REQUEST_IID", "only merge-request pipelines have it: rules: merge_request_event")
        self._api = api
        self._notes = f"{api}/projects/{urllib.parse.quote(project, safe='')}/merge_requests/{iid}/notes"
        self._job = env.get("CI_JOB_URL", "")
        self._http = _Http(platform="gitlab", headers={"PRIVATE-TOKEN": token, "User-Agent": "llmcc"})

    def comments(self) -> Iterator[Comment]:
        for item in _pages(self._http, f"{self._notes}?sort=asc&order_by=created_at"):
            found = _comment(item, author=("author", "id"))
            if found is not None and not (isinstance(item, dict) and item.get("system")):
                yield found

    def me(self) -> str:
        """The id of the token's user (``GET /user``: a project access token is a bot user)."""
        user = self._http.call("GET", f"{self._api}/user")
        uid = user.get("id") if isinstance(user, dict) else None
        if not isinstance(uid, int):
            raise LlmccError("gitlab API: GET /user: the answer names no user id")
        return str(uid)

    def create(self, body: str) -> int:
        found = _comment(self._http.call("POST", self._notes, {"body": body}))
        if found is None:
            raise LlmccError("gitlab API: POST notes: the answer names no note id")
        return found.id

    def update(self, comment_id: int, body: str) -> None:
        self._http.call("PUT", f"{self._notes}/{comment_id}", {"body": body})

    def artifact_url(self, path: str) -> str | None:
        return f"{self._job}/artifacts/file/{urllib.parse.quote(path)}" if self._job else None


FORGES: dict[str, Callable[[Mapping[str, str]], Forge]] = {"github": GitHubForge, "gitlab": GitLabForge}
LIMITS: dict[str, int] = {"github": GitHubForge.limit, "gitlab": GitLabForge.limit}  # characters per comment


def detect_platform(env: Mapping[str, str]) -> str:
    """``github`` on GitHub Actions, ``gitlab`` on GitLab CI.

    Raises:
        UsageError: neither (give ``--platform``).
    """
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    raise UsageError("ci comment: not on GitHub Actions or GitLab CI; give --platform github|gitlab")


def upsert_comment(forge: Forge, body: str, marker: str) -> tuple[str, int]:
    """Update the first comment marked ``marker`` in place, or create it: ``("updated"|"created", id)``.

    Comments are read oldest first, so two pipelines racing to create leave the
    first one as the one every later run updates. Only comments the token's own
    user wrote count (:meth:`Forge.me`): anyone can post a body that starts with
    the marker, and their comment is theirs to rewrite after the diff lands in it.
    """
    me = ""  # asked only once a marked comment turns up
    for c in forge.comments():
        if is_marked(c.body, marker) and c.author == (me := me or forge.me()):
            forge.update(c.id, body)
            return "updated", c.id
    return "created", forge.create(body)
