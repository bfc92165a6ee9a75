"""The only place that knows the order of the stages (STYLE R1).

    layers -> variables -> render templates -> merge layers -> schema + secrets guard

``compile_target`` returns the effective configuration of every module of one
target plus its diagnostics; sealing secrets and building the bundle come after.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from compiler import provenance
from compiler.compile.inherit import Reach, changed_variables, inherit_module
from compiler.compile.repository import LayerDoc, Repository
from compiler.diagnostics import Diagnostic, sort_diagnostics
from compiler.jsonpath import JsonPath
from compiler.load.layers import resolve_layers
from compiler.load.yaml import Value
from compiler.merge import merge_layers, merge_value, strip_tags
from compiler.project import Target
from compiler.render.jinja import Renderer
from compiler.validate import literal_jinja, placeholders, secrets_guard
from compiler.validate.secretwalk import secret_paths


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


def merge_module(repo: Repository, stack: TargetStack, module: str, renderer: Renderer) -> Value:
    """The module's effective value: rendered template, then every layer of the stack."""
    patches = [(layer.modules[module], layer.document.tagged) for layer in stack.layers if module in layer.modules]
    return merge_layers(render_module(repo, stack, module, renderer), patches)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvBase:
    """An environment's merged modules, the starting point of its tenant targets."""

    stack: TargetStack
    renderer: Renderer
    modules: dict[str, Value]
    reach: dict[tuple[str, JsonPath], Reach] = field(default_factory=dict)


def env_base(repo: Repository, env: str) -> EnvBase:
    """The environment target's stack and merged modules, computed once per repository."""
    base = repo.env_bases.get(env)
    if base is None:
        stack = load_stack(repo, Target(env))
        renderer = Renderer(stack.variables, repo.render_cache)
        modules = {m: merge_module(repo, stack, m, renderer) for m in repo.modules}
        base = repo.env_bases[env] = EnvBase(stack=stack, renderer=renderer, modules=modules)
    return base


def _merge_modules(
    repo: Repository,
    target: Target,
    stack: TargetStack,
    renderer: Renderer,
    base: EnvBase | None,
    changed: set[str],
) -> dict[str, Value]:
    modules: dict[str, Value] = {}
    for module in repo.modules:
        value: Value | None = None
        if base is not None:
            if target.tenant is None:
                value = base.modules[module]
            else:
                value = inherit_module(
                    repo, module, base.stack, base.modules[module], stack, changed, renderer, base.reach
                )
        if value is None:
            value = merge_module(repo, stack, module, renderer)
        modules[module] = value
    return modules


def _literal_jinja(repo: Repository, stack: TargetStack) -> list[Diagnostic]:
    """Jinja syntax in the stack's layer files, where nothing renders it (checked once per file)."""
    out: list[Diagnostic] = []
    for layer in stack.layers:
        found = repo.jinja_findings.get(layer.ref.path)
        if found is None:
            found = repo.jinja_findings[layer.ref.path] = literal_jinja.check_layer(layer)
        out += found
    return out


def _placeholders(
    repo: Repository, stack: TargetStack, module: str, value: Value, paths: list[JsonPath]
) -> list[Diagnostic]:
    def locate(path: JsonPath, message: str) -> Diagnostic:
        return provenance.diagnose(repo, stack, module, path, message)

    return placeholders.check_placeholders(module, value, paths, target=stack.target.name, locate=locate)


def compile_target(repo: Repository, target: Target, *, validate: bool = True, inherit: bool = True) -> CompileResult:
    """Render, merge and (optionally) validate every module of ``target``.

    With ``inherit`` a tenant target starts from its environment's merged
    modules (``compiler.compile.inherit``); the result is the same either way.
    """
    stack = load_stack(repo, target)
    renderer = Renderer(stack.variables, repo.render_cache)
    base: EnvBase | None = None
    changed: set[str] = set()
    if inherit:
        base = env_base(repo, target.environment)
        if target.tenant is None:
            renderer = base.renderer
        else:
            changed = changed_variables(base.stack, stack, renderer, base.renderer)
    modules = _merge_modules(repo, target, stack, renderer, base, changed)
    diags: list[Diagnostic] = []
    secrets: dict[str, list[JsonPath]] = {}
    for module in repo.modules:
        value = modules[module]
        schema = repo.schema(module)
        paths = sorted(set(secret_paths(schema, value)), key=str)
        if validate:
            for finding in schema.check(value):
                if repo.secrets_opaque and finding.keyword != "type" and finding.path in paths:
                    continue  # an encrypted value stands in: only its type is known
                diags.append(provenance.diagnose(repo, stack, module, finding.path, finding.message))
            diags.extend(secrets_guard.check_stack(repo, stack, module))
            if paths and not repo.secrets_opaque:  # decrypted values at hand
                diags.extend(_placeholders(repo, stack, module, value, paths))
        if paths:
            secrets[module] = paths
    if validate:
        diags.extend(_literal_jinja(repo, stack))
    if validate and not any(d.severity == "error" for d in diags):
        # Policies run after schema validation, on valid modules only (README "Policies, pre-commit and CI").
        checked = CompileResult(target=target, stack=stack, modules=modules, diagnostics=[], secrets=secrets)
        diags.extend(repo.policy_check().check(checked, repo.policy_now or datetime.now(UTC)))
    diags = [replace(d, target=target.name) for d in diags]
    if validate:
        diags += repo.layout_check()  # about the repository, not the target: reported once
    return CompileResult(
        target=target, stack=stack, modules=modules, diagnostics=sort_diagnostics(diags), secrets=secrets
    )
