"""Schemas and templates pair up (issue 10 §1).

A module is named by ``schemas/<module>.schema.json`` and rendered from
``templates/<module>.yaml``. A file on one side without its partner used to
be ignored silently: a template without a schema vanished from the bundle. The
checks, each an error at the file:

1. every ``templates/*.yaml`` is a module's template or an ``extends`` base of
   one, unless listed in ``unpaired.templates`` of llmcc.yaml;
2. every module has its template, unless listed in ``unpaired.schemas``;
3. ``templates/*.yml`` is never read (templates end in ``.yaml``);
4. every YAML file in ``environments/``, ``environments/tenants/`` and
   ``environments/<env>/tenants/`` is a layer of some target (or the rotation
   sidecar of one), unless listed in ``unpaired.layers``: a misspelt
   environment or tenant file would otherwise be ignored;
5. every name in the ``unpaired`` lists is a real exception: an unknown name,
   or one that does pair up, is an error at its line in llmcc.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from compiler.diagnostics import Diagnostic, Origin
from compiler.errors import LlmccError
from compiler.load.layers import ENVIRONMENTS, layer_names, layer_paths
from compiler.secrets.rotation import rotation_path

if TYPE_CHECKING:
    from compiler.compile.repository import Repository

SCHEMAS = "schemas"
TEMPLATES = "templates"
SCHEMA_SUFFIX = ".schema.json"


def check_layout(repo: Repository) -> list[Diagnostic]:
    """The pairing errors of ``repo``'s schemas and templates (see the module doc)."""
    spec = repo.project.manifest.unpaired
    files = repo.tree.list_dir(TEMPLATES)
    templates = [f for f in files if f.endswith(".yaml")]
    used: dict[str, str] = {}  # template file -> module whose chain reads it
    for module in repo.modules:
        try:
            chain = repo.templates(module)
        except LlmccError:
            continue  # a broken template: the targets report it
        for plan in chain:
            used.setdefault(plan.document.path.removeprefix(f"{TEMPLATES}/"), module)
    out: list[Diagnostic] = []
    for name in files:
        if name.endswith(".yml"):
            out.append(_at(f"{TEMPLATES}/{name}", "template", "never read: templates end in .yaml"))
    for name in templates:
        if name not in used and name not in spec.templates:
            module = name.removesuffix(".yaml")
            out.append(
                _at(
                    f"{TEMPLATES}/{name}",
                    "template",
                    f"no {SCHEMAS}/{module}{SCHEMA_SUFFIX} and no module extends it: this template is never "
                    "rendered (add the schema, or list it under unpaired.templates in llmcc.yaml)",
                )
            )
    for module in repo.modules:
        if f"{module}.yaml" not in templates and module not in spec.schemas:
            out.append(
                _at(
                    f"{SCHEMAS}/{module}{SCHEMA_SUFFIX}",
                    "schema",
                    f"no {TEMPLATES}/{module}.yaml: module {module} has no template "
                    "(add it, or list the module under unpaired.schemas in llmcc.yaml)",
                )
            )
    layers, read = _layer_files(repo)
    for path in layers:
        if path not in read and path not in spec.layers:
            message = f"no target reads this layer file: {_why_unread(repo, path)} (or list it under unpaired.layers)"
            out.append(_at(path, "", message))
    out += _check_exceptions(repo, templates, used)
    for i, path in enumerate(spec.layers):
        problem = f"no {path}" if path not in layers else f"{path} is read by a target" if path in read else None
        if problem:
            where = repo.project.document.origin(("unpaired", "layers", i))
            out.append(Diagnostic(message=f"unpaired.layers: {problem}: remove it from the list", origin=where))
    return out


def _why_unread(repo: Repository, path: str) -> str:
    manifest = repo.project.manifest
    if path.endswith(".yml"):
        return "layer files end in .yaml"
    parts = path.removeprefix(f"{ENVIRONMENTS}/").split("/")
    name = parts[-1].split(".", 1)[0]
    if len(parts) == 1:
        return f"environment {name!r} is not in llmcc.yaml{_close(name, manifest.environments)}"
    if name not in manifest.tenants:
        return f"tenant {name!r} is not in llmcc.yaml{_close(name, manifest.tenants)}"
    return f"tenant {name!r} is not compiled for environment {parts[0]!r} (tenants.{name}.environments in llmcc.yaml)"


def _close(name: str, known: Iterable[str]) -> str:
    import difflib  # a finding's path only (~1 ms at import)

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _layer_files(repo: Repository) -> tuple[list[str], set[str]]:
    """The YAML files in the layer directories, and the paths some target reads."""
    project = repo.project
    # by layer name: the targets of an environment share most of theirs (a 1,003-target repository
    # built ~10,000 LayerRefs here, ~10 ms before a shard's workers could start: issue 14 §4)
    names = {name for target in project.targets() for name, _ in layer_names(project, target)}
    read: set[str] = set()
    for name in names:
        plain, secrets = layer_paths(name)
        read.update((plain, secrets, rotation_path(secrets)))
    dirs = [ENVIRONMENTS, f"{ENVIRONMENTS}/tenants"]
    dirs += [f"{ENVIRONMENTS}/{env}/tenants" for env in project.manifest.environments]
    files = [f"{d}/{name}" for d in dirs for name in repo.tree.list_dir(d) if name.endswith((".yaml", ".yml"))]
    return files, read


def _check_exceptions(repo: Repository, templates: list[str], used: dict[str, str]) -> list[Diagnostic]:
    spec = repo.project.manifest.unpaired
    doc = repo.project.document
    out: list[Diagnostic] = []
    for i, module in enumerate(spec.schemas):
        problem = None
        if module not in repo.modules:
            problem = f"no {SCHEMAS}/{module}{SCHEMA_SUFFIX}"
        elif f"{module}.yaml" in templates:
            problem = f"{TEMPLATES}/{module}.yaml exists: remove {module!r} from the list"
        if problem:
            out.append(
                Diagnostic(message=f"unpaired.schemas: {problem}", origin=doc.origin(("unpaired", "schemas", i)))
            )
    for i, name in enumerate(spec.templates):
        problem = None
        if name not in templates:
            problem = f"no {TEMPLATES}/{name}"
        elif name in used:
            problem = f"{TEMPLATES}/{name} is rendered for module {used[name]}: remove it from the list"
        if problem:
            where = doc.origin(("unpaired", "templates", i))
            out.append(Diagnostic(message=f"unpaired.templates: {problem}", origin=where))
    return out


def _at(path: str, layer: str, message: str) -> Diagnostic:
    return Diagnostic(message=message, origin=Origin(path=path, line=1, column=1, layer=layer))


__all__ = ["check_layout"]
