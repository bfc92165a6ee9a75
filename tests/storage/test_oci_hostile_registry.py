"""A registry, token service or blob host that misbehaves must never get our credentials or crash us.

Fake HTTP servers on loopback play the hostile parts (what docker-registry
never does): uploads sent to another origin, a redirect target that challenges,
a token realm that downgrades to plain HTTP, tokens that would inject headers,
JSON nested past the parser's recursion limit, error pages echoing what we
sent. Every secret is a canary; every failure is one line, exit 2.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.errors import StorageError
from compiler.storage._registry import RegistryClient
from compiler.storage._registry_auth import credentials_for
from compiler.storage._registry_transport import tls_context
from tests.conftest import GitRepo
from tests.secrets._secrets_support import new_canary
from tests.storage._cli import llmcc
from tests.storage._oci_auth import Pki, basic_entry, docker_config

NESTED = "[" * 100_000  # past json's recursion limit: RecursionError, not ValueError
REPO = "llmcc/bundles"
Serve = Callable[..., int]  # serve(handler, tls=None, **class attributes) -> port


class _Handler(BaseHTTPRequestHandler):
    """A tiny HTTP server role; ``seen`` records (method, path, Authorization) of each request."""

    seen: list[tuple[str, str, str | None]]

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def record(self) -> str | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        authorization = self.headers.get("Authorization")
        self.seen.append((self.command, self.path, authorization))
        return authorization

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Serve]:
    started: list[ThreadingHTTPServer] = []

    def start(handler: type[BaseHTTPRequestHandler], *, tls: Pki | None = None, **attributes: object) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (handler,), attributes))
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return int(server.server_address[1])

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


# --- upload locations and redirect targets on another origin ---


class _Uploads(_Handler):
    """Another origin taking uploads (or blob reads); answers ``status`` and ``challenge``."""

    status = 201
    challenge = ""

    def do_PUT(self) -> None:
        self.record()
        self.reply(self.status, headers={"WWW-Authenticate": self.challenge} if self.challenge else {})

    do_GET = do_PUT


class _BasicRegistry(_Handler):
    """Needs basic auth; sends uploads to ``location``, redirects blob reads to ``blobs``."""

    location = ""
    blobs = ""

    def _authorized(self) -> bool:
        if self.record() is None:
            self.reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            return False
        return True

    def do_HEAD(self) -> None:
        if self._authorized():
            self.reply(404)

    def do_POST(self) -> None:
        if self._authorized():
            self.reply(202, headers={"Location": self.location})

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if "/blobs/" in self.path:
            self.reply(307, headers={"Location": self.blobs})
        else:
            self.reply(200, b'{"tags": []}')


def test_an_upload_location_on_another_origin_gets_no_credentials(
    serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As oras-go and docker do: credentials are for the registry's host, not for wherever it points."""
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    password = new_canary()
    uploads: list[tuple[str, str, str | None]] = []
    upload_port = serve(_Uploads, seen=uploads)
    registry_seen: list[tuple[str, str, str | None]] = []
    location = f"http://127.0.0.1:{upload_port}/upload/1?_state=x"
    port = serve(_BasicRegistry, seen=registry_seen, location=location)
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", password)}})
    client = RegistryClient(f"127.0.0.1:{port}", REPO, where="test")
    assert client.put_blob(b"envelope") == "sha256:" + hashlib.sha256(b"envelope").hexdigest()
    assert registry_seen[-1][2] is not None  # the registry itself got them
    assert [a for _, _, a in uploads] == [None]


def test_a_foreign_upload_host_that_challenges_is_refused_not_answered(
    serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    password = new_canary()
    tokens: list[tuple[str, str, str | None]] = []
    token_port = serve(_Uploads, seen=tokens, status=200)
    uploads: list[tuple[str, str, str | None]] = []
    challenge = f'Bearer realm="http://127.0.0.1:{token_port}/token",service="evil"'
    upload_port = serve(_Uploads, seen=uploads, status=401, challenge=challenge)
    port = serve(_BasicRegistry, seen=[], location=f"http://127.0.0.1:{upload_port}/upload/1")
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", password)}})
    client = RegistryClient(f"127.0.0.1:{port}", REPO, where="test")
    with pytest.raises(StorageError, match=r"authentication failed for repository:llmcc/bundles:pull,push"):
        client.put_blob(b"envelope")
    assert tokens == []  # the token service of another host never saw the registry's password
    assert [a for _, _, a in uploads] == [None]


def test_an_upload_location_in_plain_http_off_loopback_is_refused(
    serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    port = serve(_BasicRegistry, seen=[], location="http://uploads.invalid/upload/1")
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", new_canary())}})
    client = RegistryClient(f"127.0.0.1:{port}", REPO, where="test")
    with pytest.raises(StorageError, match=r"upload location is not https \(http://uploads.invalid\); refused$"):
        client.put_blob(b"envelope")


def test_a_redirect_target_that_challenges_never_gets_the_registry_s_credentials(
    serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blob storage behind a redirect (a CDN, a bucket) is not the registry: its challenge is not answered."""
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    password = new_canary()
    tokens: list[tuple[str, str, str | None]] = []
    token_port = serve(_Uploads, seen=tokens, status=200)
    challenge = f'Bearer realm="http://127.0.0.1:{token_port}/token",service="cdn"'
    blob_port = serve(_Uploads, seen=[], status=401, challenge=challenge)
    port = serve(_BasicRegistry, seen=[], blobs=f"http://127.0.0.1:{blob_port}/blob")
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", password)}})
    client = RegistryClient(f"127.0.0.1:{port}", REPO, where="test")
    assert client.tags() == []  # basic credentials accepted, sent from now on
    with pytest.raises(StorageError, match=r"authentication failed for repository:llmcc/bundles:pull \(HTTP 401"):
        client.get_blob("sha256:" + "a" * 64, 5)
    assert tokens == []


# --- the token realm and what the token service answers ---


class _TokenRegistry(_Handler):
    """Challenges with a Bearer ``realm``; serves ``token_body`` at /token and ``{"tags": []}`` with a token."""

    realm = ""
    token_body = ""

    def do_GET(self) -> None:
        authorization = self.record()
        if self.path.startswith("/token"):
            self.reply(200, self.token_body.encode())
        elif authorization is None:
            realm = self.realm or f"http://127.0.0.1:{self.server.server_address[1]}/token"
            self.reply(401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'})
        else:
            self.reply(200, b'{"tags": []}')

    do_HEAD = do_GET


def test_an_https_registry_cannot_send_us_to_a_plain_http_realm(
    serve: Serve, docker_home: Path, pki: Pki, example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TLS registry's credentials never travel in clear, not even to loopback (a local proxy, a debug port)."""
    password = new_canary()
    tokens: list[tuple[str, str, str | None]] = []
    token_port = serve(_Uploads, seen=tokens, status=200)
    port = serve(_TokenRegistry, tls=pki, seen=[], realm=f"http://127.0.0.1:{token_port}/token")
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", password)}})
    assert llmcc(example_repo.path, "pull", "dev", "--store", f"oci://127.0.0.1:{port}/{REPO}") == 2
    assert _one_line_error(capsys) == f"llmcc: 127.0.0.1:{port}: the token realm is not an https:// URL; refused"
    assert tokens == []


@pytest.mark.parametrize(
    "token",
    [
        "{canary}\r\nX-Injected: 1",  # would be a header of its own
        "{canary}\n",
        "{canary}\u2603",  # not latin-1: http.client cannot encode it
        "{canary} more",
    ],
)
def test_a_token_that_is_not_a_header_token_is_refused_unechoed(
    token: str,
    serve: Serve,
    docker_home: Path,
    example_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    canary = new_canary()
    port = serve(_TokenRegistry, seen=[], token_body=json.dumps({"token": token.format(canary=canary)}))
    assert llmcc(example_repo.path, "pull", "dev", "--store", f"oci://127.0.0.1:{port}/{REPO}") == 2
    line = _one_line_error(capsys)
    assert line == (
        f"llmcc: 127.0.0.1:{port}: token service 127.0.0.1: the token for repository:{REPO}:pull"
        " is not a visible-ASCII token (RFC 6750); refused"
    )
    assert canary not in line


# --- JSON nested past the recursion limit, and JSON of the wrong shape ---


def test_a_token_reply_nested_too_deep_is_one_line(
    serve: Serve,
    docker_home: Path,
    example_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    port = serve(_TokenRegistry, seen=[], token_body=NESTED)
    assert llmcc(example_repo.path, "pull", "dev", "--store", f"oci://127.0.0.1:{port}/{REPO}") == 2
    assert _one_line_error(capsys).endswith(f"the reply holds no token for repository:{REPO}:pull")


class _Manifests(_Handler):
    """An open registry answering every manifest with ``manifest`` and every tag list with ``tags``."""

    manifest = b""
    tags = b""

    def do_HEAD(self) -> None:
        self.record()
        digest = "sha256:" + hashlib.sha256(self.manifest).hexdigest()
        self.reply(200, self.manifest, {"Docker-Content-Digest": digest})

    def do_GET(self) -> None:
        self.record()
        self.reply(200, self.tags if "/tags/list" in self.path else self.manifest)


def test_a_manifest_nested_too_deep_is_one_line(
    serve: Serve,
    docker_home: Path,
    example_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    port = serve(_Manifests, seen=[], manifest=NESTED.encode())
    url = f"oci://127.0.0.1:{port}/{REPO}"
    assert llmcc(example_repo.path, "pull", "dev", "--store", url) == 3  # a corrupt object
    assert _one_line_error(capsys) == f"llmcc: {url}: dev pointer: manifest is not JSON (nested too deep)"


@pytest.mark.parametrize("tags", [NESTED, '{"tags": 5}', '{"tags": "prod.v00000001"}', '{"tags": [1, {}]}', "[]"])
def test_a_tag_list_of_the_wrong_shape_is_one_line(
    tags: str, serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    port = serve(_Manifests, seen=[], tags=tags.encode())
    client = RegistryClient(f"127.0.0.1:{port}", REPO, where="test")
    with pytest.raises(StorageError, match=r"^test: registry sent a bad tag list$"):
        client.tags()


def test_a_tag_list_without_tags_is_empty(serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """distribution answers ``"tags": null`` for a repository whose tags were all deleted."""
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    port = serve(_Manifests, seen=[], tags=b'{"name": "llmcc/bundles", "tags": null}')
    assert RegistryClient(f"127.0.0.1:{port}", REPO, where="test").tags() == []


def test_an_auth_file_nested_too_deep_is_one_line(
    serve: Serve,
    docker_home: Path,
    example_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    port = serve(_BasicRegistry, seen=[])
    (docker_home / "config.json").write_text('{"auths": ' + NESTED)
    assert llmcc(example_repo.path, "pull", "dev", "--store", f"oci://127.0.0.1:{port}/{REPO}") == 2
    assert _one_line_error(capsys) == (
        f"llmcc: {docker_home / 'config.json'}: the registry auth file is not valid JSON (nested too deep)"
    )


NESTING_HELPER = f"""#!{sys.executable}
import sys
sys.stdout.write("[" * 50000)  # under the 64 KiB cap, past the recursion limit
"""


def test_a_helper_answer_nested_too_deep_is_one_line(
    docker_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper = tmp_path / "bin" / "docker-credential-nesting"
    helper.parent.mkdir()
    helper.write_text(NESTING_HELPER)
    helper.chmod(0o755)
    docker_config(docker_home, {"credsStore": "nesting"})
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    with pytest.raises(StorageError, match=r"gave no \{Username, Secret\} JSON for r.example$"):
        credentials_for("r.example")


# --- error pages echoing what we sent ---


class _EchoingProxy(_Handler):
    """Needs basic auth; then fails with an error page that echoes, after ``filler``, what it got."""

    filler = ""

    def do_GET(self) -> None:
        authorization = self.record()
        if authorization is None:
            self.reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            return
        user, _, password = base64.b64decode(authorization.split(" ", 1)[1]).decode().partition(":")
        page = f"<p>{self.filler} you sent {authorization} (user {user}, password {password})</p>"
        self.reply(502, page.encode())


@pytest.mark.parametrize("filler", ["", "x" * 260, "x" * 290])
def test_an_echoed_credential_cut_by_the_excerpt_is_still_redacted(
    filler: str, serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page is redacted before it is cut to an excerpt, so no prefix of a secret survives the cut."""
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    password = new_canary()
    port = serve(_EchoingProxy, seen=[], filler=filler)
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", password)}})
    with pytest.raises(StorageError, match="HTTP 502 <p>") as info:
        RegistryClient(f"127.0.0.1:{port}", REPO, where="test").tags()
    line = str(info.value)
    encoded = base64.b64encode(f"ada:{password}".encode()).decode()
    for secret in (encoded, password):
        for cut in range(8, len(secret) + 1):
            assert secret[:cut] not in line, (cut, line)
    if not filler:
        assert line.endswith("you sent Basic <redacted> (user ada, password <redacted>)</p>")


# --- registry names ---


@pytest.mark.parametrize(
    "registry",
    [
        "[::1",
        "127.0.0.1:5\r\nX-Injected: y",
        "127.0.0.1:1#",
        "127.0.0.1:1?x",
        "r\u00e9.example",
        "a b",
        "host:abc",
        "host:",
        ":5000",
        "localhost.",
    ],
)
def test_a_registry_that_is_not_host_port_is_refused(
    registry: str, docker_home: Path, example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert llmcc(example_repo.path, "pull", "dev", "--store", f"oci://{registry}/{REPO}") == 2
    line = _one_line_error(capsys)
    assert line.endswith(": expected oci://REGISTRY/REPOSITORY, REGISTRY a host[:port] (docs/store-layout.md)")
    assert "\r" not in line


@pytest.mark.parametrize("registry", ["localhost:1", "[::1]:1", "127.0.0.1:1", "ghcr.io", "my-registry.example.com"])
def test_host_port_registries_are_accepted(registry: str, tmp_path: Path) -> None:
    RegistryClient(registry, REPO, where="test")


# --- the CA file ---


def test_a_ca_file_replaced_in_place_is_read_again(pki: Pki, tmp_path: Path) -> None:
    """Same path, same mtime (``cp -p``, a tar extract, two writes in one clock tick): still the new bundle."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.read_bytes())
    env = {"LLMCC_OCI_CA_FILE": str(ca)}
    before = tls_context(env).get_ca_certs()
    stat = ca.stat()
    replacement = tmp_path / "new.pem"
    replacement.write_bytes(pki.other_ca.read_bytes())
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replacement.replace(ca)
    assert ca.stat().st_mtime_ns == stat.st_mtime_ns
    after = tls_context(env).get_ca_certs()
    assert after != before


# --- the same kind in every store: a stored envelope nested too deep ---


def test_an_envelope_nested_too_deep_fails_verification_in_one_line(
    example_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    (store / "dev").mkdir(parents=True)
    (store / "dev" / "00000001.dsse.json").write_text(NESTED[:60_000])
    assert llmcc(example_repo.path, "verify", "--store", f"file://{store}", "-t", "dev") == 3
    assert "not valid JSON: nested too deep" in _one_line_error(capsys)


# --- a credential helper that says too much ---

TALKING_HELPER = f"""#!{sys.executable}
import os, sys
secret = os.environ["LLMCCTEST_SECRET"]
if os.environ.get("LLMCCTEST_ENDLESS"):
    while True:
        sys.stdout.write(secret * 1000)
sys.stdout.write('{{"Username": "ada", "Secret": "' + secret + "a" * 200000 + '"}}')
"""


@pytest.mark.parametrize("endless", [False, True])
def test_a_helper_that_says_too_much_is_cut_off_unechoed(
    endless: bool,
    serve: Serve,
    docker_home: Path,
    example_repo: GitRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Read at most 64 KiB of a helper's answer, then kill it: never its whole output in memory."""
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    helper = tmp_path / "bin" / "docker-credential-talking"
    helper.parent.mkdir()
    helper.write_text(TALKING_HELPER)
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    monkeypatch.setenv("LLMCCTEST_SECRET", new_canary())
    if endless:
        monkeypatch.setenv("LLMCCTEST_ENDLESS", "1")
    port = serve(_BasicRegistry, seen=[])
    docker_config(docker_home, {"credsStore": "talking"})
    assert llmcc(example_repo.path, "pull", "dev", "--store", f"oci://127.0.0.1:{port}/{REPO}") == 2
    assert _one_line_error(capsys) == (
        f"llmcc: credential helper docker-credential-talking said more than 65536 bytes for 127.0.0.1:{port}"
    )


@pytest.mark.parametrize("spelling", ["http://127.0.0.1:{port}", "HTTP://127.0.0.1:{port}", ""])
def test_an_upload_location_on_the_registry_s_own_origin_keeps_the_credentials(
    spelling: str, serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same origin spelled differently (RFC 6454: scheme and host case-insensitive) is still the registry."""
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")

    class _Registry(_BasicRegistry):
        def do_PUT(self) -> None:
            if self._authorized():
                self.reply(201)

    seen: list[tuple[str, str, str | None]] = []
    port = serve(_Registry, seen=seen)
    _Registry.location = spelling.format(port=port) + "/v2/llmcc/bundles/blobs/uploads/1"
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", new_canary())}})
    RegistryClient(f"127.0.0.1:{port}", REPO, where="test").put_blob(b"envelope")
    assert seen[-1][0] == "PUT"
    assert seen[-1][2] is not None
    assert [a for m, _, a in seen if m == "PUT"] == [seen[-1][2]]  # sent at once, no second challenge


@pytest.mark.parametrize(
    "realm",
    [
        "https://user:{canary}@auth.example/token",  # http.client: "nonnumeric port: '<password>@auth.example'"
        "https://auth.example:{canary}/token",
        "https://[::1/token{canary}",  # urlsplit: ValueError
        "https:///token{canary}",
    ],
)
def test_a_realm_that_is_not_host_port_is_refused_unechoed(
    realm: str,
    serve: Serve,
    docker_home: Path,
    example_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    canary = new_canary()
    port = serve(_TokenRegistry, seen=[], realm=realm.format(canary=canary))
    assert llmcc(example_repo.path, "pull", "dev", "--store", f"oci://127.0.0.1:{port}/{REPO}") == 2
    line = _one_line_error(capsys)
    assert line == f"llmcc: 127.0.0.1:{port}: the token realm is not a URL of host[:port]; refused"


def test_a_redirect_to_a_url_with_user_info_is_refused_unechoed(
    serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    canary = new_canary()
    blobs: list[tuple[str, str, str | None]] = []
    blob_port = serve(_Uploads, seen=blobs, status=200)
    port = serve(_BasicRegistry, seen=[], blobs=f"http://ada:{canary}@127.0.0.1:{blob_port}/blob")
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", new_canary())}})
    with pytest.raises(StorageError, match=r": redirect to a URL with user info refused$") as info:
        RegistryClient(f"127.0.0.1:{port}", REPO, where="test").get_blob("sha256:" + "a" * 64, 5)
    assert canary not in str(info.value)
    assert blobs == []


@pytest.mark.parametrize("location", ["http://[::1/blob", "http://127.0.0.1:port/blob"])
def test_a_redirect_to_an_invalid_url_is_one_line(
    location: str, serve: Serve, docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    port = serve(_BasicRegistry, seen=[], blobs=location)
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", new_canary())}})
    with pytest.raises(StorageError, match=r": redirect to an invalid URL refused$"):
        RegistryClient(f"127.0.0.1:{port}", REPO, where="test").get_blob("sha256:" + "a" * 64, 5)


def test_a_ca_file_changed_within_its_clock_tick_is_read_at_every_call(pki: Pki, tmp_path: Path) -> None:
    """Git's racy-timestamp rule: a file this fresh may be written again without its stat changing."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.read_bytes())
    env = {"LLMCC_OCI_CA_FILE": str(ca)}
    first, second = tls_context(env), tls_context(env)
    assert first is not second  # not remembered: the next call reads the file again
    assert first.get_ca_certs() == second.get_ca_certs()
