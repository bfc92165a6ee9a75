"""The OCI store on registries that need auth (issue 13 §5): real docker-registry, TLS with a private CA.

Two registries: htpasswd (basic auth) and ``auth: token`` trusting a test token
service (bearer challenge flow). Credentials come from a docker ``config.json``
as ``docker login`` leaves it, or from a ``docker-credential-*`` helper. Every
password, refresh token and helper secret is a canary: none may be printed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compiler.errors import StorageError
from compiler.publish import publish_target
from compiler.storage import _registry_auth, open_store
from compiler.storage._registry import RegistryClient
from compiler.storage._registry_auth import (
    Challenge,
    credentials_for,
    parse_challenges,
)
from compiler.storage._registry_transport import tls_context
from tests.conftest import GitRepo
from tests.secrets._secrets_support import new_canary
from tests.storage._cli import llmcc
from tests.storage._oci_auth import Pki, basic_entry, docker_config, write_helper
from tests.storage._support import KeyPair, make_body
from tests.storage.conftest import AuthRegistry

SIGNING = ("--signing-key", "keys/demo-signing.pem")


def _login(home: Path, registry: AuthRegistry, kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What ``docker login`` (or a credential helper) leaves behind, for ``kind``."""
    host = registry.service.host
    if kind == "auth":
        docker_config(home, {"auths": {host: basic_entry(registry.user, registry.password)}})
    elif kind == "userpass-url-key":  # older docker wrote URLs as keys, and plain username/password
        entry = {"username": registry.user, "password": registry.password}
        docker_config(home, {"auths": {f"https://{host}/v2/": entry}})
    elif kind == "identitytoken":
        docker_config(home, {"auths": {host: {"auth": "", "identitytoken": registry.refresh_token}}})
    elif kind in ("credHelpers", "credsStore"):
        write_helper(tmp_path / "bin", "llmcctest", sys.executable)
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
        monkeypatch.setenv("LLMCCTEST_HELPER_REGISTRY", host)
        monkeypatch.setenv("LLMCCTEST_HELPER_USER", registry.user)
        monkeypatch.setenv("LLMCCTEST_HELPER_SECRET", registry.password)
        if kind == "credHelpers":
            docker_config(home, {"auths": {host: {}}, "credHelpers": {host: "llmcctest"}})
        else:
            docker_config(home, {"auths": {host: {}}, "credsStore": "llmcctest"})
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    ("which", "kind"),
    [
        ("basic_registry", "auth"),
        ("basic_registry", "credsStore"),
        ("token_registry", "auth"),
        ("token_registry", "userpass-url-key"),
        ("token_registry", "identitytoken"),
        ("token_registry", "credHelpers"),
    ],
)
def test_publish_verify_pull_through_the_cli_with_each_kind_of_login(
    which: str,
    kind: str,
    request: pytest.FixtureRequest,
    docker_home: Path,
    example_repo: GitRepo,
    demo_identity: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry: AuthRegistry = request.getfixturevalue(which)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _login(docker_home, registry, kind, monkeypatch, tmp_path)
    url = registry.store_url()
    root = example_repo.path
    assert llmcc(root, "publish", *SIGNING, "--store", url, "-t", "dev") == 0
    assert capsys.readouterr().out.startswith("dev: published version 1 sha256:")
    assert llmcc(root, "verify", "--store", url, "-t", "dev") == 0
    assert "dev: versions 1-1 verified" in capsys.readouterr().out
    assert llmcc(root, "pull", "dev", "--store", url) == 0
    assert "inference-engine" in json.loads(capsys.readouterr().out)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_a_wrong_password_is_one_line_naming_registry_and_scope_never_the_secret(
    which: str,
    request: pytest.FixtureRequest,
    docker_home: Path,
    example_repo: GitRepo,
    demo_identity: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry: AuthRegistry = request.getfixturevalue(which)
    wrong = new_canary()
    docker_config(docker_home, {"auths": {registry.service.host: basic_entry(registry.user, wrong)}})
    url = registry.store_url()
    assert llmcc(example_repo.path, "pull", "dev", "--store", url) == 2
    line = _one_line_error(capsys)
    repository = url.split("/", 3)[3]
    assert f"{registry.service.host}: authentication failed for repository:{repository}:pull (HTTP 401" in line
    assert f"credentials from auth file {docker_home / 'config.json'}" in line
    assert wrong not in line
    assert base64.b64encode(f"ada:{wrong}".encode()).decode() not in line


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_no_credentials_is_refused_with_where_to_put_them(
    which: str, request: pytest.FixtureRequest, docker_home: Path, tmp_path: Path, keypair: KeyPair
) -> None:
    registry: AuthRegistry = request.getfixturevalue(which)
    store = open_store(registry.store_url(), root=tmp_path)
    with pytest.raises(StorageError) as info:
        publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    assert info.value.exit_code == 2
    if which == "basic_registry":
        assert "asks for credentials" in str(info.value)
        assert str(docker_home / "config.json") in str(info.value)
    else:  # the token service gives an anonymous token with no access: the registry refuses it
        assert "authentication failed for repository:" in str(info.value)
        assert "anonymous" in str(info.value)


@pytest.mark.parametrize("trust", ["other-ca", "bad-file", "no-ca-file"])
def test_an_untrusted_certificate_is_refused(
    trust: str,
    basic_registry: AuthRegistry,
    docker_home: Path,
    example_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    docker_config(docker_home, {"auths": {basic_registry.service.host: basic_entry("ada", basic_registry.password)}})
    url = basic_registry.store_url()
    if trust == "other-ca":
        monkeypatch.setenv("LLMCC_OCI_CA_FILE", str(basic_registry.pki.other_ca))
    elif trust == "bad-file":
        not_pem = docker_home / "ca.pem"
        not_pem.write_text("not a certificate\n")
        monkeypatch.setenv("LLMCC_OCI_CA_FILE", str(not_pem))
    else:  # loopback without a CA file is plain HTTP: the TLS registry refuses it, nothing is sent in clear
        monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    assert llmcc(example_repo.path, "pull", "dev", "--store", url) == 2
    line = _one_line_error(capsys)
    if trust == "other-ca":
        assert "TLS certificate not trusted (self-signed certificate in certificate chain)" in line
        assert "set LLMCC_OCI_CA_FILE to its PEM bundle" in line
    elif trust == "bad-file":
        assert f"LLMCC_OCI_CA_FILE={docker_home / 'ca.pem'}: not a readable PEM CA bundle" in line
    else:
        assert line.endswith(": HTTP 400 (a TLS registry? set LLMCC_OCI_CA_FILE to speak HTTPS on loopback)")
    assert basic_registry.password not in line


def test_bearer_tokens_are_cached_per_scope(
    token_registry: AuthRegistry, docker_home: Path, tmp_path: Path, keypair: KeyPair
) -> None:
    """One token per scope per client: pull for reads, pull,push for writes; re-challenged when it widens."""
    assert token_registry.token_server is not None
    docker_config(docker_home, {"auths": {token_registry.service.host: basic_entry("ada", token_registry.password)}})
    url = token_registry.store_url()
    repository = url.split("/", 3)[3]
    seen = token_registry.token_server.requests
    before = len(seen)
    store = open_store(url, root=tmp_path)
    publish_target(store, "prod", make_body("prod", 1), keypair.signer)
    publish_target(store, "prod", make_body("prod", 2), keypair.signer)
    # the scope as the registry challenged: distribution lists the actions in any order
    asked = sorted(
        (m, s.rsplit(":", 1)[0] + ":" + ",".join(sorted(s.rsplit(":", 1)[1].split(","))), c)
        for m, s, c in seen[before:]
    )
    assert asked == [
        ("GET", f"repository:{repository}:pull", True),
        ("GET", f"repository:{repository}:pull,push", True),
    ]
    assert store.versions("prod") == [1, 2]


def test_a_credential_helper_s_output_is_never_relayed(
    token_registry: AuthRegistry,
    docker_home: Path,
    example_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    _login(docker_home, token_registry, "credHelpers", monkeypatch, tmp_path)
    host = token_registry.service.host
    helper = "llmcc: credential helper docker-credential-llmcctest"
    monkeypatch.setattr(_registry_auth, "_HELPER_TIMEOUT", 0.5)
    for mode, expected in [
        ("fail", f"{helper} failed for {host} (exit 3)"),
        ("garbage", f"{helper} gave no {{Username, Secret}} JSON for {host}"),
        ("sleep", f"{helper} gave no answer for {host} in 0.5s"),
    ]:
        monkeypatch.setenv("LLMCCTEST_HELPER_MODE", mode)
        assert llmcc(example_repo.path, "pull", "dev", "--store", token_registry.store_url()) == 2
        line = _one_line_error(capfd)
        assert line == expected
    (tmp_path / "bin" / "docker-credential-llmcctest").chmod(0o644)
    assert llmcc(example_repo.path, "pull", "dev", "--store", token_registry.store_url()) == 2
    assert _one_line_error(capfd) == f"{helper} cannot run: PermissionError"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert llmcc(example_repo.path, "pull", "dev", "--store", token_registry.store_url()) == 2
    assert _one_line_error(capfd) == (
        f"llmcc: credential helper docker-credential-llmcctest (for {token_registry.service.host}) is not on PATH"
    )


def test_credentials_are_not_accepted_in_the_store_url(tmp_path: Path) -> None:
    secret = new_canary()
    with pytest.raises(StorageError, match="cannot hold credentials: use docker login") as info:
        open_store(f"oci://ada:{secret}@127.0.0.1:5000/llmcc/bundles", root=tmp_path)
    assert secret not in str(info.value)


# --- the auth file and challenge parsing, on real files ---


def test_challenges_are_parsed_as_rfc_7235_says() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push", error="insufficient_scope", Basic realm="x \\"y\\""'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.example/token",
                "service": "registry.example",
                "scope": "repository:a/b:pull,push",
                "error": "insufficient_scope",
            },
        ),
        Challenge("basic", {"realm": 'x "y"'}),
    ]
    assert parse_challenges("") == []
    assert parse_challenges("Basic") == [Challenge("basic", {})]
    assert parse_challenges("Basic realm=x, =oops") == [Challenge("basic", {"realm": "x"})]


def test_the_auth_file_is_read_as_docker_and_podman_read_it(tmp_path: Path) -> None:
    home = docker_config(tmp_path / "d", {"auths": {"https://index.docker.io/v1/": basic_entry("hub", "p1")}})
    env = {"DOCKER_CONFIG": str(home)}
    for name in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        found = credentials_for(name, env)
        assert found is not None
        assert (found.username, found.secret) == ("hub", "p1")
    assert credentials_for("ghcr.io", env) is None
    assert "p1" not in repr(credentials_for("docker.io", env))
    podman = tmp_path / "auth.json"
    podman.write_text(json.dumps({"auths": {"ghcr.io": basic_entry("gh", "p2")}}))
    found = credentials_for("ghcr.io", {**env, "REGISTRY_AUTH_FILE": str(podman)})
    assert found is not None
    assert found.username == "gh"
    assert credentials_for("ghcr.io", {"DOCKER_CONFIG": str(tmp_path / "absent")}) is None
    for bad, message in [
        ("{not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"auths": {"r.example": {"auth": "!!"}}}), "not base64 of user:password"),
        (json.dumps({"auths": {"r.example": {"auth": base64.b64encode(b"nocolon").decode()}}}), "not base64"),
    ]:
        (home / "config.json").write_text(bad)
        with pytest.raises(StorageError, match=message):
            credentials_for("r.example", env)
    (home / "config.json").write_text(json.dumps({"auths": {"r.example": {}}, "credHelpers": "x"}))
    assert credentials_for("r.example", env) is None
    (home / "config.json").write_text(json.dumps({"auths": []}))
    assert credentials_for("r.example", env) is None
    (home / "config.json").write_bytes(b"\xff")
    with pytest.raises(StorageError, match="cannot read the registry auth file"):
        credentials_for("r.example", env)


# --- redirects: blob storage never sees the registry's credentials ---


class _BlobStore(BaseHTTPRequestHandler):
    """Another origin (S3-style): records the headers it got."""

    seen: list[str | None]
    body = b"blob!"

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


class _RedirectingRegistry(BaseHTTPRequestHandler):
    """Needs basic auth; redirects blob GETs (307) to ``target`` and tag lists to itself."""

    target: str
    seen: list[str | None]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="r"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        location = self.target if "/blobs/" in self.path else "/v2/moved/tags/list"
        if self.path.startswith("/v2/moved/"):
            body = b'{"tags": ["prod.v00000001"]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(307)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    started: list[ThreadingHTTPServer] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def _serve(servers: list[ThreadingHTTPServer], handler: type[BaseHTTPRequestHandler]) -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return int(server.server_address[1])


def test_a_redirect_to_blob_storage_does_not_carry_the_credentials(
    servers: list[ThreadingHTTPServer], docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")  # loopback, plain HTTP
    blob_seen: list[str | None] = []
    registry_seen: list[str | None] = []
    blob_port = _serve(servers, type("B", (_BlobStore,), {"seen": blob_seen}))
    target = f"http://127.0.0.1:{blob_port}/bucket/blob?X-Amz-Signature=abc"
    port = _serve(servers, type("R", (_RedirectingRegistry,), {"target": target, "seen": registry_seen}))
    registry = f"127.0.0.1:{port}"
    password = new_canary()
    docker_config(docker_home, {"auths": {registry: basic_entry("ada", password)}})
    client = RegistryClient(registry, "llmcc/bundles", where="test")
    body = _BlobStore.body
    assert client.get_blob("sha256:" + hashlib.sha256(body).hexdigest(), len(body)) == body
    assert blob_seen == [None]  # another origin: no Authorization
    assert registry_seen[0] is None
    assert registry_seen[1] is not None
    assert registry_seen[1].startswith("Basic ")
    assert client.tags() == ["prod.v00000001"]  # same origin: the credentials stay
    assert registry_seen[-1] == registry_seen[1]
    # a redirect from a registry to plain HTTP elsewhere is refused
    port2 = _serve(servers, type("R2", (_RedirectingRegistry,), {"target": "http://blobs.invalid/x", "seen": []}))
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port2}": basic_entry("ada", password)}})
    other = RegistryClient(f"127.0.0.1:{port2}", "llmcc/bundles", where="test")
    with pytest.raises(StorageError, match=r"redirect to a non-https URL \(http://blobs.invalid\) refused"):
        other.get_blob("sha256:" + "a" * 64, 5)


def test_a_ca_file_adds_to_the_system_trust_and_never_turns_verification_off(pki: Pki) -> None:
    for env in ({}, {"LLMCC_OCI_CA_FILE": str(pki.ca)}):
        context = tls_context(env)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    with pytest.raises(StorageError, match="not a readable PEM CA bundle"):
        tls_context({"LLMCC_OCI_CA_FILE": str(pki.ca.parent / "missing.pem")})
    system = len(tls_context({}).get_ca_certs())
    assert len(tls_context({"LLMCC_OCI_CA_FILE": str(pki.ca)}).get_ca_certs()) == system + 1


def test_a_helper_s_identity_token_and_its_no_entry_answer(
    token_registry: AuthRegistry, docker_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _login(docker_home, token_registry, "credsStore", monkeypatch, tmp_path)
    monkeypatch.setenv("LLMCCTEST_HELPER_USER", "<token>")
    monkeypatch.setenv("LLMCCTEST_HELPER_SECRET", token_registry.refresh_token)
    store = open_store(token_registry.store_url(), root=tmp_path)
    assert store.targets() == []  # the refresh token was accepted (POST to the realm)
    found = credentials_for(token_registry.service.host)
    assert found is not None
    assert found.identity_token
    assert credentials_for("other.example") is None  # "credentials not found": anonymous


def test_an_identity_token_cannot_answer_a_password_challenge(
    basic_registry: AuthRegistry, docker_home: Path, tmp_path: Path
) -> None:
    docker_config(docker_home, {"auths": {basic_registry.service.host: {"identitytoken": new_canary()}}})
    with pytest.raises(StorageError, match="asks for a password, not an identity token"):
        open_store(basic_registry.store_url(), root=tmp_path).targets()


def test_the_default_auth_file_is_docker_s() -> None:
    assert _registry_auth.auth_file({}) == Path.home() / ".docker" / "config.json"


class _Challenging(BaseHTTPRequestHandler):
    """A registry that challenges with ``challenge``; with a token it answers ``status``."""

    challenge: str
    status: int

    def do_GET(self) -> None:
        if self.path.startswith("/token"):
            body = self.token_body.encode()
            self.send_response(self.token_status)
        elif self.headers.get("Authorization") is None:
            body = b""
            self.send_response(401)
            if self.challenge:
                self.send_header("WWW-Authenticate", self.challenge.format(port=self.server.server_address[1]))
        else:
            body = b'{"tags": []}'
            self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    token_status = 200
    token_body = '{"token": "t", "expires_in": "soon"}'

    def log_message(self, *args: object) -> None:
        pass


_BEARER = 'Bearer realm="http://127.0.0.1:{port}/token",service="s"'
_PULL = "repository:llmcc/bundles:pull"


@pytest.mark.parametrize(
    ("challenge", "status", "token_status", "token_body", "expected"),
    [
        (_BEARER, 200, 200, '{"token": "t", "expires_in": "soon"}', None),
        (_BEARER, 403, 200, '{"access_token": "t"}', rf"access denied for {_PULL} \(HTTP 403, anonymous\)"),
        (_BEARER, 200, 500, "{}", r"token service 127.0.0.1: HTTP 500 for repository:llmcc/bundles:pull$"),
        (_BEARER, 200, 200, "{}", "the reply holds no token for repository:llmcc/bundles:pull"),
        (_BEARER, 200, 200, "not json", "the reply holds no token"),
        ('Bearer realm="http://example.invalid/token"', 200, 200, "{}", "the token realm is not an https:// URL"),
        ('Bearer realm="http://127.0.0.1:9/token"', 200, 200, "{}", "token service 127.0.0.1: .*Connection refused"),
        ("", 200, 200, "{}", "HTTP 401 for repository:llmcc/bundles:pull with no Basic or Bearer challenge"),
        ("Negotiate abc", 200, 200, "{}", "with no Basic or Bearer challenge"),
    ],
)
def test_what_a_registry_or_its_token_service_can_answer(
    challenge: str,
    status: int,
    token_status: int,
    token_body: str,
    expected: str | None,
    servers: list[ThreadingHTTPServer],
    docker_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    attributes = {"challenge": challenge, "status": status, "token_status": token_status, "token_body": token_body}
    port = _serve(servers, type("C", (_Challenging,), attributes))
    client = RegistryClient(f"127.0.0.1:{port}", "llmcc/bundles", where="test")
    if expected is None:
        assert client.tags() == []
        assert client.tags() == []  # the cached token
        return
    with pytest.raises(StorageError, match=expected):
        client.tags()


class _EchoingProxy(BaseHTTPRequestHandler):
    """A proxy in front of a registry whose error page echoes the request headers."""

    def do_GET(self) -> None:
        if self.headers.get("Authorization") is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="r"')
            body = b""
        else:
            self.send_response(502)
            body = f"<p>bad gateway;\n you sent {self.headers.get('Authorization')}</p>\n".encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_GET

    def log_message(self, *args: object) -> None:
        pass


def test_an_error_page_echoing_the_credentials_is_redacted(
    servers: list[ThreadingHTTPServer], docker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMCC_OCI_CA_FILE")
    port = _serve(servers, _EchoingProxy)
    password = new_canary()
    docker_config(docker_home, {"auths": {f"127.0.0.1:{port}": basic_entry("ada", password)}})
    with pytest.raises(StorageError, match=r"HTTP 502 <p>bad gateway; you sent Basic <redacted></p>$") as info:
        RegistryClient(f"127.0.0.1:{port}", "llmcc/bundles", where="test").put_manifest("prod.v00000001", b"{}")
    assert base64.b64encode(f"ada:{password}".encode()).decode() not in str(info.value)


def test_an_s3_endpoint_with_credentials_is_refused_unechoed(tmp_path: Path) -> None:
    secret = new_canary()
    with pytest.raises(StorageError, match="--endpoint-url cannot hold credentials") as info:
        open_store("s3://bucket/prefix", root=tmp_path, endpoint_url=f"http://key:{secret}@127.0.0.1:9")
    assert secret not in str(info.value)
