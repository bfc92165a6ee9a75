"""The only place that knows the order of the stages (STYLE R1).

    layers -> variables -> render templates -> merge layers -> schema + secrets guard

``compile_target`` returns the effective configuration of every module of one
target plus its diagnostics; sealing secrets and building the bundle come after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler import provenance
from compiler.diagnostics import Diagnostic, sort_diagnostics
from compiler.jsonpath import JsonPath
from compiler.load.layers import resolve_layers
from compiler.load.yaml import Value
from compiler.merge import merge_layers, merge_value, strip_tags
from compiler.project import Target
from compiler.render.jinja import Renderer
from compiler.repository import LayerDoc, Repository
from compiler.validate import secrets_guard
from compiler.validate.schema import secret_paths


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetStack:
    """The layers present for a target, lowest precedence first, and its merged variables."""

    target: Target
    layers: list[LayerDoc]
    variables: dict[str, Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class CompileResult:
    target: Target
    stack: TargetStack
    modules: dict[str, Value]
    diagnostics: list[Diagnostic]
    secrets: dict[str, list[JsonPath]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def load_stack(repo: Repository, target: Target) -> TargetStack:
    layers = [doc for ref in resolve_layers(repo.project, target) if (doc := repo.layer(ref)) is not None]
    variables: Value = {}
    for layer in layers:
        if layer.vars:
            variables = merge_value(variables, layer.vars, tagged=layer.document.tagged)
    assert isinstance(variables, dict)
    return TargetStack(target=target, layers=layers, variables=variables)


def render_module(repo: Repository, stack: TargetStack, module: str, renderer: Renderer) -> Value:
    """The module's template chain rendered with the target's variables (``{}`` without a template)."""
    plans = repo.templates(module)
    if not plans:
        return {}
    first = renderer.render(plans[0])
    if plans[0].document.tagged:
        first = strip_tags(first)
    return merge_layers(first, [(renderer.render(p), p.document.tagged) for p in plans[1:]])


def compile_target(repo: Repository, target: Target, *, validate: bool = True) -> CompileResult:
    """Render, merge and (optionally) validate every module of ``target``."""
    stack = load_stack(repo, target)
    renderer = Renderer(stack.variables, repo.render_cache)
    modules: dict[str, Value] = {}
    diags: list[Diagnostic] = []
    secrets: dict[str, list[JsonPath]] = {}
    for module in repo.modules:
        patches = [(layer.modules[module], layer.document.tagged) for layer in stack.layers if module in layer.modules]
        value = merge_layers(render_module(repo, stack, module, renderer), patches)
        modules[module] = value
        schema = repo.schema(module)
        paths = sorted(set(secret_paths(schema.schema, value)), key=str)
        if validate:
            for finding in schema.check(value):
                if repo.secrets_opaque and finding.keyword != "type" and finding.path in paths:
                    continue  # an encrypted value stands in: only its type is known
                diags.append(provenance.diagnose(repo, stack, module, finding.path, finding.message))
            diags.extend(secrets_guard.check_stack(repo, stack, module))
        if paths:
            secrets[module] = paths
    diags = [
        Diagnostic(
            message=d.message,
            severity=d.severity,
            origin=d.origin,
            module=d.module,
            path=d.path,
            target=target.name,
            rule=d.rule,
            notes=d.notes,
        )
        for d in diags
    ]
    return CompileResult(
        target=target, stack=stack, modules=modules, diagnostics=sort_diagnostics(diags), secrets=secrets
    )
