"""Seal a target's secret fields with its data key (docs/bundle-format.md), for ``build``.

The data key comes from ``keys/targets/<target>.yaml`` in the same source tree
(so ``--rev`` seals with the key of that revision), unwrapped with the
compiler identity and checked against its commitment. The walk is
``compiler.secrets.reader.seal_modules``, the one sealing walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.errors import SecretsError
from compiler.jsonpath import JsonPath
from compiler.jsontypes import JSONObject, JSONValue
from compiler.project import Project, Target
from compiler.secrets.identity import Identities
from compiler.secrets.kek import provider_for
from compiler.secrets.keyfile import (
    encryption_block,
    key_file_path,
    missing_key_error,
    open_compiler_dek,
    read_target_key,
)
from compiler.secrets.reader import seal_modules
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
        pairs = [(module, path) for module, paths in secrets.items() for path in paths]
        return seal_modules(modules, pairs, dek, target.name), block
