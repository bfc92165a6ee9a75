"""The only place that knows the order of the stages (STYLE R1).

    layers -> variables -> render templates -> merge layers -> schema + secrets guard -> policies

``compile_target`` returns the effective configuration of every module of one
target (or of the modules asked for) plus its diagnostics; sealing secrets and
building the bundle come after (``compiler.compile.build``). Every caller that
wants a target's modules -- build, diff, history, explain -- comes here.

What compiling derives and reuses between targets lives in one ``CompileCaches``
that the caller creates per repository and passes in; the stages are handed the
part they use, and the ``Repository`` holds parsed inputs only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from compiler import provenance
from compiler.compile.inherit import Reach, changed_variables, inherit_module
from compiler.compile.repository import Repository
from compiler.compile.types import CompileResult, GuardCache, TargetStack
from compiler.diagnostics import Diagnostic, sort_diagnostics
from compiler.jsonpath import JsonPath
from compiler.load.layers import resolve_layers
from compiler.load.yaml import Value
from compiler.merge import merge_layers, merge_value, strip_tags
from compiler.project import Target
from compiler.render.jinja import RenderCache, Renderer
from compiler.validate import literal_jinja, placeholders, secrets_guard
from compiler.validate.secretwalk import secret_paths

if TYPE_CHECKING:
    from compiler.policy import PolicyCheck
    from compiler.validate.schema import ModuleSchema


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvBase:
    """An environment's merged modules, the starting point of its tenant targets."""

    stack: TargetStack
    renderer: Renderer
    modules: dict[str, Value]
    reach: dict[tuple[str, JsonPath], Reach] = field(default_factory=dict)
    valid: dict[str, bool] = field(default_factory=dict)  # module -> its schema accepts it (computed once)

    def valid_base(self, module: str, schema: ModuleSchema, verdicts: BaseVerdicts | None = None) -> Value | None:
        """The environment's module when its schema accepts it: a tenant's module validates as an edit of it.

        ``verdicts``: validity kept from earlier runs (``compiler.incremental.verdicts``); a module it
        does not vouch for is validated, and one found valid is told to it.
        """
        ok = self.valid.get(module)
        if ok is None:
            if verdicts is not None and verdicts.known(self, module, schema):
                ok = True
            else:
                ok = schema.is_valid(self.modules[module])
                if ok and verdicts is not None:
                    verdicts.learn(self, module, schema)
            self.valid[module] = ok
        return self.modules[module] if ok else None


class BaseVerdicts(Protocol):
    """Which environments' merged modules earlier runs found valid against their schemas."""

    def known(self, base: EnvBase, module: str, schema: ModuleSchema) -> bool:
        """Whether ``base.modules[module]`` was found valid against ``schema`` (False: not known)."""
        ...

    def learn(self, base: EnvBase, module: str, schema: ModuleSchema) -> None:
        """Keep that ``base.modules[module]`` is valid against ``schema``."""
        ...

    def module_known(self, base: EnvBase, stack: TargetStack, module: str, schema: ModuleSchema) -> bool:
        """Whether ``schema`` found nothing in ``stack``'s ``module`` (False: not known); ``base``: its environment."""
        ...

    def module_learn(self, base: EnvBase, stack: TargetStack, module: str, schema: ModuleSchema) -> None:
        """Keep that ``schema`` finds nothing in ``stack``'s ``module``."""
        ...


@dataclass(slots=True, kw_only=True)
class CompileCaches:
    """What compiling one repository's targets derives once and reuses: one per repository and run.

    Everything here is a function of the repository's inputs, so a cache never
    changes a result. Fill it before forking workers and they inherit it. Only
    ``render`` may be shared between revisions (it is keyed by expression and
    variable values); the rest belongs to one ``Repository``.
    """

    render: RenderCache = field(default_factory=dict)
    guard: GuardCache = field(default_factory=dict)
    jinja: dict[str, list[Diagnostic]] = field(default_factory=dict)  # layer path -> literal Jinja in it
    env_bases: dict[str, EnvBase] = field(default_factory=dict)
    policy: PolicyCheck | None = None
    no_policies: bool = False  # the repository has no policy file (``policy_check``)
    layout: list[Diagnostic] | None = None
    verdicts: BaseVerdicts | None = None  # the validity of environments' modules kept across runs
    # Called with each target's name once it is compiled, in the process that compiled it: the
    # result cache keeps what a build worker rendered (compiler.incremental.parsed).
    after_target: Callable[[str], None] | None = None


def policy_check(repo: Repository, caches: CompileCaches) -> PolicyCheck | None:
    """The repository's compiled ``policies/*.yaml`` (loaded once; before workers fork); None without any."""
    if caches.policy is None and not caches.no_policies:
        from compiler.policy import policy_files

        if not policy_files(repo.tree):
            caches.no_policies = True  # nothing to check: the policy engine is not even imported
            return None
        from compiler.policy import PolicyCheck  # CEL loads only when a compile checks policies

        caches.policy = PolicyCheck(repo)
    return caches.policy


def layout_check(repo: Repository, caches: CompileCaches) -> list[Diagnostic]:
    """Schemas and templates that do not pair up (``compiler.validate.layout``), computed once."""
    if caches.layout is None:
        from compiler.validate.layout import check_layout

        caches.layout = check_layout(repo)
    return caches.layout


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


def env_base(repo: Repository, env: str, caches: CompileCaches) -> EnvBase:
    """The environment target's stack and merged modules, computed once per ``caches``."""
    base = caches.env_bases.get(env)
    if base is None:
        stack = load_stack(repo, Target(env))
        renderer = Renderer(stack.variables, caches.render)
        modules = {m: merge_module(repo, stack, m, renderer) for m in repo.modules}
        base = caches.env_bases[env] = EnvBase(stack=stack, renderer=renderer, modules=modules)
    return base


def _merge_modules(
    repo: Repository,
    target: Target,
    stack: TargetStack,
    renderer: Renderer,
    base: EnvBase | None,
    changed: set[str],
    names: Sequence[str],
) -> dict[str, Value]:
    modules: dict[str, Value] = {}
    for module in names:
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


def _literal_jinja(stack: TargetStack, cache: dict[str, list[Diagnostic]]) -> list[Diagnostic]:
    """Jinja syntax in the stack's layer files, where nothing renders it (checked once per file)."""
    out: list[Diagnostic] = []
    for layer in stack.layers:
        found = cache.get(layer.ref.path)
        if found is None:
            found = cache[layer.ref.path] = literal_jinja.check_layer(layer)
        out += found
    return out


def _placeholders(
    repo: Repository, stack: TargetStack, module: str, value: Value, paths: list[JsonPath]
) -> list[Diagnostic]:
    def locate(path: JsonPath, message: str) -> Diagnostic:
        return provenance.diagnose(repo, stack, module, path, message)

    return placeholders.check_placeholders(module, value, paths, target=stack.target.name, locate=locate)


def compile_target(
    repo: Repository,
    target: Target,
    *,
    validate: bool = True,
    inherit: bool = True,
    modules: Sequence[str] | None = None,
    caches: CompileCaches | None = None,
) -> CompileResult:
    """Render, merge and (optionally) validate every module of ``target``, or only ``modules``.

    With ``inherit`` a tenant target starts from its environment's merged
    modules (``compiler.compile.inherit``); the result is the same either way.
    ``caches`` carries what earlier targets of the same repository derived
    (without it, a fresh one: correct, but nothing is reused). ``modules``
    selects modules to merge alone (``history`` asks for one), without
    validation: checks and policies see a whole target.

    Raises:
        InputError: a layer, template or schema does not load or render (at its file:line).
        ValueError: ``modules`` with ``validate``.
    """
    if modules is not None and validate:
        raise ValueError("compile_target: a subset of modules is compiled without validation")
    if caches is None:
        caches = CompileCaches()
    names = repo.modules if modules is None else [m for m in repo.modules if m in modules]
    stack = load_stack(repo, target)
    renderer = Renderer(stack.variables, caches.render)
    base: EnvBase | None = None
    changed: set[str] = set()
    if inherit:
        base = env_base(repo, target.environment, caches)
        if target.tenant is None:
            renderer = base.renderer
        else:
            changed = changed_variables(base.stack, stack, renderer, base.renderer)
    merged = _merge_modules(repo, target, stack, renderer, base, changed, names)
    diags: list[Diagnostic] = []
    secrets: dict[str, list[JsonPath]] = {}
    for module in names:
        value = merged[module]
        schema = repo.schema(module)
        paths = sorted(set(secret_paths(schema, value)), key=str)
        if validate:
            verdicts = caches.verdicts if base is not None else None
            vouched = verdicts is not None and base is not None and verdicts.module_known(base, stack, module, schema)
            findings = []
            if not vouched:
                # A tenant's module is its environment's, edited copy-on-write (``inherit``): only the edits
                # are validated when the environment's module is valid.
                edited = (
                    base.valid_base(module, schema, caches.verdicts)
                    if base is not None and target.tenant is not None
                    else None
                )
                findings = schema.check(value, valid_base=edited)
                if not findings and verdicts is not None and base is not None:
                    verdicts.module_learn(base, stack, module, schema)
            for finding in findings:
                if repo.secrets_opaque and finding.keyword != "type" and finding.path in paths:
                    continue  # an encrypted value stands in: only its type is known
                diags.append(provenance.diagnose(repo, stack, module, finding.path, finding.message))
            diags.extend(secrets_guard.check_stack(repo, stack, module, caches.guard))
            diags.extend(secrets_guard.check_rendered(repo, stack, module, renderer))
            if paths and not repo.secrets_opaque:  # decrypted values at hand
                diags.extend(_placeholders(repo, stack, module, value, paths))
        if paths:
            secrets[module] = paths
    if validate:
        diags.extend(_literal_jinja(stack, caches.jinja))
    if validate and not any(d.severity == "error" for d in diags):
        # Policies run after schema validation, on valid modules only (README "Policies, pre-commit and CI").
        checked = CompileResult(target=target, stack=stack, modules=merged, diagnostics=[], secrets=secrets)
        policies = policy_check(repo, caches)
        if policies is not None:
            diags.extend(policies.check(checked, repo.policy_now or datetime.now(UTC)))
    diags = [replace(d, target=target.name) for d in diags]
    if validate:
        diags += layout_check(repo, caches)  # about the repository, not the target: reported once
    if caches.after_target is not None:
        caches.after_target(target.name)
    return CompileResult(
        target=target, stack=stack, modules=merged, diagnostics=sort_diagnostics(diags), secrets=secrets
    )
