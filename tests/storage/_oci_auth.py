"""Registries that need auth, for tests: a private CA, htpasswd, a token service, a credential helper.

``make_pki`` and ``htpasswd`` are tools/demo_pki.py's (tools/local-stores.py uses them too).
``TokenServer`` is a fake of an external token service (the
Docker Registry token auth spec): it checks basic credentials or an OAuth2
refresh token and issues ES256 JWTs whose ``x5c`` certificate the registry
trusts through its ``rootcertbundle``. It serves over HTTPS with the same CA.
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tools.demo_pki import Pki, htpasswd, make_pki, pem_bytes, subject_name

__all__ = ["Pki", "TokenServer", "basic_entry", "docker_config", "htpasswd", "make_pki", "write_helper"]
SERVICE = "llmcc-test-registry"
ISSUER = "llmcc-test-token-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """A token service: basic credentials (GET) or a refresh token (POST) in, a signed JWT out."""

    users: dict[str, str]
    refresh_tokens: dict[str, str]  # refresh token -> user
    pki: Pki
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # (method, scope, had credentials)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._key = key
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject_name(ISSUER))
            .issuer_name(subject_name(ISSUER))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .sign(key, hashes.SHA256())
        )

    def write_root(self, path: Path) -> Path:
        path.write_bytes(pem_bytes(self._cert))
        return path

    def registry_auth(self, root: Path) -> str:
        """The registry's ``auth:`` section that trusts this server."""
        return (
            f"  token:\n    realm: {self.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {root}\n"
        )

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}/token"

    def jwt(self, scope: str, user: str | None) -> str:
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        access = []
        if user is not None and scope:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                scope = query.get("scope", [""])[0]
                header = self.headers.get("Authorization", "")
                outer.requests.append(("GET", scope, bool(header)))
                user = None
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if outer.users.get(name) != password:
                        self._reply(401, {"details": "bad credentials"})
                        return
                    user = name
                self._reply(200, {"token": outer.jwt(scope, user), "expires_in": 300})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                scope = form.get("scope", [""])[0]
                outer.requests.append(("POST", scope, True))
                user = outer.refresh_tokens.get(form.get("refresh_token", [""])[0])
                if form.get("grant_type") != ["refresh_token"] or user is None:
                    self._reply(401, {"error": "invalid_grant"})
                    return
                self._reply(200, {"access_token": outer.jwt(scope, user), "expires_in": 300})

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.cert, self.pki.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


HELPER = """#!{python}
import json, os, sys
server = sys.stdin.read().strip()
sys.stderr.write("helper debug: secret is " + os.environ.get("LLMCCTEST_HELPER_SECRET", "") + "\\n")
mode = os.environ.get("LLMCCTEST_HELPER_MODE", "")
if mode == "fail":
    print("fatal: keychain locked, secret " + os.environ.get("LLMCCTEST_HELPER_SECRET", ""))
    sys.exit(3)
if mode == "garbage":
    print("not json " + os.environ.get("LLMCCTEST_HELPER_SECRET", ""))
    sys.exit(0)
if mode == "sleep":
    import time
    time.sleep(5)
if sys.argv[1:] != ["get"] or server != os.environ.get("LLMCCTEST_HELPER_REGISTRY"):
    print("credentials not found in native keychain")
    sys.exit(1)
user = os.environ["LLMCCTEST_HELPER_USER"]
json.dump({{"ServerURL": server, "Username": user, "Secret": os.environ["LLMCCTEST_HELPER_SECRET"]}}, sys.stdout)
"""


def write_helper(bin_dir: Path, name: str, python: str) -> Path:
    """``docker-credential-<name>``: answers from LLMCCTEST_HELPER_* (no secret in any file)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text(HELPER.format(python=python))
    path.chmod(0o755)
    return path


def docker_config(directory: Path, config: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def basic_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
