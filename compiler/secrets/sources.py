"""SOPS layer files as layers: decrypted in memory, or opaque without an identity.

SOPS keeps keys and value types in plaintext, so the shape of every secret is
known without decrypting (docs/bundle-format.md). Without an identity each encrypted value
stands in as a value of its type -- a string holds the SOPS ciphertext itself,
so diffs can compare ciphertexts -- and schema checks on it are skipped except
its type. Compiling refuses to run without the identity (``required``), so a
stand-in never reaches a bundle. Values that sops left unencrypted (``encrypted_regex``,
``unencrypted_suffix``) are reported by the secrets guard.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.bundle.canonical import loads_strict
from compiler.errors import InputError, SecretsError
from compiler.jsonpath import JsonPath, format_path
from compiler.load.layers import LayerRef
from compiler.load.yaml import Document, Value
from compiler.secrets.identity import ADVICE, Identities
from compiler.secrets.sops import decrypt_sops, is_sops_document, is_sops_value, sops_value_type

SOPS_KEY = "sops"


_STAND_INS: dict[str, Value] = {"int": 0, "float": 0.0, "bool": False}


@dataclass(slots=True)
class SopsOpener:
    """Opens ``*.secrets.sops.yaml`` layers: with ``identities`` decrypted, else opaque."""

    identities: Identities | None
    required: bool = False  # compile/publish: an encrypted file needs the identity
    decrypted: bool = False

    def __call__(self, ref: LayerRef, doc: Document, data: bytes) -> Value:
        value = doc.value
        if not is_sops_document(value):
            return value  # the secrets guard reports it; the build stops on that error
        assert isinstance(value, dict)
        if self.identities:
            plain = decrypt_sops(data, path=ref.path, identities=self.identities)
            self.decrypted = True
            try:
                opened = loads_strict(plain)
            except ValueError as e:  # never quote the decrypted text
                raise InputError(f"{ref.path}: sops returned output that is not JSON") from e
            if not isinstance(opened, dict):
                raise InputError(f"{ref.path}: decrypted SOPS document is not a mapping")
            return {k: _restore(doc, (k,), value[k], v) for k, v in opened.items() if k != SOPS_KEY and k in value}
        if self.required:
            raise SecretsError(f"{ref.path}: decrypting needs the compiler identity: {ADVICE}")
        return {k: _opaque(v) for k, v in value.items() if k != SOPS_KEY}


def _restore(doc: Document, path: JsonPath, enc: Value, plain: object) -> Value:
    """The decrypted value, typed as sops recorded it when it encrypted the value.

    sops writes a float with an integral value as an integer (``1.0``, ``1e3``):
    the type it recorded makes it a float again. A string that is not UTF-8
    (YAML ``!!binary``) comes back with U+FFFD in place of its bytes: refused.
    """
    if isinstance(enc, dict) and isinstance(plain, dict):
        return {k: _restore(doc, (*path, k), enc.get(k), v) for k, v in plain.items()}
    if isinstance(enc, list) and isinstance(plain, list):
        return [_restore(doc, (*path, i), enc[i] if i < len(enc) else None, v) for i, v in enumerate(plain)]
    vtype = sops_value_type(enc) if is_sops_value(enc) else None
    if vtype == "float" and isinstance(plain, int) and not isinstance(plain, bool):
        return float(plain)
    if vtype == "str" and isinstance(plain, str) and "\ufffd" in plain:
        raise SecretsError(
            f"{doc.origin(path).location()}: {format_path(path)}: not UTF-8 text "
            "(binary, e.g. YAML !!binary; sops replaced its bytes): encode binary secrets as base64 text"
        )
    return plain  # type: ignore[return-value]  # JSON values are Values


def _opaque(value: Value) -> Value:
    if isinstance(value, dict):
        return {k: _opaque(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_opaque(v) for v in value]
    if is_sops_value(value):
        vtype = sops_value_type(value)
        return _STAND_INS.get(vtype, value)
    return value


def unencrypted_leaves(value: Value, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Paths in a SOPS document (minus its metadata) whose values sops did not encrypt."""
    if isinstance(value, dict):
        return [p for k, v in value.items() if k != SOPS_KEY or path for p in unencrypted_leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unencrypted_leaves(v, (*path, i))]
    if value is None or is_sops_value(value):
        return []
    return [path]
