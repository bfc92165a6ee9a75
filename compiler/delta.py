"""Deltas: version N of a target as an RFC 6902 JSON Patch from version N-1's payload (issue 11 §7).

``publish`` stores, beside each new version N > 1, a delta object (canonical
JSON, docs/bundle-format.md "Deltas"):

    {"apiVersion": "llmcc/v1", "kind": "Delta", "target": T, "version": N,
     "base": "sha256:<digest of N-1's payload>", "patch": [RFC 6902 operations],
     "signatures": [...]}

``signatures`` are N's envelope minus its payload and its payload type (always
the bundle's). The patch leaves out ``metadata.previous``: in a version that
verifies it is the digest of N-1's payload, which ``base`` already says, so the
reader sets it. A reader that holds N-1 applies the patch to N-1's payload, sets
``metadata.previous``, canonicalises the result and rebuilds N's envelope
(:func:`rebuild_envelope`); then it verifies that envelope
exactly as a fetched one (:func:`compiler.verify.verify_chain`, in
:func:`compiler.reader.read_target`). Nothing here decides trust: a delta only
reconstructs bytes, and every way it can be wrong (another base, a bad patch, a
size bomb, a forged signature) ends either in :class:`DeltaError` here or in a
verification failure there, and the reader then fetches the full version.

Bounds, because a delta is read before anything about it is verified: at most
:data:`MAX_DELTA_BYTES` (the store refuses larger objects unread), at most
:data:`MAX_OPERATIONS` operations, no ``copy`` (the one operation that can grow
a document beyond the patch's own size: a few copies of a copy double it each
time), and a result of at most :data:`MAX_RESULT_BYTES`.

Runtime tier: imports only the standard library, jsonpatch and the bundle core.
"""

from __future__ import annotations

import base64
import binascii

import jsonpatch

from compiler.bundle.canonical import canonical_json, digest, loads_strict
from compiler.bundle.dsse import PAYLOAD_TYPE
from compiler.errors import VerificationError
from compiler.jsontypes import JSONObject, JSONValue

API_VERSION = "llmcc/v1"
DELTA_KIND = "Delta"
# The largest delta object a reader fetches (storage/base.py reads it bounded).
MAX_DELTA_BYTES = 1024 * 1024
# A one-value change is about 8 operations (the value, version, previous, source).
MAX_OPERATIONS = 10_000
# A rebuilt payload larger than this is refused: the largest envelope a store serves.
MAX_RESULT_BYTES = 64 * 1024 * 1024
# What publish writes and a reader applies; "copy" is left out (see the module doc).
_OPERATIONS = {
    "add": frozenset({"op", "path", "value"}),
    "remove": frozenset({"op", "path"}),
    "replace": frozenset({"op", "path", "value"}),
    "move": frozenset({"op", "from", "path"}),
    "test": frozenset({"op", "path", "value"}),
}
_DELTA_KEYS = frozenset({"apiVersion", "kind", "target", "version", "base", "patch", "signatures"})
_PREVIOUS = "/metadata/previous"


class DeltaError(VerificationError):
    """A delta cannot rebuild the version it claims to: the reader fetches the full version instead."""


def envelope_payload(envelope: bytes) -> bytes:
    """The payload bytes inside a DSSE envelope, unverified (the caller verifies what it builds from them).

    Raises:
        DeltaError: not a JSON object with a strict base64 ``payload``.
    """
    try:
        obj = loads_strict(envelope)
        if not isinstance(obj, dict) or not isinstance(obj.get("payload"), str):
            raise ValueError("not a DSSE envelope")
        return base64.b64decode(str(obj["payload"]).encode("ascii"), validate=True)
    except (ValueError, binascii.Error) as e:
        raise DeltaError(f"held envelope: {e}") from e


def make_delta(target: str, version: int, base_payload: bytes, envelope: bytes) -> bytes | None:
    """The delta object from ``base_payload`` (version ``version - 1``) to ``envelope`` (version ``version``).

    ``envelope`` is the signed envelope just stored as ``version``. Returns
    None when a delta is not worth storing: it would not be smaller than the
    envelope, would break a bound a reader enforces, or would not rebuild the
    envelope byte for byte (checked here, as a reader would rebuild it).
    """
    base = loads_strict(base_payload)
    outer = loads_strict(envelope)
    assert isinstance(outer, dict)  # an envelope this publisher has just signed
    payload = base64.b64decode(str(outer["payload"]))
    link = {"op": "replace", "path": _PREVIOUS, "value": digest(base_payload)}
    ops: list[JSONValue] = [op for op in jsonpatch.make_patch(base, loads_strict(payload)).patch if op != link]
    if len(ops) > MAX_OPERATIONS or any(not isinstance(op, dict) or op.get("op") not in _OPERATIONS for op in ops):
        return None
    if outer["payloadType"] != PAYLOAD_TYPE:
        return None
    delta: JSONObject = {
        "apiVersion": API_VERSION,
        "kind": DELTA_KIND,
        "target": target,
        "version": version,
        "base": digest(base_payload),
        "patch": ops,
        "signatures": outer["signatures"],
    }
    data = canonical_json(delta)
    if len(data) > MAX_DELTA_BYTES or len(data) >= len(envelope):
        return None
    try:
        rebuilt = rebuild_envelope(target, version, base_payload, data)
    except DeltaError:
        return None  # jsonpatch's diff does not round-trip this change: readers get the full version
    return data if rebuilt == envelope else None


def rebuild_envelope(target: str, version: int, base_payload: bytes, delta: bytes) -> bytes:
    """Version ``version``'s envelope bytes, from ``delta`` applied to the payload of ``version - 1``.

    Checks (none of them is a verification: the caller verifies the result):

    1. ``delta`` is at most :data:`MAX_DELTA_BYTES`, strict JSON, with exactly the
       delta keys, ``apiVersion`` ``llmcc/v1`` and ``kind`` ``Delta``;
    2. its ``target`` and ``version`` are the ones asked for, and its ``base``
       is the digest of ``base_payload`` (a patch for another base is refused
       before it is applied);
    3. the patch is a list of at most :data:`MAX_OPERATIONS` well-formed
       ``add``/``remove``/``replace``/``move``/``test`` operations, and applies,
       followed by ``replace`` of ``/metadata/previous`` with ``base``;
    4. the result, canonical JSON, is at most :data:`MAX_RESULT_BYTES`.

    Returns:
        The canonical envelope ``{"payload", "payloadType", "signatures"}``.

    Raises:
        DeltaError: any check failed.
    """
    where = f"{target} version {version} delta"
    if len(delta) > MAX_DELTA_BYTES:
        raise DeltaError(f"{where}: is more than {MAX_DELTA_BYTES} bytes")
    obj = _parse(delta, where=where)
    if obj["apiVersion"] != API_VERSION or obj["kind"] != DELTA_KIND:
        raise DeltaError(f"{where}: is not an {API_VERSION} {DELTA_KIND}")
    if obj["target"] != target or obj["version"] != version or type(obj["version"]) is not int:
        raise DeltaError(f"{where}: is for {obj['target']!r} version {obj['version']!r}")
    if obj["base"] != digest(base_payload):
        raise DeltaError(f"{where}: is a patch from {obj['base']!r}, not from the version this reader holds")
    ops = _check_operations(obj["patch"], where=where)
    ops.append({"op": "replace", "path": _PREVIOUS, "value": obj["base"]})
    try:
        doc = loads_strict(base_payload)
        result = jsonpatch.JsonPatch(ops).apply(doc, in_place=True)
        payload = canonical_json(result)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
        raise DeltaError(f"{where}: the patch does not apply: {e}") from e
    except (ValueError, TypeError, KeyError, IndexError, RecursionError) as e:
        raise DeltaError(f"{where}: the patch does not apply ({type(e).__name__})") from e
    if len(payload) > MAX_RESULT_BYTES:
        raise DeltaError(f"{where}: builds more than {MAX_RESULT_BYTES} bytes")
    envelope: JSONValue = {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": obj["signatures"],
    }
    return canonical_json(envelope)


def _parse(delta: bytes, *, where: str) -> JSONObject:
    try:
        obj = loads_strict(delta)
    except ValueError as e:
        raise DeltaError(f"{where}: is not JSON ({e})") from e
    if not isinstance(obj, dict) or set(obj) != _DELTA_KEYS:
        raise DeltaError(f"{where}: must have exactly the keys {sorted(_DELTA_KEYS)}")
    return obj


def _check_operations(patch: JSONValue, *, where: str) -> list[JSONObject]:
    if not isinstance(patch, list) or len(patch) > MAX_OPERATIONS:
        raise DeltaError(f"{where}: patch must be a list of at most {MAX_OPERATIONS} operations")
    ops: list[JSONObject] = []
    for op in patch:
        keys = _OPERATIONS.get(str(op.get("op"))) if isinstance(op, dict) else None
        if keys is None or not isinstance(op, dict) or set(op) != keys:
            raise DeltaError(f"{where}: an operation is not one of {sorted(_OPERATIONS)} with exactly its members")
        if not isinstance(op["path"], str) or not isinstance(op.get("from", ""), str):
            raise DeltaError(f"{where}: an operation's path is not a string")
        ops.append(op)
    return ops
