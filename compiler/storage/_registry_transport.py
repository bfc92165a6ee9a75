"""How we reach a registry: TLS trust (``LLMCC_OCI_CA_FILE``), plain HTTP only on loopback, safe redirects; stdlib only.

Split from :mod:`compiler.storage._registry_auth` (credentials and handshakes):
this module knows no credential, only that ``Authorization`` never follows a
redirect to another origin (docs/store-layout.md, "Registry auth and TLS").
"""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from compiler.errors import StorageError

CA_FILE_ENV = "LLMCC_OCI_CA_FILE"
RACY_NS = 2_000_000_000  # a CA file changed more recently than this is not remembered


def tls_context(environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """The system's trust, plus the PEM bundle named by ``LLMCC_OCI_CA_FILE`` when set. Never unverified.

    Contexts are shared per CA file and its identity (device, inode, size, mtime,
    ctime): loading the system's CAs takes tens of milliseconds, and a CA file
    replaced in place is read again, even with its old mtime (``cp -p``, a tar
    extract). A file changed less than ``RACY_NS`` ago is read at every call and
    not remembered: a second write within its timestamp's clock tick would leave
    that identity as it was (git's racy-timestamp rule; FAT's tick is 2 s).

    Raises:
        StorageError: the CA file cannot be read or holds no certificate.
    """
    env = os.environ if environ is None else environ
    ca_file = env.get(CA_FILE_ENV) or None
    stamp: tuple[int, ...] = ()
    try:
        if ca_file:
            st = os.stat(ca_file)
            stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
                return _context.__wrapped__(ca_file, stamp)  # racy: read now, not remembered
    except OSError:
        stamp = (-1,)  # load_verify_locations says what is wrong
    return _context(ca_file, stamp)


@functools.lru_cache(maxsize=8)
def _context(ca_file: str | None, stamp: tuple[int, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as e:
            raise StorageError(f"{CA_FILE_ENV}={ca_file}: not a readable PEM CA bundle ({e})") from e
    return context


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``[::1]``: where plain HTTP is allowed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def describe_network_error(e: BaseException) -> str:
    """A network failure in one line; an untrusted certificate says how to trust it."""
    reason = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate not trusted ({reason.verify_message}); "
            f"if the registry uses a private CA, set {CA_FILE_ENV} to its PEM bundle"
        )
    return str(reason) or e.__class__.__name__


class _RedirectRefusedError(urllib.error.URLError):
    """A redirect SafeRedirects will not follow; its message never holds the URL's user info or query."""


class SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects (blob storage: S3-style 307) without carrying ``Authorization`` to another origin.

    A redirect to plain HTTP is refused unless it points to a loopback host; so
    is one to a URL with user info, or to one that does not parse.
    """

    def http_error_302(self, req: urllib.request.Request, fp: object, code: int, msg: str, headers: object) -> object:
        try:
            return super().http_error_302(req, fp, code, msg, headers)  # type: ignore[arg-type]
        except (ValueError, _RedirectRefusedError) as e:  # ValueError: urllib's urlparse of the Location
            close = getattr(fp, "close", None)  # the redirect's own reply: urllib closes it only on success
            if close is not None:
                close()
            if isinstance(e, ValueError):
                raise _RedirectRefusedError("redirect to an invalid URL refused") from None
            raise

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: object,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]
        assert new is not None  # CPython raises HTTPError rather than return None
        old, target = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(new.full_url)
        if target.username is not None:  # never echoed, nor followed: it may hold a password
            raise _RedirectRefusedError("redirect to a URL with user info refused")
        if target.scheme != "https" and not (target.scheme == "http" and is_loopback(target.hostname or "")):
            raise _RedirectRefusedError(f"redirect to a non-https URL ({target.scheme}://{target.hostname}) refused")
        if (old.scheme, old.hostname, old.port) != (target.scheme, target.hostname, target.port):
            new.remove_header("Authorization")
        return new


def opener(context: ssl.SSLContext) -> urllib.request.OpenerDirector:
    """An opener with ``context`` for HTTPS and :class:`SafeRedirects` for redirects."""
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), SafeRedirects())
