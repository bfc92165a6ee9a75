"""Policies of a repository, loaded once, checked per compiled target.

``PolicyCheck(repo)`` loads and compiles ``policies/*.yaml`` once; build it
before worker processes fork, so they inherit the compiled rules.
``check(result, now)`` computes the target's secret metadata from the
repository (``x-rotate-every`` from the schemas, ``rotated_at`` from the
rotation sidecars, else the SOPS file's ``lastmodified``) and evaluates.

``now`` decides the ages of secrets and the expiry of waivers. Use
``policy_time``: the commit time for a clean tree or a revision, so checking
a commit gives the same answer anywhere and at any later time (like its
bundles, docs/bundle-format.md); the wall clock for a working tree with changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING

from compiler import provenance
from compiler.diagnostics import Diagnostic
from compiler.jsonpath import JsonPath, resolve
from compiler.jsontypes import JSONValue
from compiler.load.yaml import Tagged, Value
from compiler.policy.evaluate import evaluate_policies
from compiler.policy.rules import PolicySet, check_names, load_policies
from compiler.policy.secretmeta import rotate_every, secret_entry
from compiler.secrets.rotation import read_rotation, rotation_key, rotation_path
from compiler.validate.placeholders import is_placeholder, value_at

if TYPE_CHECKING:
    from compiler.compile.repository import Repository
    from compiler.compile.types import CompileResult, LayerDoc, TargetStack


class PolicyCheck:
    """The compiled policies of one repository and the rotation sidecars read so far."""

    def __init__(self, repo: Repository, policies: PolicySet | None = None) -> None:
        self.repo = repo
        self.policies = load_policies(repo.tree) if policies is None else policies
        check_names(self.policies, repo.project, repo.modules)
        self._sidecars: dict[str, dict[str, str]] = {}

    def check(self, result: CompileResult, now: dt.datetime) -> list[Diagnostic]:
        """Policy diagnostics of one target (none without policies)."""
        if not self.policies:
            return []
        meta = self.secret_metadata(result, now)
        at_hand = not self.repo.secrets_opaque
        diags = evaluate_policies(self.policies, result, meta, now=now, secrets_at_hand=at_hand)
        return [self._locate(d, result) for d in diags]

    def _locate(self, diag: Diagnostic, result: CompileResult) -> Diagnostic:
        """Add the line that set the value the finding judged (``value_path``, from the evaluator)."""
        if diag.value_path is None or diag.rule is None:
            return diag
        module, path = str(diag.value_path[0]), diag.value_path[1:]
        if module not in result.modules:
            return diag
        found = resolve(result.modules[module], path)
        if found is None:
            return diag
        contributions = provenance.trace(self.repo, result.stack, module, found[0])
        if not contributions:
            return diag
        where = contributions[0].origin
        note = f"{where.location()}: the value is set here" + (
            f" (layer {where.layer_name})" if where.layer_name else ""
        )
        variables = [c for c in contributions if c.kind == "variable"]
        if contributions[0].kind == "template" and variables:
            where = variables[0].origin
            note = f"{where.location()}: the value comes from variable {variables[0].detail!r} set here"
        return replace(diag, notes=(note, *diag.notes), value_origin=where)

    def secret_metadata(self, result: CompileResult, now: dt.datetime) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {}
        for module, paths in sorted(result.secrets.items()):
            schema = self.repo.schema(module)
            for path in paths:
                layer = _providing_layer(result.stack, module, path)
                file = rotated_at = source = None
                if layer is not None:
                    file = layer.ref.path
                    rotated_at = self._sidecar(file).get(rotation_key(module, path))
                    source = "rotation" if rotated_at is not None else None
                    if rotated_at is None:
                        rotated_at = _lastmodified(layer)
                        source = "sops" if rotated_at is not None else None
                key, entry = secret_entry(
                    module,
                    path,
                    file=file,
                    rotated_at=rotated_at,
                    source=source,
                    every=rotate_every(schema, path),
                    now=now,
                    placeholder=None
                    if self.repo.secrets_opaque
                    else is_placeholder(value_at(result.modules.get(module), path)),
                )
                out[key] = entry
        return out

    def _sidecar(self, sops_path: str) -> dict[str, str]:
        side = rotation_path(sops_path)
        if side not in self._sidecars:
            tree = self.repo.tree
            self._sidecars[side] = read_rotation(tree.read(side), path=side) if tree.exists(side) else {}
        return self._sidecars[side]


def _providing_layer(stack: TargetStack, module: str, path: JsonPath) -> LayerDoc | None:
    """The highest SOPS layer of the stack that sets ``module`` at ``path``."""
    for layer in reversed(stack.layers):
        if layer.ref.secrets and module in layer.modules and _has(layer.modules[module], path):
            return layer
    return None


def _has(value: Value, path: JsonPath) -> bool:
    for part in path:
        if isinstance(value, Tagged):
            value = value.value
        if isinstance(value, dict) and isinstance(part, str) and part in value:
            value = value[part]
            continue
        if not (isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)):
            return False
        value = value[part]
    return True


def _lastmodified(layer: LayerDoc) -> str | None:
    raw = layer.document.value
    meta = raw.get("sops") if isinstance(raw, dict) else None
    when = meta.get("lastmodified") if isinstance(meta, dict) else None
    return when if isinstance(when, str) else None


def check_target(repo: Repository, result: CompileResult, now: dt.datetime) -> list[Diagnostic]:
    """One-off check of one target; loads the policies each call (use ``PolicyCheck`` for many targets)."""
    return PolicyCheck(repo).check(result, now)
