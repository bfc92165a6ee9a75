"""A minimal client for the OCI distribution HTTP API (registry v2), stdlib only.

Just what :mod:`compiler.storage.oci` needs: blob upload and download, manifest
put/get/head, and tag listing. Every download is checked against its digest.
Only :class:`~compiler.errors.StorageError` escapes (STYLE R6).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message

from compiler.errors import StorageError
from compiler.storage._registry_auth import Authenticator, api_host, scope_for
from compiler.storage._registry_transport import CA_FILE_ENV, describe_network_error, is_loopback, opener, tls_context
from compiler.storage.base import CorruptObjectError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# docker's reference grammar (distribution/reference): domain[:port], or [IPv6][:port]
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_REGISTRY = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_REPO = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TIMEOUT = 30.0
PAGE_SIZE = 1000  # tags per page of /tags/list
_READ_ATTEMPTS = 4
_TRANSIENT = frozenset({500, 502, 503, 504})
_MAX_PAGES = 1000
# Manifests, tag lists and error bodies are small; a registry sending more is refused.
_MAX_REPLY_BYTES = 4 * 1024 * 1024
_MAX_ERROR_PAGE = 64 * 1024  # read whole (to redact) before the excerpt is cut


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: Message
    body: bytes


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient:
    """One repository of one registry, with the auth of :mod:`compiler.storage._registry_auth`.

    HTTPS, verified against the system's CAs plus ``LLMCC_OCI_CA_FILE``. A
    loopback registry (``localhost``, ``127.0.0.1``, ``[::1]``) is spoken to in
    plain HTTP, unless ``LLMCC_OCI_CA_FILE`` is set: then over HTTPS too (a
    port-forwarded registry with a private CA).
    """

    def __init__(self, registry: str, repository: str, *, where: str) -> None:
        if "@" in registry:
            # never echo the URL: it holds a password
            raise StorageError(
                "an oci:// store URL cannot hold credentials: use docker login or an auth file (docs/store-layout.md)"
            )
        if not _REGISTRY.fullmatch(registry):
            # a host[:port] only: "?", "#", "/" or CR/LF would change the URL or a header (never echoed raw)
            shown = "".join(c if c.isprintable() else "?" for c in where)
            raise StorageError(
                f"{shown}: expected oci://REGISTRY/REPOSITORY, REGISTRY a host[:port] (docs/store-layout.md)"
            )
        if not _REPO.fullmatch(repository):
            raise StorageError(f"{where}: expected oci://REGISTRY/REPOSITORY (lowercase repository path)")
        host = urllib.parse.urlsplit(f"//{registry}").hostname or ""
        plain = is_loopback(host) and not os.environ.get(CA_FILE_ENV)
        scheme = "http" if plain else "https"
        api = api_host(registry)
        self._base = f"{scheme}://{api}/v2/{repository}"
        self._origin = f"{scheme}://{api}"
        self._repository = repository
        self._where = where
        self._opener = opener(tls_context())
        self._auth = Authenticator(registry, self._opener, plain_http=plain)

    def manifest_digest(self, reference: str) -> str | None:
        """The digest a tag points to, or None when the tag does not exist."""
        reply = self._request("HEAD", f"/manifests/{reference}", accept=OCI_MANIFEST, ok=(200, 404))
        if reply.status == 404:
            return None
        digest = reply.headers.get("Docker-Content-Digest", "")
        if not _DIGEST.fullmatch(digest):
            # the registry did not say; fetch and hash the manifest ourselves
            return sha256_digest(self._request("GET", f"/manifests/{reference}", accept=OCI_MANIFEST).body)
        return digest

    def get_manifest(self, digest: str) -> bytes:
        """The manifest with ``digest``, checked against it."""
        body = self._request("GET", f"/manifests/{_check_digest(digest)}", accept=OCI_MANIFEST).body
        if sha256_digest(body) != digest:
            raise CorruptObjectError(f"{self._where}: manifest {digest} does not match its digest")
        return body

    def put_manifest(self, tag: str, manifest: bytes) -> None:
        self._request("PUT", f"/manifests/{tag}", body=manifest, content_type=OCI_MANIFEST, ok=(200, 201, 202))

    def get_blob(self, digest: str, size: int) -> bytes:
        """The blob with ``digest``, checked against it and its size."""
        body = self._request("GET", f"/blobs/{_check_digest(digest)}", limit=size).body
        if len(body) != size or sha256_digest(body) != digest:
            raise CorruptObjectError(f"{self._where}: blob {digest} does not match its digest and size")
        return body

    def put_blob(self, data: bytes) -> str:
        """Upload ``data`` (monolithic POST + PUT) unless the registry has it; its digest."""
        digest = sha256_digest(data)
        if self._request("HEAD", f"/blobs/{digest}", ok=(200, 404)).status == 200:
            return digest
        started = self._request("POST", "/blobs/uploads/", ok=(202,))
        location = started.headers.get("Location")
        if not location:
            raise StorageError(f"{self._where}: registry gave no upload location")
        url = urllib.parse.urljoin(self._origin + "/", location)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname or "")):
            raise StorageError(
                f"{self._where}: upload location is not https ({parts.scheme}://{parts.hostname}); refused"
            )
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        self._request("PUT", url, body=data, content_type="application/octet-stream", ok=(201,))
        return digest

    def tags(self) -> list[str]:
        """Every tag of the repository (following ``Link`` pagination); [] if it does not exist."""
        out: list[str] = []
        path: str | None = f"/tags/list?n={PAGE_SIZE}"
        for _ in range(_MAX_PAGES):
            if path is None:
                return out
            reply = self._request("GET", path, ok=(200, 404))
            if reply.status == 404:
                return out
            try:
                tags = json.loads(reply.body).get("tags") or []  # distribution says null for none
            except (ValueError, AttributeError, RecursionError) as e:
                raise StorageError(f"{self._where}: registry sent a bad tag list") from e
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise StorageError(f"{self._where}: registry sent a bad tag list")
            out.extend(tags)
            path = _next_link(reply.headers.get("Link"), self._origin)
        raise StorageError(f"{self._where}: more than {_MAX_PAGES} pages of tags")

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        accept: str | None = None,
        content_type: str | None = None,
        ok: tuple[int, ...] = (200,),
        limit: int = _MAX_REPLY_BYTES,
    ) -> _Reply:
        """One request, answering one auth challenge; a reply body over ``limit`` bytes is refused, never read whole.

        Credentials go only to the registry's own origin: a URL it names on
        another origin (an upload location) gets none, and a 401 from another
        origin (a redirect target) is not answered, as docker and oras-go do.
        """
        url = path if path.startswith(("http://", "https://")) else self._base + path
        scope = scope_for(self._repository, method)
        own = self._own_origin(url)
        authorization = self._auth.header(scope) if own else None
        challenged = False
        # distribution's filesystem driver can answer 500 while a concurrent PUT rewrites
        # a tag: reads are idempotent, so they are retried a few times
        attempts = _READ_ATTEMPTS if method in ("GET", "HEAD") else 1
        attempt = 1
        while True:
            request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - scheme fixed above
            if accept:
                request.add_header("Accept", accept)
            if content_type:
                request.add_header("Content-Type", content_type)
            if authorization:
                request.add_header("Authorization", authorization)
            try:
                with self._opener.open(request, timeout=_TIMEOUT) as response:
                    return _Reply(response.status, response.headers, self._read_capped(response, limit, url))
            except urllib.error.HTTPError as e:
                if e.code in ok:
                    return _Reply(e.code, e.headers, self._read_capped(e, limit, url))
                if e.code == 401 and not challenged and own and self._own_origin(e.url):
                    challenged = True
                    challenge = e.headers.get("WWW-Authenticate")
                    e.close()
                    authorization = self._auth.answer(challenge, scope)
                    continue
                if e.code in (401, 403):
                    e.close()
                    raise self._auth.refused(scope, e.code) from e
                # a proxy's error page may echo the request's headers: redact the whole page, then cut it
                page = self._auth.redact(e.read(_MAX_ERROR_PAGE).decode("utf-8", "replace"))
                detail = " ".join(page.split())[:300]  # one line (an HTML page has many)
                if e.code in _TRANSIENT and attempt < attempts:
                    time.sleep(0.05 * 2**attempt)
                    attempt += 1
                    continue
                if e.code == 400 and url.startswith("http://") and not detail:
                    detail = f"(a TLS registry? set {CA_FILE_ENV} to speak HTTPS on loopback)"
                raise StorageError(f"{self._where}: {method} {url}: HTTP {e.code} {detail}".rstrip()) from e
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                raise StorageError(f"{self._where}: {method} {url}: {describe_network_error(e)}") from e

    def _own_origin(self, url: str) -> bool:
        return _origin_of(url) == _origin_of(self._origin)

    def _read_capped(self, response: http.client.HTTPResponse | urllib.error.HTTPError, limit: int, url: str) -> bytes:
        length = response.headers.get("Content-Length")
        if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
            raise CorruptObjectError(f"{self._where}: {url}: {length} bytes, more than the {limit} accepted here")
        body = response.read(limit + 1)
        if len(body) > limit:
            raise CorruptObjectError(f"{self._where}: {url}: more than the {limit} bytes accepted here")
        return body


def _origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, lowercase host, port with the scheme's default filled in), as RFC 6454 compares origins."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number: no origin of ours
        return ("", "", None)
    return parts.scheme, (parts.hostname or ""), port


def _check_digest(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise CorruptObjectError(f"{digest!r} is not a sha256 digest")
    return digest


def _next_link(link: str | None, origin: str) -> str | None:
    """The target of ``Link: </v2/...?last=x&n=1000>; rel="next"``, as an absolute URL."""
    if not link:
        return None
    m = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", link)
    if m is None:
        return None
    url = urllib.parse.urljoin(origin + "/", str(m.group(1)))
    if not url.startswith(origin + "/"):
        raise StorageError(f"registry pagination points to another origin: {url}")
    return url
