"""The one canonical JSON encoding of bundles (docs/bundle-format.md, STYLE R13)."""

from __future__ import annotations

import hashlib
import json
import math
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]

from compiler.jsontypes import JSONValue

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ENCODE = _ENCODER.encode
# The C encoder that ``_ENCODE`` builds on every call (json.encoder.JSONEncoder.iterencode),
# built once: the same arguments, so the same text, without the per-call set-up that cost
# more than encoding a small map. No circular-reference markers: loaded values are trees
# (a YAML alias refers to a node already complete), and a cycle would still fail, as a
# RecursionError. None where the C accelerator is missing.
_C_ENCODER = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, _ENCODER.default, encode_basestring, None, ":", ",", True, False, False)
)


def _whole(obj: object) -> str:
    return _ENCODE(obj) if _C_ENCODER is None else "".join(_C_ENCODER(obj, 0))


class InvalidJsonError(ValueError):
    """Bytes that are not strict JSON (``loads_strict``'s rules): bad UTF-8, a repeated key, NaN, ..."""


class NotCanonicalError(ValueError):
    """Strict JSON, but not byte for byte its canonical form (``canonical_json``)."""


# id(dict) -> (the dict, its canonical text). Holding the dict keeps its id from being reused.
EncodingCache = dict[int, tuple[object, str]]


def canonical_json(
    obj: JSONValue, *, cache: EncodingCache | None = None, store: bool = False, whole_at: int = 2
) -> bytes:
    """``json.dumps(sort_keys, no whitespace, ensure_ascii=False)`` in UTF-8.

    Floats keep their decimal point (``1.0`` stays ``1.0``); NaN and infinities
    are refused because JSON has no spelling for them.

    ``cache`` reuses the text of maps already encoded, found by identity: merged
    configurations share unchanged subtrees between targets, so a tenant's bundle
    re-encodes only what its layers changed. ``store`` adds this object's maps to
    the cache. Maps nested ``whole_at`` levels deep are encoded whole by the C
    encoder (and cached as a unit); only the levels above are walked here. Values
    must not be mutated after they were cached (the pipeline never mutates). The
    bytes are the same with or without the cache.
    """
    try:
        text = _ENCODE(obj) if cache is None else _encode(obj, cache, store, whole_at)
    except ValueError as e:
        raise ValueError(f"not representable in JSON: {e}") from e
    return text.encode("utf-8")


def _encode(obj: JSONValue, cache: EncodingCache, store: bool, whole_at: int) -> str:
    if type(obj) is not dict:
        return _whole(obj)
    hit = cache.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    if whole_at <= 0 or not all(type(k) is str for k in obj):
        text = _whole(obj)  # non-string keys: let json coerce or report exactly as it would
    else:
        below = whole_at - 1
        parts = []
        for k in sorted(obj):
            v = obj[k]
            if type(v) is dict:
                hit = cache.get(id(v))
                parts.append(
                    encode_basestring(k)
                    + ":"
                    + (hit[1] if hit is not None and hit[0] is v else _encode(v, cache, store, below))
                )
            else:
                parts.append(encode_basestring(k) + ":" + _whole(v))
        text = "{" + ",".join(parts) + "}"
    if store:
        cache[id(obj)] = (obj, text)
    return text


def reject_duplicate_keys(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    """``object_pairs_hook`` for ``json.loads``: a repeated key is a ValueError, not last-wins."""
    out: dict[str, JSONValue] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads_strict(data: bytes) -> JSONValue:
    """JSON from UTF-8 bytes; bad UTF-8 and repeated keys are ValueErrors (UnicodeDecodeError is one).

    So are ``NaN``/``Infinity`` (Python's extension, not JSON: RFC 8259 section 6),
    a number beyond a double's range, which ``json`` would read as infinity, and
    nesting deeper than the interpreter's recursion limit (RecursionError in ``json``).
    """
    try:
        value: JSONValue = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=reject_duplicate_keys,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except RecursionError as e:  # json's C scanner: nesting past the interpreter's recursion limit
        raise ValueError("nested too deep") from e
    return value


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond the range of a double")
    return value


def loads_canonical(data: bytes) -> JSONValue:
    """Parse ``data`` and check it is exactly its canonical form.

    Raises:
        InvalidJsonError: not strict JSON (``"not valid JSON: ..."``).
        NotCanonicalError: valid, but not canonical (``"not canonical"``).
    """
    try:
        value = loads_strict(data)
        canonical = canonical_json(value)
    except ValueError as e:
        raise InvalidJsonError(f"not valid JSON: {e}") from e
    if canonical != data:
        raise NotCanonicalError("not canonical")
    return value


def digest(data: bytes) -> str:
    """``sha256:<lowercase hex>``, the form of ``metadata.previous``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
