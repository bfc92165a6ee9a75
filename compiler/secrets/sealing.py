"""Seal a target's secret fields with its data key (docs/bundle-format.md), for ``build``.

The data key comes from ``keys/targets/<target>.yaml`` in the same source tree
(so ``--rev`` seals with the key of that revision), unwrapped with the
compiler identity and checked against its commitment. Sealing copies only the
branches that lead to secrets; everything else is shared with the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.errors import SecretsError
from compiler.jsonpath import JsonPath
from compiler.jsontypes import JSONObject, JSONValue
from compiler.project import Project, Target
from compiler.secrets.envelope import seal_value
from compiler.secrets.identity import Identities
from compiler.secrets.kek import provider_for
from compiler.secrets.keyfile import (
    encryption_block,
    key_file_path,
    missing_key_error,
    open_compiler_dek,
    read_target_key,
)
from compiler.secrets.reader import secret_address
from compiler.sources.base import SourceTree


@dataclass(slots=True)
class KeyFileSealer:
    """A ``build.Sealer``: seals with each target's data key from its key file."""

    tree: SourceTree
    project: Project
    identities: Identities | None
    _keys: dict[str, tuple[bytes, JSONObject]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"KeyFileSealer(targets={sorted(self._keys)})"

    def key(self, target: Target) -> tuple[bytes, JSONObject]:
        """The target's data key and the bundle's ``encryption`` block."""
        if target.name not in self._keys:
            path = key_file_path(target.name)
            if not self.tree.exists(path):
                raise missing_key_error(target.name)
            keyfile = read_target_key(self.tree.read(path), path=path)
            if keyfile.target != target.name:
                raise SecretsError(f"{path}: holds the key of target {keyfile.target}, not {target.name}")
            compiler_spec = self.project.manifest.keys.compiler
            if compiler_spec is None:
                raise SecretsError("llmcc.yaml: keys.compiler is not set: the compiling identity needs a key")
            dek = open_compiler_dek(keyfile, provider_for(compiler_spec.kek(), self.identities))
            self._keys[target.name] = (dek, encryption_block(keyfile))
        return self._keys[target.name]

    def __call__(
        self, target: Target, modules: dict[str, JSONValue], secrets: dict[str, list[JsonPath]]
    ) -> tuple[dict[str, JSONValue], JSONObject | None]:
        if not secrets:
            return modules, None
        dek, block = self.key(target)
        out = dict(modules)
        for module, paths in secrets.items():
            value = out[module]
            for path in paths:
                value = _seal_path(value, path, 0, module, dek, target.name)
            out[module] = value
        return out, block


def _seal_path(node: JSONValue, path: JsonPath, depth: int, module: str, dek: bytes, target: str) -> JSONValue:
    if depth == len(path):
        return _seal_tree(node, path, module, dek, target)
    key = path[depth]
    if isinstance(node, dict) and isinstance(key, str) and key in node:
        copy = dict(node)
        copy[key] = _seal_path(node[key], path, depth + 1, module, dek, target)
        return copy
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        items = list(node)
        items[key] = _seal_path(node[key], path, depth + 1, module, dek, target)
        return items
    return node


def _seal_tree(node: JSONValue, path: JsonPath, module: str, dek: bytes, target: str) -> JSONValue:
    """Seal a secret value; a secret map or list has each scalar sealed at its own path."""
    if isinstance(node, dict):
        return {k: _seal_tree(v, (*path, k), module, dek, target) for k, v in node.items()}
    if isinstance(node, list):
        return [_seal_tree(v, (*path, i), module, dek, target) for i, v in enumerate(node)]
    return seal_value(dek, target=target, path=secret_address(module, path), value=node)
