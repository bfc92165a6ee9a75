"""Secrets become keyed digests before anything is compared, so no value or ciphertext leaves.

With an identity the plaintext is digested; without one, the SOPS ciphertext
stand-in is (docs/bundle-format.md). The key is random per run (injected, STYLE R13), so a
digest means nothing outside the process that made it. A digest prints as
``<secret>`` and JSON-encodes to the same, never to its bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias

from compiler.jsonpath import JsonPath
from compiler.load.yaml import Value

if TYPE_CHECKING:
    from compiler.compile.types import TargetStack

SECRET_TEXT = "<secret>"  # noqa: S105 - the placeholder printed instead of a secret


class SecretDigest:
    """An HMAC of a secret value, comparable within one run. Its repr is redacted."""

    __slots__ = ("_digest",)

    def __init__(self, digest: bytes) -> None:
        self._digest = digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretDigest) and hmac.compare_digest(self._digest, other._digest)

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        return SECRET_TEXT

    __str__ = __repr__


Masked: TypeAlias = "str | int | float | bool | SecretDigest | list[Masked] | dict[str, Masked] | None"


def digest_secret(key: bytes, value: Value) -> SecretDigest:
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return SecretDigest(hmac.new(key, data, hashlib.sha256).digest())


def mask_secrets(value: Value, paths: Iterable[JsonPath], key: bytes) -> Masked:
    """A copy of ``value`` with the subtree at each path replaced by its digest.

    Only the containers on the way to a secret are copied; paths that do not
    exist in ``value`` are skipped.
    """
    out: Masked = value  # type: ignore[assignment]  # no Tagged after merging
    for path in sorted(set(paths), key=len):
        out = _replace(out, path, key)
    return out


def _replace(node: Masked, path: JsonPath, key: bytes) -> Masked:
    if isinstance(node, SecretDigest):
        return node  # an enclosing path is secret already
    if not path:
        return digest_secret(key, node)  # type: ignore[arg-type]
    head, rest = path[0], path[1:]
    if isinstance(node, dict) and isinstance(head, str) and head in node:
        copy = dict(node)
        copy[head] = _replace(node[head], rest, key)
        return copy
    if isinstance(node, list) and isinstance(head, int) and 0 <= head < len(node):
        items = list(node)
        items[head] = _replace(node[head], rest, key)
        return items
    return node


def sops_paths(stack: TargetStack, module: str) -> list[JsonPath]:
    """Every path a SOPS layer of the stack sets in ``module``, cut at the first list.

    A value that came from a secrets file is secret whatever its schema says.
    """
    out: list[JsonPath] = []
    for layer in stack.layers:
        if layer.ref.secrets and module in layer.modules:
            _leaves(layer.modules[module], (), out)
    return out


def _leaves(node: Value, path: JsonPath, out: list[JsonPath]) -> None:
    if isinstance(node, dict) and node:
        for k, v in node.items():
            _leaves(v, (*path, k), out)
    else:
        out.append(path)  # a scalar, a whole list, a tagged node or an empty map


def public(value: Masked) -> object:
    """``value`` as plain JSON data, each digest replaced by ``"<secret>"``."""
    if isinstance(value, SecretDigest):
        return SECRET_TEXT
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


__all__ = ["Masked", "SecretDigest", "digest_secret", "mask_secrets", "public", "sops_paths"]
