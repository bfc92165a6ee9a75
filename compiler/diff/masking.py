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
from compiler.masking import SECRET_TEXT, mask_paths

if TYPE_CHECKING:
    from compiler.compile.types import CompileResult, TargetStack


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
    """A copy of ``value`` with the subtree at each path replaced by its digest (``compiler.masking``'s rule)."""
    return mask_paths(value, paths, lambda secret: digest_secret(key, secret))  # type: ignore[arg-type, return-value]


def sops_paths(stack: TargetStack, module: str) -> list[JsonPath]:
    """Every path a SOPS layer of the stack sets in ``module``, cut at the first list.

    A value that came from a secrets file is secret whatever its schema says.
    """
    out: list[JsonPath] = []
    for layer in stack.layers:
        if layer.ref.secrets and module in layer.modules:
            _leaves(layer.modules[module], (), out)
    return out


def secret_fields(result: CompileResult) -> dict[str, list[JsonPath]]:
    """Per module, every path of ``result`` to mask: marked ``x-secret`` by its schema, or set by a SOPS file.

    The one answer to "which values are secret" for what ``explain``, policy
    rules and ``diff`` show (``compiler.masking``). Bundles seal the marked
    fields only (``result.secrets``).
    """
    out: dict[str, list[JsonPath]] = {}
    for module in result.modules:
        paths = {*result.secrets.get(module, ()), *sops_paths(result.stack, module)}
        if paths:
            out[module] = sorted(paths, key=str)
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


__all__ = [
    "SECRET_TEXT",
    "Masked",
    "SecretDigest",
    "digest_secret",
    "mask_secrets",
    "public",
    "secret_fields",
    "sops_paths",
]
