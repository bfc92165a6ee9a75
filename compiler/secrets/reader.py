"""Sealing a target's secret fields, and decrypting reads of a bundle (docs/bundle-format.md).

``seal_modules`` is what compile uses; ``SecretReader`` / ``open_secrets`` are
what ``pull --decrypt`` and the client use. Pure, apart from the caller's
``KeyProvider`` doing its own IO to unwrap the data key.

Every secret is addressed as ``f"{module}{format_path(path)}"``, e.g.
``inference-engine$.providers[0].api_key``: the string bound into its AAD.
The AAD keeps the spelling of bundle format 1 (``secret_address``): only a key
holding a control or non-printable character prints differently on screen.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from compiler.errors import SecretsError, UsageError
from compiler.jsonpath import JsonPath, format_path, no_value, resolve, split_address
from compiler.jsontypes import JSONObject, JSONScalar, JSONValue
from compiler.masking import replace_paths
from compiler.secrets.envelope import ALG, check_commitment, is_enc, open_value, seal_value, value_subkeys
from compiler.secrets.kek.base import KeyProvider, WrappedKey


def secret_address(module: str, path: JsonPath) -> str:
    """The string a secret's AAD binds: module plus formatted JSON path.

    Bound into every sealed value, so it must never change: ``format_path``
    escapes non-printable characters for display (issue 10), this keeps them raw
    as bundle format 1 wrote them.
    """
    return module + "$" + "".join(_aad_part(p) for p in path)


def _aad_part(part: str | int) -> str:
    shown = format_path((part,))[1:]
    if isinstance(part, int) or shown[0] == ".":
        return shown
    return "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"


def seal_modules(
    modules: Mapping[str, JSONValue],
    secret_paths: Iterable[tuple[str, JsonPath]],
    dek: bytes,
    target: str,
) -> JSONObject:
    """``modules`` with every secret leaf sealed; the one sealing walk (``build`` and the client bench use it).

    The walk is ``compiler.masking.replace_paths``: a secret path that is absent
    is skipped (an optional field); one inside another secret path is sealed
    once, with the enclosing one (never a second time over its ciphertext); one
    that holds a list or mapping has each scalar below it sealed at its own
    path. Only the branches that lead to secrets are copied; the rest is shared
    with ``modules``, which is never changed.

    Raises:
        SecretsError: a value that cannot be sealed (e.g. a NaN).
    """
    by_module: dict[str, list[JsonPath]] = {}
    for module, path in secret_paths:
        by_module.setdefault(module, []).append(path)
    out: JSONObject = dict(modules)
    for module, paths in by_module.items():
        if module in out:
            seal = functools.partial(_seal_tree, module=module, dek=dek, target=target)
            out[module] = replace_paths(out[module], paths, seal)
    return out


def _seal_tree(path: JsonPath, node: JSONValue, *, module: str, dek: bytes, target: str) -> JSONValue:
    if isinstance(node, dict):
        return {k: _seal_tree((*path, k), v, module=module, dek=dek, target=target) for k, v in node.items()}
    if isinstance(node, list):
        return [_seal_tree((*path, i), v, module=module, dek=dek, target=target) for i, v in enumerate(node)]
    # Every secret is sealed, one that already looks like ciphertext too: a value shaped
    # like ENC[...] is still the user's plaintext (issue 10 §7).
    return seal_value(dek, target=target, path=secret_address(module, path), value=node)


class SecretReader:
    """Opens the secrets of one bundle with the caller's key provider.

    The data key is unwrapped once, on first use, and checked against the
    bundle's commitment before any value is opened. The repr is redacted.
    """

    def __init__(self, bundle: Mapping[str, JSONValue], provider: KeyProvider) -> None:
        """Read the bundle's target, modules and encryption block.

        Raises:
            SecretsError: the bundle has no usable ``encryption`` block or target.
        """
        self._modules, self._target, self._wrapped, self._commitment = _read_bundle(bundle)
        self._provider = provider
        self._dek: bytes | None = None
        self._subkeys: tuple[bytes, bytes] | None = None

    def __repr__(self) -> str:
        return f"SecretReader(target={self._target!r}, key_id={self._wrapped.key_id!r})"

    @property
    def target(self) -> str:
        return self._target

    def _key(self) -> bytes:
        if self._dek is None:
            dek = self._provider.unwrap(self._wrapped)
            try:
                check_commitment(dek, self._commitment)
            except SecretsError as e:
                raise SecretsError(f"bundle for {self._target}: {e}") from e
            self._subkeys = value_subkeys(dek)
            self._dek = dek
        return self._dek

    def check_key(self) -> None:
        """Unwrap the data key now and check it against the bundle's commitment (kept for later reads).

        Raises:
            SecretsError: the caller's credentials cannot unwrap it, or it fails the commitment.
        """
        self._key()

    def open_at(self, address: str, enc: str) -> JSONScalar:
        """The plaintext of ``enc``, the sealed value the caller found at ``address`` (``secret_address``).

        For a caller that resolved the path already (the runtime client); the
        AAD still binds target and address, so a value moved elsewhere fails.

        Raises:
            SecretsError: the key cannot be unwrapped, or the value fails to open.
        """
        return open_value(self._key(), target=self._target, path=address, enc=enc, subkeys=self._subkeys)

    def secret(self, dotted: str) -> JSONScalar:
        """The plaintext of the secret at ``module.path`` (e.g. ``data-pipeline.db.password``).

        The path is in the one path syntax of ``compiler.jsonpath``.

        Raises:
            SecretsError: no such field, a field that is not encrypted, or one that fails to open.
        """
        try:
            module, query = split_address(dotted, list(self._modules))
        except UsageError as e:
            raise SecretsError(str(e)) from None
        found = resolve(self._modules[module], query)
        if found is None:
            raise SecretsError(f"{no_value(self._target, module, self._modules[module], query)} in the bundle")
        path, value = found[0], found[1]
        if not is_enc(value):
            raise SecretsError(f"{secret_address(module, path)}: not an encrypted secret field")
        return open_value(self._key(), target=self._target, path=secret_address(module, path), enc=value)

    def open_all(self) -> JSONObject:
        """The modules with every ``ENC[...]`` value replaced by its plaintext.

        All or nothing: the first value that fails raises, and nothing is returned.

        Raises:
            SecretsError: the key cannot be unwrapped, or any value fails to open.
        """
        return {m: self._open_tree(m, (), v) for m, v in self._modules.items()}

    def _open_tree(self, module: str, path: JsonPath, value: JSONValue) -> JSONValue:
        if isinstance(value, dict):
            return {k: self._open_tree(module, (*path, k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._open_tree(module, (*path, i), v) for i, v in enumerate(value)]
        if is_enc(value):
            address = secret_address(module, path)
            return open_value(self._key(), target=self._target, path=address, enc=value)
        return value


def open_secrets(bundle: Mapping[str, JSONValue], provider: KeyProvider) -> JSONObject:
    """The bundle's modules, decrypted (see ``SecretReader.open_all``)."""
    return SecretReader(bundle, provider).open_all()


def _read_bundle(bundle: Mapping[str, JSONValue]) -> tuple[JSONObject, str, WrappedKey, str]:
    modules = bundle.get("modules")
    metadata = bundle.get("metadata")
    enc = bundle.get("encryption")
    if not isinstance(modules, dict):
        raise SecretsError("bundle has no modules object")
    target = metadata.get("target") if isinstance(metadata, dict) else None
    if not isinstance(target, str) or not target:
        raise SecretsError("bundle has no metadata.target")
    if not isinstance(enc, dict):
        raise SecretsError(f"bundle for {target} has no encryption block")
    if enc.get("alg") != ALG:
        raise SecretsError(f"bundle for {target}: unsupported encryption alg {enc.get('alg')!r}")
    commitment = enc.get("commitment")
    if not isinstance(commitment, str):
        raise SecretsError(f"bundle for {target}: encryption.commitment is missing")
    wrapped = WrappedKey.from_json(enc.get("wrapped_dek"), where=f"bundle for {target}: encryption.wrapped_dek")
    kek = enc.get("kek")
    if kek != {"provider": wrapped.provider, "key_id": wrapped.key_id}:
        raise SecretsError(f"bundle for {target}: encryption.kek does not match the wrapped data key")
    return modules, target, wrapped, commitment
