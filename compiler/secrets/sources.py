"""SOPS layer files as layers: decrypted in memory, or opaque without an identity.

SOPS keeps keys and value types in plaintext, so the shape of every secret is
known without decrypting (DESIGN §4). Without an identity each encrypted value
stands in as a value of its type -- a string holds the SOPS ciphertext itself,
so diffs can compare ciphertexts -- and schema checks on it are skipped except
its type. Compiling refuses to run without the identity (``required``), so a
stand-in never reaches a bundle. Values that sops left unencrypted (``encrypted_regex``,
``unencrypted_suffix``) are reported by the secrets guard.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.errors import InputError, SecretsError
from compiler.load.layers import LayerRef
from compiler.load.yaml import Document, Value, load_document
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
            opened = load_document(plain, path=ref.path, layer=ref.name).value
            if not isinstance(opened, dict):
                raise InputError(f"{ref.path}: decrypted SOPS document is not a mapping")
            return {k: v for k, v in opened.items() if k != SOPS_KEY}
        if self.required:
            raise SecretsError(f"{ref.path}: decrypting needs the compiler identity: {ADVICE}")
        return {k: _opaque(v) for k, v in value.items() if k != SOPS_KEY}


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
