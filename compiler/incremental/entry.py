"""What a cache entry holds for a target, and the outcome it stands for. Pure.

An entry is ``{"diagnostics": [...], "modules": TEXT | null, "encryption": OBJ | null}``:
the target's findings and, for ``compile`` of a target without errors, the
canonical text of its modules with every secret already sealed and the
bundle's ``encryption`` block. Plaintext secrets are never in it: sealed
values are AES-GCM ciphertexts under the target's data key, and findings
never carry a secret value (README "The result cache").

A hit reuses the sealed bytes of the earlier compile: the same plaintext
sealed for the same target, path and data key, so any reader that could open
a fresh sealing opens it. The data key's file, the readers and the KEK
configuration (``llmcc.yaml``, ``keys/targets/``) are in the key, so a change
to any of them rebuilds. The bundle around the modules (``metadata.source``:
commit, dirty) is rebuilt at each hit, so a new commit reuses the entry.
"""

from __future__ import annotations

import json

from compiler.bundle.canonical import canonical_json
from compiler.bundle.model import API_VERSION, build_body
from compiler.diagnostics import Diagnostic, Origin, Severity
from compiler.jsontypes import JSONObject, JSONValue

_MODULES_TAIL = b'"modules":{}}'
_HEAD = '{"apiVersion":' + json.dumps(API_VERSION) + ',"encryption":'


class EntryError(ValueError):
    """An entry that does not have the shape this version writes: treated as a miss."""


def _origin(o: Origin | None) -> JSONValue:
    return None if o is None else [o.path, o.line, o.column, o.layer, o.rev]


def _read_origin(v: object) -> Origin | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != 5:
        raise EntryError("origin")
    path, line, column, layer, rev = v
    if not (isinstance(path, str) and isinstance(line, int) and isinstance(column, int) and isinstance(layer, str)):
        raise EntryError("origin")
    if rev is not None and not isinstance(rev, str):
        raise EntryError("origin")
    return Origin(path=path, line=line, column=column, layer=layer, rev=rev)


def diagnostic_to_json(d: Diagnostic) -> JSONObject:
    return {
        "message": d.message,
        "severity": str(d.severity),
        "origin": _origin(d.origin),
        "module": d.module,
        "path": None if d.path is None else list(d.path),
        "target": d.target,
        "rule": d.rule,
        "notes": list(d.notes),
        "value_origin": _origin(d.value_origin),
    }


def diagnostic_from_json(v: JSONValue) -> Diagnostic:
    """The diagnostic ``diagnostic_to_json`` wrote. Raises EntryError on any other shape."""
    if not isinstance(v, dict):
        raise EntryError("diagnostic")
    try:
        path, notes, message, severity = v["path"], v["notes"], v["message"], v["severity"]
        module, target, rule = (_optional_str(v[k]) for k in ("module", "target", "rule"))
        if not isinstance(message, str) or not isinstance(severity, str):
            raise EntryError("diagnostic")
        if path is not None and not (
            isinstance(path, list) and all(isinstance(p, str | int) and not isinstance(p, bool) for p in path)
        ):
            raise EntryError("diagnostic")
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise EntryError("diagnostic")
        return Diagnostic(
            message=message,
            severity=Severity(severity),
            origin=_read_origin(v["origin"]),
            module=module,
            path=None if path is None else tuple(path),  # type: ignore[arg-type]
            target=target,
            rule=rule,
            notes=tuple(notes),  # type: ignore[arg-type]
            value_origin=_read_origin(v["value_origin"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise EntryError("diagnostic") from e


def _optional_str(v: JSONValue) -> str | None:
    if v is not None and not isinstance(v, str):
        raise EntryError("diagnostic")
    return v


def split_bundle(data: bytes, *, project: str, target: str, source: JSONObject | None) -> tuple[str, JSONValue]:
    """(canonical text of ``modules``, ``encryption`` block) of bundle bytes built by ``bundle_bytes``.

    Raises:
        EntryError: ``data`` is not the canonical bundle of that project, target and source.
    """
    start, encryption = split_bundle_at(data, project=project, target=target, source=source)
    return data[start:-1].decode("utf-8"), encryption


def split_bundle_at(data: bytes, *, project: str, target: str, source: JSONObject | None) -> tuple[int, JSONValue]:
    """(offset of ``modules``' text, ``encryption`` block): ``data[offset:-1]`` is the modules' canonical text.

    Raises:
        EntryError: ``data`` is not the canonical bundle of that project, target and source.
        UnicodeDecodeError: ``data`` is not UTF-8.
    """
    text = data.decode("utf-8")
    if not text.startswith(_HEAD):
        raise EntryError("bundle")
    encryption, end = json.JSONDecoder().raw_decode(text, len(_HEAD))
    if not text.startswith(',"kind":', end):
        raise EntryError("bundle")
    prefix = _prefix(project=project, target=target, source=source, encryption=encryption)
    if not data.startswith(prefix) or not data.endswith(b"}"):
        raise EntryError("bundle")
    return len(prefix), encryption


def join_bundle(modules: str, encryption: JSONValue, *, project: str, target: str, source: JSONObject | None) -> bytes:
    """The bundle bytes with ``modules`` (canonical text) and ``encryption``: what ``split_bundle`` took apart."""
    return _prefix(project=project, target=target, source=source, encryption=encryption) + modules.encode() + b"}"


def _prefix(*, project: str, target: str, source: JSONObject | None, encryption: JSONValue) -> bytes:
    if encryption is not None and not isinstance(encryption, dict):
        raise EntryError("encryption")
    body = build_body(project=project, target=target, source=source, modules={}, encryption=encryption)
    whole = canonical_json(body)
    # "modules" sorts last of the body's keys, so the bundle is this prefix, the modules, and "}".
    assert whole.endswith(_MODULES_TAIL)
    return whole[: -len(_MODULES_TAIL)] + b'"modules":'
