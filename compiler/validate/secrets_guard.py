"""No secret in plaintext (README "SOPS files: what llmcc checks").

A field the schema marks ``"x-secret": true`` may take its value only from a
SOPS file. A value for it anywhere else -- a template, a plain layer, even one
a later layer overrides -- is ``secret in plaintext`` at that file's line. The
message never includes the value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from compiler.diagnostics import Diagnostic
from compiler.errors import InputError
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Value
from compiler.secrets.creation_rules import SOPS_CONFIG, recipient_mismatch
from compiler.secrets.sops import PLAINTEXT_IN_SOPS, is_sops_document
from compiler.secrets.sopsfile import SOPS_KEY, plaintext_leaves, sops_metadata, typed_leaves
from compiler.secrets.sources import unencrypted_leaves
from compiler.validate.secretwalk import schema_has_secrets, secret_paths

if TYPE_CHECKING:
    from compiler.compile.repository import Repository
    from compiler.compile.types import GuardCache, LayerDoc, TargetStack
    from compiler.render.jinja import Renderer, TemplatePlan

MESSAGE = "secret in plaintext: the value of a field marked x-secret must come from a *.secrets.sops.yaml file"


def check_stack(repo: Repository, stack: TargetStack, module: str, cache: GuardCache) -> list[Diagnostic]:
    """Plaintext values for secret fields in the target's templates and plain layers.

    ``cache`` keeps each file's findings for the next target that stacks the file.
    """
    schema = repo.schema(module)
    # Every secrets file must be SOPS-encrypted, whether or not this module has secret fields.
    out = [d for layer in stack.layers if layer.ref.secrets for d in _check_sops_layer(repo, layer, module, cache)]
    if not schema_has_secrets(schema):
        return out
    for plan in repo.templates(module):
        key = (plan.document.path, module)
        if key not in cache:
            cache[key] = [
                Diagnostic(message=MESSAGE, origin=plan.document.origin(path), module=module, path=path)
                for path in sorted(set(secret_paths(schema, plan.static)), key=str)
            ]
        out += cache[key]
    for layer in stack.layers:
        if layer.ref.secrets or module not in layer.modules:
            continue
        key = (layer.document.path, module)
        if key not in cache:
            cache[key] = [
                Diagnostic(
                    message=MESSAGE,
                    origin=layer.document.origin(("modules", module, *path)),
                    module=module,
                    path=path,
                )
                for path in sorted(set(secret_paths(schema, layer.modules[module])), key=str)
            ]
        out += cache[key]
    return out


def check_rendered(repo: Repository, stack: TargetStack, module: str, renderer: Renderer) -> list[Diagnostic]:
    """x-secret fields a template expression filled with a map or list it rendered.

    A SOPS file defines no variables, so what a ``{{ expression }}`` renders came
    from plain layers' ``vars``: a map or list it renders that holds a value where
    the schema marks a field x-secret is a plaintext secret (``warehouse: "{{ wh }}"``
    with a map variable holding ``token``), even where a later layer overrides it
    -- as ``check_stack`` rules for layer values. An expression right at an x-secret
    field is ``check_stack``'s (the template's own value there). Reported at the
    expression's line, never with the value; the template and the layers its
    variables come from are then kept nowhere on disk.
    """
    schema = repo.schema(module)
    if not schema_has_secrets(schema):
        return []
    out: list[Diagnostic] = []
    for plan in repo.templates(module):
        for at, expr in plan.exprs.items():
            if not expr.native:
                continue  # renders a string: at a secret field, check_stack reports the template's line
            try:
                value = renderer.value_at(plan, at)
            except InputError:
                continue  # the render error is reported where the module is rendered
            if not isinstance(value, (dict, list)) or not value:
                continue
            found = sorted({p for p in secret_paths(schema, _nest(at, value)) if p[: len(at)] == at}, key=str)
            if found:
                where = plan.document.origin(at)
                out += [Diagnostic(message=MESSAGE, origin=where, module=module, path=p) for p in found]
                _unkeep(repo, plan, at)
    return out


def _nest(path: JsonPath, value: Value) -> Value:
    """``value`` placed at ``path`` of an otherwise empty document (list indexes padded with None)."""
    for key in reversed(path):
        value = [None] * key + [value] if isinstance(key, int) else {key: value}
    return value


def _unkeep(repo: Repository, plan: TemplatePlan, at: JsonPath) -> None:
    """Keep nothing on disk of a template that rendered a secret, nor of the layers defining what it read."""
    from compiler.render.jinja import UNKEPT_SOURCES

    plan.keep = False
    repo.unkept.add(plan.document.path)
    repo.forget(plan.document.path)
    expr = plan.exprs[at]
    UNKEPT_SOURCES.add(expr.source)
    repo.unkeep_layers_read_by(set(expr.names))


NOT_SOPS = "not SOPS-encrypted: a *.secrets.sops.yaml file must be encrypted (llmcc secrets encrypt FILE)"
LEFT_PLAIN = (
    "secret in plaintext: sops left this value unencrypted (encrypted_regex / unencrypted_suffix in .sops.yaml)"
)
EMPTY_VALUE = "empty secret: sops does not encrypt an empty string, so anyone can read that it is empty; set a value"
TIMESTAMP = (
    "sops stored this value as a timestamp (an unquoted date: YAML 1.1) and decrypts it rewritten "
    "(2024-01-01 becomes 2024-01-01T00:00:00Z); quote it: llmcc secrets edit"
)


def _check_sops_layer(repo: Repository, layer: LayerDoc, module: str, cache: GuardCache) -> list[Diagnostic]:
    """A secrets file must be SOPS-encrypted, and every secret field in it encrypted."""
    key = (layer.document.path, module)
    if key in cache:
        return cache[key]
    raw = layer.document.value
    out: list[Diagnostic] = []
    if not is_sops_document(raw):
        if module == repo.modules[0]:  # once per file, not once per module
            out.append(Diagnostic(message=NOT_SOPS, origin=layer.document.origin(())))
    else:
        assert isinstance(raw, dict)
        by_hand = set(plaintext_leaves(raw) or [])
        if module == repo.modules[0]:
            out += _check_sops_file(repo, layer, by_hand)
        patch = raw.get("modules")
        if isinstance(patch, dict) and module in patch:
            schema = repo.schema(module)
            for path in sorted(set(secret_paths(schema, patch[module])), key=str):
                value = _get(patch[module], path)
                left = [p for p in unencrypted_leaves(value) if ("modules", module, *path, *p) not in by_hand]
                if left:
                    message = EMPTY_VALUE if value == "" else LEFT_PLAIN
                    origin = layer.document.origin(("modules", module, *path))
                    out.append(Diagnostic(message=message, origin=origin, module=module, path=path))
    cache[key] = out
    return out


def _check_sops_file(repo: Repository, layer: LayerDoc, by_hand: set[JsonPath]) -> list[Diagnostic]:
    """Once per SOPS file: values sops cannot decrypt, timestamps, and the recipients (issue 9 §5)."""
    doc = layer.document
    message = f"{PLAINTEXT_IN_SOPS} {doc.path}"
    out = [Diagnostic(message=message, origin=doc.origin(p), **_module_path(p)) for p in sorted(by_hand, key=str)]
    out += [
        Diagnostic(message=TIMESTAMP, origin=doc.origin(p), **_module_path(p))
        for p, t in typed_leaves(doc.value)
        if t == "time"
    ]
    config = repo.tree.read(SOPS_CONFIG) if repo.tree.exists(SOPS_CONFIG) else None
    why = recipient_mismatch(config, doc.path, sops_metadata(doc.value))
    if why is not None:
        out.append(Diagnostic(message=why, origin=doc.origin((SOPS_KEY,))))
    return out


class _ModulePath(TypedDict, total=False):
    module: str
    path: JsonPath


def _module_path(path: JsonPath) -> _ModulePath:
    """``module`` and ``path`` of a diagnostic for a document path under ``modules.<name>``."""
    if len(path) > 2 and path[0] == "modules" and isinstance(path[1], str):
        return {"module": path[1], "path": path[2:]}
    return {}


def _get(value: Value, path: JsonPath) -> Value:
    for part in path:
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value
