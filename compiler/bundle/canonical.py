"""The one canonical JSON encoding of bundles (DESIGN §6, STYLE R13)."""

from __future__ import annotations

import hashlib
import json

from compiler.jsontypes import JSONValue


def canonical_json(obj: JSONValue) -> bytes:
    """``json.dumps(sort_keys, no whitespace, ensure_ascii=False)`` in UTF-8.

    Floats keep their decimal point (``1.0`` stays ``1.0``); NaN and infinities
    are refused because JSON has no spelling for them.
    """
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as e:
        raise ValueError(f"not representable in JSON: {e}") from e
    return text.encode("utf-8")


def digest(data: bytes) -> str:
    """``sha256:<lowercase hex>``, the form of ``metadata.previous``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
