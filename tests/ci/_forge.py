"""A small local stand-in for the GitHub and GitLab REST APIs (pull-request comments / merge-request notes).

It answers the endpoints ``compiler.ci.forges`` calls, checks the token header
the way the platform does (401 without it), pages lists like the real APIs
(``per_page``/``page``), and records every request, so a test can run a
template's steps twice and count the comments left.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

GITHUB_TOKEN = "ghs_fake_github_token"
GITLAB_TOKEN = "glpat-fake-gitlab-token"
GITHUB_PAT = "ghp_fake_personal_token"  # a person's token: GET /user answers
GITHUB_APP_TOKEN = "ghs_fake_app_token"  # a GitHub App's installation token: GET /user refuses it
# Who each token posts as (a comment's author); GET /user answers only for a person's token, as on GitHub.
# GitLab's project access token is a bot user whose GET /user names its id.
GITHUB_USERS = {GITHUB_TOKEN: "github-actions[bot]", GITHUB_PAT: "alice", GITHUB_APP_TOKEN: "llmcc-app[bot]"}
GITLAB_BOT = {"id": 41, "username": "project_4_bot"}

_GH_LIST = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$")
_GH_ONE = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$")
_GL_LIST = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes$")
_GL_ONE = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes/(?P<id>\d+)$")


@dataclass
class FakeForge:
    url: str = ""
    comments: dict[int, dict[str, object]] = field(default_factory=dict)  # id -> {"body", "thread", "system"}
    requests: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1000
    broken: str | None = None  # "html": answers that are not JSON; "object": a list that is not one; "noid";
    # "anonymous": GitLab's GET /user names no id

    def seed(self, thread: str, body: str, *, system: bool = False, author: str | None = None) -> int:
        """A comment in ``thread``; ``author``: its author's login (None: the GITHUB_TOKEN or GitLab bot)."""
        self.next_id += 1
        self.comments[self.next_id] = {"body": body, "thread": thread, "system": system, "author": author}
        return self.next_id

    def thread(self, thread: str) -> list[tuple[int, str]]:
        return [(i, str(c["body"])) for i, c in sorted(self.comments.items()) if c["thread"] == thread]

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]


def _handler(forge: FakeForge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, doc: object) -> None:
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> str:
            doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            return str(doc["body"])

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            forge.requests.append((self.command, parts.path))
            query = parse_qs(parts.query)
            gitlab = parts.path.startswith("/api/v4/")
            if gitlab and self.headers.get("PRIVATE-TOKEN") != GITLAB_TOKEN:
                return self._send(401, {"message": "401 Unauthorized"})
            bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
            user = GITHUB_USERS.get(bearer) if not gitlab else None
            if not gitlab and user is None:
                return self._send(401, {"message": "Bad credentials"})
            me = None if bearer == GITHUB_TOKEN or gitlab else user
            if forge.broken == "redirect":  # to another port: the token must not follow
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:9/collect")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if forge.broken == "html":
                raw = b"<html>maintenance</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                return None
            if parts.path in ("/user", "/api/v4/user") and self.command == "GET":
                if gitlab:
                    return self._send(200, {"username": "no-id"} if forge.broken == "anonymous" else GITLAB_BOT)
                if bearer == GITHUB_PAT:
                    return self._send(200, {"login": user})
                return self._send(403, {"message": "Resource not accessible by integration"})
            m = (_GL_LIST if gitlab else _GH_LIST).match(parts.path)
            if m is not None:
                if forge.broken == "object" and self.command == "GET":
                    return self._send(200, {"message": "not a list"})
                if forge.broken == "noid" and self.command == "POST":
                    return self._send(201, {"created": True})
                thread = f"{m.group(1)}#{m.group(2)}"
                if self.command == "GET":
                    per, page = int(query["per_page"][0]), int(query["page"][0])
                    items = [
                        {"id": i, "body": b, **_authored(forge.comments[i], gitlab=gitlab)}
                        for i, b in forge.thread(thread)
                    ]
                    return self._send(200, items[(page - 1) * per : page * per])
                if self.command == "POST":
                    new = forge.seed(thread, self._body(), author=me)
                    return self._send(201, {"id": new, "body": forge.comments[new]["body"]})
            m = (_GL_ONE if gitlab else _GH_ONE).match(parts.path)
            if m is not None and self.command == ("PUT" if gitlab else "PATCH"):
                found = forge.comments.get(int(m.group("id")))
                if found is None:
                    return self._send(404, {"message": "Not Found"})
                if found["author"] != me:  # only the author may edit
                    return self._send(403, {"message": "Forbidden"})
                found["body"] = self._body()
                return self._send(200, {"id": int(m.group("id")), "body": found["body"]})
            return self._send(404, {"message": "Not Found"})

        do_GET = do_POST = do_PATCH = do_PUT = _handle

    return Handler


def _authored(comment: dict[str, object], *, gitlab: bool) -> dict[str, object]:
    """The author fields of a listed comment, as each platform spells them."""
    other = comment["author"]
    if gitlab:
        author = GITLAB_BOT if other is None else {"id": 7, "username": other}
        return {"system": comment["system"], "author": author}
    return {"user": {"login": GITHUB_USERS[GITHUB_TOKEN] if other is None else other}}


@contextmanager
def running_forge() -> Iterator[FakeForge]:
    forge = FakeForge()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(forge))
    forge.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
