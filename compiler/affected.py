"""Which targets a set of changed files can affect (for ``llmcc hook validate``). Pure.

What a target reads is defined once, in ``compiler.incremental.inputs``; this
module picks the targets whose checks can report something new:

1. a file every target reads (``llmcc.yaml``, ``schemas/``, ``templates/``,
   ``policies/*.yaml``, ``.sops.yaml``) affects every target;
2. a target's own file (a layer, its secrets file, their rotation sidecar, its
   data key file ``keys/targets/<target>.yaml``) affects that target: an
   environment's file affects it, every environment extending it and their
   tenant targets; ``environments/tenants/<t>*`` the targets of tenant t;
   ``environments/<env>/tenants/<t>*`` the target ``env@t``;
3. a data key file of no target, or a YAML file in a layer directory that no
   target reads, affects every target, so a full validate reports it as an
   orphan or as unread (``compiler.validate.layout``); a key file shared with
   another target is reported on the target whose file changed;
4. anything else (other keys, docs, ``policies/tests/``) affects no target.
"""

from __future__ import annotations

from collections.abc import Iterable

from compiler.incremental.inputs import in_layer_dir, is_shared, own_files, read_by_targets
from compiler.project import Project, Target
from compiler.secrets.access import orphan_names
from compiler.secrets.keyfile import KEY_DIR


def affects_all(path: str) -> bool:
    return is_shared(path, "checks")


def affected_targets(project: Project, files: Iterable[str]) -> list[Target]:
    """The targets that ``files`` (repository-relative, ``/``-separated) can change, in manifest order."""
    paths = {f.removeprefix("./") for f in files}
    targets = project.targets()
    if any(affects_all(p) for p in paths):
        return targets
    key_files = {p.removeprefix(f"{KEY_DIR}/") for p in paths if p.startswith(f"{KEY_DIR}/")}
    if orphan_names(project, sorted(key_files)):
        return targets
    read = read_by_targets(project)
    if any(in_layer_dir(project, p) and p not in read for p in paths):
        return targets
    return [t for t in targets if paths.intersection(own_files(project, t, "checks"))]
