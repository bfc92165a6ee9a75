"""What an encrypted SOPS file tells without sops: which values sops will decrypt, and their types.

SOPS keeps keys, value types and its metadata in plaintext, so these checks
need no identity and never see a secret. They exist because sops's own errors
quote the plaintext they choke on (issue 9 §5): a value left in plaintext
where sops expects ciphertext makes ``sops decrypt`` print it (a string) or
panic (a number or boolean). Finding it first lets llmcc report the file, the
line and the key path instead.

Rules (sops ``Tree.Decrypt``, observed with sops 3.11): a leaf is decrypted
unless a key on its path ends with ``unencrypted_suffix`` or matches
``unencrypted_regex``; with ``encrypted_suffix`` / ``encrypted_regex`` only
leaves with a key on their path that ends with / matches it are decrypted.
``null`` and the empty string are never encrypted (sops leaves them as they
are).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from typing import TypeGuard

from compiler.errors import SecretsError
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Value

SOPS_KEY = "sops"
_POSIX_CLASS = re.compile(r"\[:\^?[a-z]+:\]")
_SOPS_ENC = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:(\w+)\]")


def is_sops_value(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a SOPS-encrypted scalar ``ENC[AES256_GCM,...]``."""
    return isinstance(value, str) and _SOPS_ENC.fullmatch(value) is not None


def sops_value_type(enc: str) -> str:
    """The type sops recorded for an encrypted value: ``str``, ``int``, ``float``, ``bool``, ``time``.

    Raises:
        SecretsError: ``enc`` is not a SOPS ``ENC[AES256_GCM,...]`` value.
    """
    m = _SOPS_ENC.fullmatch(enc)
    if m is None:
        raise SecretsError("not a SOPS-encrypted value")
    return m.group(1)


def go_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled to match as sops (Go's RE2 syntax) matches it.

    Go's ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII (``re.ASCII``). Forms both accept
    but read differently are refused: POSIX classes (Go: ``[[:alpha:]]`` is a letter;
    Python: a set of ``[:alph`` then ``]``) and the nested sets Python warns about. Go-only
    syntax (``\\z``, ``\\pL``) does not compile here; Python-only syntax fails in sops.

    Raises:
        re.error: not a regular expression, or one Python would read otherwise than Go.
    """
    if _POSIX_CLASS.search(pattern):
        raise re.error("POSIX classes such as [[:alpha:]] mean something else to Python: write ranges ([a-zA-Z])")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        try:
            return re.compile(pattern, re.ASCII)
        except FutureWarning as w:
            raise re.error(f"{w} (Go reads it otherwise)") from w


def sops_metadata(value: Value) -> Mapping[str, Value]:
    """The ``sops:`` mapping of a SOPS document (empty when there is none)."""
    meta = value.get(SOPS_KEY) if isinstance(value, dict) else None
    return meta if isinstance(meta, dict) else {}


def plaintext_leaves(value: Value) -> list[JsonPath] | None:
    """Leaves sops will try to decrypt that are not ``ENC[...]`` values.

    Returns:
        The paths, in document order; None when the file's ``*_regex`` metadata
        is not a regular expression Python can read (then sops alone decides).
    """
    meta = sops_metadata(value)
    try:
        rule = _Rule(meta)
    except re.error:
        return None
    out: list[JsonPath] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            if key != SOPS_KEY:
                out += rule.plaintext(sub, (key,), (key,))
    return out


def typed_leaves(value: Value, path: JsonPath = ()) -> Iterator[tuple[JsonPath, str]]:
    """``(path, type)`` for every ``ENC[...]`` leaf under ``value``: the type sops recorded."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if key != SOPS_KEY or path:
                yield from typed_leaves(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from typed_leaves(sub, (*path, i))
    elif is_sops_value(value):
        yield path, sops_value_type(value)


class _Rule:
    def __init__(self, meta: Mapping[str, Value]) -> None:
        def text(name: str) -> str:
            v = meta.get(name)
            return v if isinstance(v, str) else ""

        self.unenc_suffix = text("unencrypted_suffix")
        self.enc_suffix = text("encrypted_suffix")
        self.unenc_re = go_regex(text("unencrypted_regex")) if text("unencrypted_regex") else None
        self.enc_re = go_regex(text("encrypted_regex")) if text("encrypted_regex") else None

    def decrypts(self, keys: tuple[str, ...]) -> bool:
        if self.unenc_suffix and any(k.endswith(self.unenc_suffix) for k in keys):
            return False
        if self.enc_suffix and not any(k.endswith(self.enc_suffix) for k in keys):
            return False
        if self.unenc_re is not None and any(self.unenc_re.search(k) for k in keys):
            return False
        return self.enc_re is None or any(self.enc_re.search(k) for k in keys)

    def plaintext(self, value: Value, path: JsonPath, keys: tuple[str, ...]) -> list[JsonPath]:
        if isinstance(value, dict):
            return [p for k, v in value.items() for p in self.plaintext(v, (*path, k), (*keys, k))]
        if isinstance(value, list):
            return [p for i, v in enumerate(value) for p in self.plaintext(v, (*path, i), keys)]
        if value is None or value == "" or is_sops_value(value) or not self.decrypts(keys):
            return []
        return [path]
