"""Which targets a set of changed files can affect (for ``llmcc hook validate``). Pure.

1. ``llmcc.yaml``, ``schemas/``, ``templates/``, ``policies/*.yaml`` and the
   base layer (``environments/base*``) affect every target.
2. A layer file, its secrets file or their rotation sidecar affects the
   targets whose stack holds that layer (``compiler.load.layers``): an
   environment's file affects it, every environment extending it and their
   tenant targets; ``environments/tenants/<t>*`` the targets of tenant t;
   ``environments/<env>/tenants/<t>*`` the target ``env@t``.
3. A data key file ``keys/targets/<target>.yaml`` affects its target (its
   readers are checked against llmcc.yaml); one of no target, every target
   (so a full validate reports it as an orphan).
4. A YAML file in a layer directory (``environments/``,
   ``environments/tenants/``, ``environments/<env>/tenants/``) that no target
   reads affects every target, so a full validate reports it as unread
   (``compiler.validate.layout``: a misspelt environment or tenant file).
5. Anything else (other keys, docs, ``policies/tests/``) affects no target.
"""

from __future__ import annotations

from collections.abc import Iterable

from compiler.load.layers import ENVIRONMENTS, resolve_layers
from compiler.policy.rules import POLICIES
from compiler.project import MANIFEST, Project, Target
from compiler.secrets.access import orphan_names
from compiler.secrets.keyfile import KEY_DIR
from compiler.secrets.rotation import rotation_path

GLOBAL_DIRS = ("schemas/", "templates/")
BASE_PREFIX = f"{ENVIRONMENTS}/base."


def affects_all(path: str) -> bool:
    if path == MANIFEST or path.startswith(GLOBAL_DIRS) or path.startswith(BASE_PREFIX):
        return True
    head, _, name = path.partition("/")
    return head == POLICIES and "/" not in name and name.endswith((".yaml", ".yml"))


def affected_targets(project: Project, files: Iterable[str]) -> list[Target]:
    """The targets that ``files`` (repository-relative, ``/``-separated) can change, in manifest order."""
    paths = {f.removeprefix("./") for f in files}
    targets = project.targets()
    if any(affects_all(p) for p in paths):
        return targets
    key_files = {p.removeprefix(f"{KEY_DIR}/") for p in paths if p.startswith(f"{KEY_DIR}/")}
    if orphan_names(project, sorted(key_files)):
        return targets
    out = []
    read: set[str] = set()
    for target in targets:
        layer_files = set()
        for ref in resolve_layers(project, target):
            layer_files.add(ref.path)
            if ref.secrets:
                layer_files.add(rotation_path(ref.path))
        read |= layer_files
        if f"{target.name}.yaml" in key_files or layer_files & paths:
            out.append(target)
    if any(_in_layer_dir(project, p) and p not in read for p in paths):
        return targets
    return out


def _in_layer_dir(project: Project, path: str) -> bool:
    if not path.endswith((".yaml", ".yml")):
        return False
    parts = path.split("/")
    if parts[0] != ENVIRONMENTS:
        return False
    return (
        len(parts) == 2
        or parts[1:-1] == ["tenants"]
        or (parts[2:-1] == ["tenants"] and parts[1] in project.manifest.environments)
    )
