"""Registry credentials and the distribution API's auth handshakes; stdlib only (TLS, redirects: _registry_transport).

Where credentials come from (what ``docker login``, ``oras login`` and
``podman login --authfile`` leave behind; docs/store-layout.md):

1. the auth file: ``$REGISTRY_AUTH_FILE`` when set (containers-auth.json(5),
   the docker format), else ``$DOCKER_CONFIG/config.json``, else
   ``~/.docker/config.json``; no file means anonymous;
2. in it, as docker resolves them: ``credHelpers[<registry>]``, else
   ``credsStore`` (both run ``docker-credential-<name> get``: the registry on
   stdin, ``{"Username", "Secret"}`` on stdout; ``Username`` ``<token>`` marks
   an identity token), else ``auths[<registry>]`` with ``auth``
   (base64 ``user:password``), ``username``/``password``, or ``identitytoken``.

How they are sent: a request goes out with what the registry accepted before
(a cached bearer token for the request's scope, or basic credentials); a 401
answers with a ``WWW-Authenticate`` challenge (RFC 7235). ``Basic`` (RFC 7617):
the credentials. ``Bearer realm=..,service=..,scope=..`` (the Docker Registry
token authentication spec, distribution/docs/spec/auth/token.md): a token from
the realm, fetched with basic credentials or anonymously (GET), or with an
identity token as an OAuth2 refresh token (POST, spec auth/oauth.md); tokens
are cached per scope until ``expires_in`` (default 60 s) runs out, and a 401
on a cached token (e.g. a push after a pull token) is challenged once more.

Secrets never leave this module in text: errors name the registry, the scope
and the auth file, never a credential, token or a helper's output.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import json
import os
import re
import selectors
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from compiler.errors import StorageError
from compiler.storage._registry_transport import describe_network_error, is_loopback

_HELPER_TIMEOUT = 30.0
_MAX_HELPER_REPLY = 64 * 1024  # a {"Username", "Secret"} answer; docker-credential-helpers send well under 4 KiB
_TOKEN_TIMEOUT = 30.0
_MAX_TOKEN_REPLY = 1024 * 1024
_DEFAULT_EXPIRES = 60  # seconds, the token spec's default for a reply without expires_in
_EXPIRY_MARGIN = 5.0
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 7230 tchar
_SCHEME = re.compile(rf"\s*,?\s*({_TCHARS})(?=\s|,|$)")
_B64TOKEN = re.compile(r"[\x21-\x7e]+")  # what may follow "Bearer ": visible ASCII (RFC 6750 §2.1, loosely)
_PARAM = re.compile(rf"\s*,?\s*({_TCHARS})\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^,\s]*)")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and its secret: a password, or an identity (OAuth2 refresh) token."""

    username: str
    secret: str = field(repr=False)
    identity_token: bool = False
    source: str = ""  # where they came from, for messages: "auth file X" or "docker-credential-X"

    def basic(self) -> str:
        """The ``Authorization`` value of RFC 7617 basic auth."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: scheme (lowercase) and its parameters."""

    scheme: str
    params: Mapping[str, str]


def api_host(registry: str) -> str:
    """The host[:port] that serves the registry API: Docker Hub's names map to ``registry-1.docker.io``."""
    return "registry-1.docker.io" if registry in _DOCKER_HUB else registry


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` value (RFC 7235 §4.1), in order; unparseable rest ignored."""
    out: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while pos < len(header):
        param = _PARAM.match(header, pos)
        if param is not None and out:
            value = param.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            out[-1][1][param.group(1).lower()] = value
            pos = param.end()
            continue
        scheme = _SCHEME.match(header, pos)
        if scheme is None:
            break
        out.append((scheme.group(1).lower(), {}))
        pos = scheme.end()
    return [Challenge(s, p) for s, p in out]


def auth_file(environ: Mapping[str, str]) -> Path:
    """The auth file read: ``REGISTRY_AUTH_FILE``, else ``$DOCKER_CONFIG/config.json``, else ``~/.docker``'s."""
    if environ.get("REGISTRY_AUTH_FILE"):
        return Path(environ["REGISTRY_AUTH_FILE"])
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]) / "config.json"
    return Path.home() / ".docker" / "config.json"


def _host_of_key(key: str) -> str:
    """``https://r.example:5000/v1/`` -> ``r.example:5000`` (docker accepts URLs as auths keys)."""
    rest = key.split("://", 1)[1] if "://" in key else key
    host = rest.split("/", 1)[0].lower()
    return "index.docker.io" if host in _DOCKER_HUB else host


def credentials_for(registry: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials stored for ``registry`` (host[:port]), or None (anonymous).

    Raises:
        StorageError: an unreadable or malformed auth file, or a credential helper
            that is missing or fails (its output is never shown: it may hold secrets).
    """
    env = os.environ if environ is None else environ
    path = auth_file(env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise StorageError(f"{path}: cannot read the registry auth file: {e.__class__.__name__}") from e
    try:
        config = json.loads(text)
    except ValueError as e:
        # the message of a JSON error quotes the document: name only the place
        raise StorageError(f"{path}: the registry auth file is not valid JSON (line {_line_of(e)})") from e
    except RecursionError as e:  # json's C scanner: nesting past the interpreter's recursion limit
        raise StorageError(f"{path}: the registry auth file is not valid JSON (nested too deep)") from e
    if not isinstance(config, dict):
        raise StorageError(f"{path}: the registry auth file is not a JSON object")
    host = _host_of_key(registry)
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _host_of_key(str(key)) == host and isinstance(name, str) and name:
                return _from_helper(name, registry)
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return _from_helper(store, registry)
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if _host_of_key(str(key)) == host and isinstance(entry, dict):
            return _from_entry(entry, registry, path)
    return None


def _line_of(e: ValueError) -> int:
    return int(getattr(e, "lineno", 0))


def _from_entry(entry: dict[str, object], registry: str, path: Path) -> Credentials | None:
    source = f"auth file {path}"
    token = entry.get("identitytoken")
    encoded = entry.get("auth")
    username, password = entry.get("username"), entry.get("password")
    if isinstance(encoded, str) and encoded:
        try:
            username, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise StorageError(f"{path}: the auth of {registry} is not base64 of user:password")
    if isinstance(token, str) and token:
        return Credentials(username if isinstance(username, str) else "", token, identity_token=True, source=source)
    if isinstance(username, str) and isinstance(password, str) and (username or password):
        return Credentials(username, password, source=source)
    return None


def _from_helper(name: str, registry: str) -> Credentials | None:
    """``docker-credential-<name> get`` for ``registry`` (docker-credential-helpers' protocol)."""
    program = f"docker-credential-{name}"
    server = _DOCKER_HUB_KEY if _host_of_key(registry) == "index.docker.io" else registry
    try:
        returncode, stdout = _run_helper(program, server.encode())
    except FileNotFoundError as e:
        raise StorageError(f"credential helper {program} (for {registry}) is not on PATH") from e
    except subprocess.TimeoutExpired as e:
        raise StorageError(f"credential helper {program} gave no answer for {registry} in {_HELPER_TIMEOUT:g}s") from e
    except OSError as e:
        raise StorageError(f"credential helper {program} cannot run: {e.__class__.__name__}") from e
    if len(stdout) > _MAX_HELPER_REPLY:
        raise StorageError(f"credential helper {program} said more than {_MAX_HELPER_REPLY} bytes for {registry}")
    if returncode != 0:
        if b"credentials not found" in stdout.lower():
            return None  # the helper's documented "no entry" answer: anonymous
        raise StorageError(f"credential helper {program} failed for {registry} (exit {returncode})")
    try:
        reply = json.loads(stdout)
        username, secret = reply["Username"], reply["Secret"]
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise StorageError(f"credential helper {program} gave no {{Username, Secret}} JSON for {registry}") from e
    if not isinstance(username, str) or not isinstance(secret, str):
        raise StorageError(f"credential helper {program} gave no {{Username, Secret}} JSON for {registry}")
    if username == "<token>":
        return Credentials("", secret, identity_token=True, source=program)
    return Credentials(username, secret, source=program)


def _run_helper(program: str, stdin: bytes) -> tuple[int, bytes]:
    """``program get`` with ``stdin``: its exit code and at most ``_MAX_HELPER_REPLY + 1`` bytes of stdout.

    Its stderr is discarded (never relayed: it may hold secrets). A helper that
    says more is killed, not read to the end; one still running or holding its
    stdout open after ``_HELPER_TIMEOUT`` seconds raises TimeoutExpired.

    Raises:
        OSError: the program cannot be started (FileNotFoundError: not on PATH).
        subprocess.TimeoutExpired: no answer in time.
    """
    deadline = time.monotonic() + _HELPER_TIMEOUT
    with subprocess.Popen(
        [program, "get"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        assert process.stdin is not None  # PIPE above
        assert process.stdout is not None
        try:
            with contextlib.suppress(BrokenPipeError):  # a helper that exits without reading
                process.stdin.write(stdin)
                process.stdin.close()
            out = bytearray()
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                while len(out) <= _MAX_HELPER_REPLY:
                    left = deadline - time.monotonic()
                    if left <= 0 or not selector.select(left):
                        raise subprocess.TimeoutExpired([program, "get"], _HELPER_TIMEOUT)
                    chunk = os.read(process.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    out += chunk
            if len(out) > _MAX_HELPER_REPLY:
                return -1, bytes(out)
            return process.wait(max(0.0, deadline - time.monotonic())), bytes(out)
        finally:
            if process.poll() is None:
                process.kill()


def scope_for(repository: str, method: str) -> str:
    """The token scope a request needs: pull for reads, pull and push for writes."""
    actions = "pull" if method in ("GET", "HEAD") else "pull,push"
    return f"repository:{repository}:{actions}"


@dataclass(slots=True)
class _Token:
    value: str = field(repr=False)
    expires: float


class Authenticator:
    """The ``Authorization`` header for each request of one registry, and the answers to its challenges.

    ``credentials`` is called at most once, on the first challenge: a registry
    that never asks never causes the auth file to be read or a helper to run.
    ``plain_http``: the registry itself is spoken to in plain HTTP (loopback);
    only then may its token realm be a plain-HTTP loopback URL, so a TLS
    registry never makes credentials travel in clear.
    """

    def __init__(
        self,
        registry: str,
        opener: urllib.request.OpenerDirector,
        *,
        plain_http: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._registry = registry
        self._plain_http = plain_http
        self._opener = opener
        self._environ = environ
        self._loaded = False
        self._credentials: Credentials | None = None
        self._basic = False
        self._tokens: dict[str, _Token] = {}

    def header(self, scope: str) -> str | None:
        """What to send with a request needing ``scope``, from what the registry accepted before."""
        if self._basic and self._credentials is not None:
            return self._credentials.basic()
        token = self._tokens.get(scope)
        if token is not None and time.monotonic() < token.expires:
            return "Bearer " + token.value
        return None

    def answer(self, www_authenticate: str | None, scope: str) -> str:
        """The ``Authorization`` value to retry with after a 401 carrying ``www_authenticate``.

        Raises:
            StorageError: no usable challenge, no credentials for a basic
                challenge, or a token service error.
        """
        challenges = parse_challenges(www_authenticate or "")
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            challenge = by_scheme["bearer"]
            self._tokens.pop(scope, None)
            return "Bearer " + self._fetch_token(challenge, scope)
        if "basic" in by_scheme:
            credentials = self._load()
            if credentials is None:
                raise StorageError(
                    f"{self._registry}: the registry asks for credentials ({scope}) and none are stored "
                    f"for it in {auth_file(self._env)} (docker login {self._registry})"
                )
            if credentials.identity_token:
                raise StorageError(f"{self._registry}: the registry asks for a password, not an identity token")
            self._basic = True
            return credentials.basic()
        raise StorageError(f"{self._registry}: HTTP 401 for {scope} with no Basic or Bearer challenge")

    def refused(self, scope: str, status: int) -> StorageError:
        """The one line for a registry that refused us: registry, scope, where credentials came from."""
        what = "access denied" if status == 403 else "authentication failed"
        credentials = self._credentials if self._loaded else None
        source = f"credentials from {credentials.source}" if credentials else "anonymous"
        return StorageError(f"{self._registry}: {what} for {scope} (HTTP {status}, {source})")

    def redact(self, text: str) -> str:
        """``text`` (a registry's error page) with every credential and token this client holds replaced."""
        secrets = [token.value for token in self._tokens.values()]
        if self._credentials is not None:
            secrets += [self._credentials.secret, self._credentials.basic().split(" ", 1)[1]]
        for secret in sorted(filter(None, secrets), key=len, reverse=True):
            text = text.replace(secret, "<redacted>")
        return text

    @property
    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _load(self) -> Credentials | None:
        if not self._loaded:
            self._credentials = credentials_for(self._registry, self._env)
            self._loaded = True
        return self._credentials

    def _fetch_token(self, challenge: Challenge, scope: str) -> str:
        realm = challenge.params.get("realm", "")
        try:
            parts = urllib.parse.urlsplit(realm)
            valid = bool(parts.hostname) and parts.username is None and (parts.port is None or parts.port > 0)
        except ValueError:  # "[::1", a port that is not a number
            valid = False
        if not valid:  # never echoed: a userinfo part may hold a password
            raise StorageError(f"{self._registry}: the token realm is not a URL of host[:port]; refused")
        loopback_http = parts.scheme == "http" and is_loopback(parts.hostname or "")
        if parts.scheme != "https" and not (loopback_http and self._plain_http):
            raise StorageError(f"{self._registry}: the token realm is not an https:// URL; refused")
        wanted = challenge.params.get("scope") or scope
        query: dict[str, str] = {}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        credentials = self._load()
        if credentials is not None and credentials.identity_token:
            form = {**query, "grant_type": "refresh_token", "refresh_token": credentials.secret}
            form.update(scope=wanted, client_id="llmcc")
            request = urllib.request.Request(realm, data=urllib.parse.urlencode(form).encode(), method="POST")  # noqa: S310 - https or loopback, checked above
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        else:
            query["scope"] = wanted
            separator = "&" if parts.query else "?"
            request = urllib.request.Request(realm + separator + urllib.parse.urlencode(query))  # noqa: S310 - checked above
            if credentials is not None:
                request.add_header("Authorization", credentials.basic())
        where = f"{self._registry}: token service {parts.hostname}"
        try:
            with self._opener.open(request, timeout=_TOKEN_TIMEOUT) as reply:
                body = reply.read(_MAX_TOKEN_REPLY + 1)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code in (401, 403):
                raise self.refused(wanted, e.code) from None
            raise StorageError(f"{where}: HTTP {e.code} for {wanted}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            raise StorageError(f"{where}: {describe_network_error(e)}") from None
        try:
            reply_json = json.loads(body[:_MAX_TOKEN_REPLY])
            token = reply_json.get("token") or reply_json.get("access_token")
            expires_in = reply_json.get("expires_in", _DEFAULT_EXPIRES)
        except (ValueError, AttributeError, RecursionError):
            token, expires_in = None, 0
        if not isinstance(token, str) or not token:
            raise StorageError(f"{where}: the reply holds no token for {wanted}")
        if not _B64TOKEN.fullmatch(token):
            # it goes into a header: CR/LF would inject one, non-latin-1 cannot be sent; never echoed
            raise StorageError(f"{where}: the token for {wanted} is not a visible-ASCII token (RFC 6750); refused")
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
            expires_in = _DEFAULT_EXPIRES
        self._tokens[scope] = _Token(token, time.monotonic() + max(0.0, expires_in - _EXPIRY_MARGIN))
        return token
