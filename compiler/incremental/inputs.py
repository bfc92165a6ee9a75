"""One definition of what a target's result is computed from (issue 14 §2). Pure.

Three readers use it: the pre-commit selection of the targets a change can
affect (``compiler.affected``), ``diff``'s skipping of targets whose inputs are
identical on both sides, and the incremental cache's key
(``compiler.incremental.key``); sharding keys on the same digests
(``changed_targets``, ``environment_group``). A target's inputs, by kind:

1. shared: files every target reads. ``llmcc.yaml``, everything under
   ``schemas/`` and ``templates/`` (scope ``config``: the effective values),
   plus ``policies/*.yaml`` and ``.sops.yaml`` (scope ``checks``: the findings
   of ``validate``, which read the policies and check SOPS recipients).
2. own: the target's layer files and their SOPS siblings
   (``compiler.load.layers.resolve_layers``; absent optional files count as
   absent), plus, in scope ``checks``, the rotation sidecars of its SOPS files
   and its data key file ``keys/targets/<target>.yaml``.
3. repository: facts about other files that reach a target's findings. In
   scope ``checks``: every data key file (two targets sharing a data key is a
   finding on both: ``compiler.secrets.access.shared_data_key``) and the layer
   files no target reads (``compiler.validate.layout`` reports them with
   every target). The pre-commit selection narrows these on purpose: a copied
   key is reported on the target whose file changed, an unread or orphan file
   by a full run (``compiler.affected``).

Files are named by their git blob id (``git hash-object``; equal ids mean
equal bytes), so a working tree and a revision compare without reading both.
An id of None (a symlink, unknown) makes a digest None: never equal, never
cached. So does a file that is not listed but may still be read: one below a
symlinked directory (``WorkTree`` reads through a link that stays inside the
repository, the listing does not follow it), with a root or a layer directory
a symlink the shared digest, and one whose name only differs in case or
Unicode form from a listed file (a case-insensitive file system, as macOS and
Windows have by default, opens that file by the other name).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from compiler.load.layers import ENVIRONMENTS, resolve_layers
from compiler.project import MANIFEST, Project, Target
from compiler.secrets.keyfile import KEY_DIR, key_file_path
from compiler.secrets.rotation import rotation_path

Scope = Literal["config", "checks"]
FileIds = Mapping[str, str | None]  # repository path -> git blob id; None: unknown

SCHEMAS = "schemas"
TEMPLATES = "templates"
POLICIES = "policies"
SOPS_CONFIG = ".sops.yaml"
CONFIG_DIRS = (f"{SCHEMAS}/", f"{TEMPLATES}/")
# The paths whose files can be inputs of some target: what to list blob ids of.
CONFIG_ROOTS = (MANIFEST, SCHEMAS, TEMPLATES, ENVIRONMENTS)
CHECK_ROOTS = (*CONFIG_ROOTS, POLICIES, KEY_DIR, SOPS_CONFIG)
_ABSENT = "-"


def is_shared(path: str, scope: Scope) -> bool:
    """Whether every target reads ``path`` (repository-relative, ``/``-separated)."""
    if path == MANIFEST or path.startswith(CONFIG_DIRS):
        return True
    if scope == "config":
        return False
    if path == SOPS_CONFIG:
        return True
    head, _, name = path.partition("/")
    return head == POLICIES and "/" not in name and name.endswith((".yaml", ".yml"))


def own_files(project: Project, target: Target, scope: Scope) -> list[str]:
    """The files only some targets read that ``target`` reads, lowest layer first.

    A function of the manifest alone, worked out once per (project, target, scope) in a process: the
    cache keys, the carry keys, the recheck after a build and ``read_by_targets`` each ask for every
    target's (~25 µs a target).
    """
    memo = _OWN.get(id(project))
    if memo is None or memo[0] is not project:
        if len(_OWN) >= _MAX_PROJECTS:
            _OWN.clear()  # a process that opens many repositories (the tests) keeps no more
        memo = _OWN[id(project)] = (project, {})
    found = memo[1].get((target, scope))
    if found is None:
        out = []
        for ref in resolve_layers(project, target):
            out.append(ref.path)
            if ref.secrets and scope == "checks":
                out.append(rotation_path(ref.path))
        if scope == "checks":
            out.append(key_file_path(target.name))
        found = memo[1][(target, scope)] = tuple(out)
    return list(found)


_OWN: dict[int, tuple[Project, dict[tuple[Target, Scope], tuple[str, ...]]]] = {}  # id(project) -> its own_files
_MAX_PROJECTS = 64


def read_by_targets(project: Project) -> frozenset[str]:
    """Every layer file, SOPS sibling and rotation sidecar that some target of ``project`` reads.

    Worked out once per ``project`` in a process (a ``Project`` is immutable): the cache keys, the
    carry keys and the recheck after a build each need it, and it walks every target's layers
    (~3.5 ms on xlarge, 203 targets).
    """
    kept = _READ.get(id(project))
    if kept is not None and kept[0] is project:
        return kept[1]
    read: set[str] = set()
    for target in project.targets():
        read.update(p for p in own_files(project, target, "checks") if p.startswith(f"{ENVIRONMENTS}/"))
    if len(_READ) >= _MAX_PROJECTS:
        _READ.clear()  # a process that opens many repositories (the tests) keeps no more
    found = frozenset(read)
    _READ[id(project)] = (project, found)
    return found


_READ: dict[int, tuple[Project, frozenset[str]]] = {}  # id(project) -> (project, its read_by_targets)


def in_layer_dir(project: Project, path: str) -> bool:
    """Whether ``path`` is a YAML file in a directory layers live in (``compiler.validate.layout`` rule 4)."""
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


def repository_facts(project: Project, files: FileIds) -> list[tuple[str, str | None]]:
    """The repository-level inputs of every target's findings (kind 3), as (path, blob id) pairs."""
    read = read_by_targets(project)
    listed = set(project.manifest.unpaired.layers)
    facts = [(p, i) for p, i in files.items() if p.startswith(f"{KEY_DIR}/")]
    facts += [(p, "") for p in files if in_layer_dir(project, p) and (p not in read or p in listed)]
    return sorted(facts, key=lambda f: f[0])


@dataclass(frozen=True, kw_only=True)
class InputDigests:
    """The digest of each target's inputs at one state of a repository (hex SHA-256, None: unknown).

    ``context`` is mixed into every digest: what besides files decides the
    result (the cache puts the tool version, identity presence and policy
    time there; ``diff`` nothing).
    """

    project: Project
    files: FileIds
    scope: Scope
    context: str = ""

    @cached_property
    def _unknown(self) -> tuple[str, ...]:
        """The paths whose id is unknown (symlinks): nothing below one is listed."""
        return tuple(p for p, i in self.files.items() if i is None)

    @cached_property
    def _folded(self) -> frozenset[str]:
        return frozenset(_fold(p) for p in self.files)

    def file_id(self, path: str) -> str | None:
        """``path``'s blob id; ``"-"`` when it is not there, None when it may be there unlisted."""
        return self._id(path)

    def _id(self, path: str) -> str | None:
        """``path``'s id, ``_ABSENT`` when it is not there, None when it may be there unlisted."""
        if path in self.files:
            return self.files[path]
        if any(path.startswith(f"{u}/") for u in self._unknown) or _fold(path) in self._folded:
            return None
        return _ABSENT

    @cached_property
    def shared(self) -> str | None:
        """The digest of the inputs every target has (kinds 1 and 3); None when one is unknown."""
        entries = sorted((p, i) for p, i in self.files.items() if is_shared(p, self.scope))
        if MANIFEST not in self.files:
            return None
        if any(_hides_inputs(self.project, u, self.scope) for u in self._unknown):
            return None
        if self.scope == "checks":
            entries += [("", "repository"), *repository_facts(self.project, self.files)]
        return _digest(entries)

    def target(self, target: Target) -> str | None:
        """The digest of ``target``'s inputs (kinds 1 to 3 and ``context``)."""
        head = self.shared
        if head is None:
            return None
        entries: list[tuple[str, str | None]] = [("", head), ("", self.context), ("target", target.name)]
        entries += [(p, self._id(p)) for p in own_files(self.project, target, self.scope)]
        return _digest(entries)

    def all(self, targets: Iterable[Target]) -> dict[str, str | None]:
        return {t.name: self.target(t) for t in targets}


def _fold(path: str) -> str:
    """The name a case-insensitive file system (macOS, Windows) takes ``path`` for."""
    return unicodedata.normalize("NFC", path).casefold()


def _hides_inputs(project: Project, path: str, scope: Scope) -> bool:
    """Whether the symlinked directory ``path`` may hold shared inputs: a root, or (``checks``) a layer directory."""
    if path in (CHECK_ROOTS if scope == "checks" else CONFIG_ROOTS):
        return True
    parts = path.split("/")
    if scope == "config" or parts[0] != ENVIRONMENTS:
        return False
    return parts[1:] == ["tenants"] or (
        len(parts) > 1 and parts[1] in project.manifest.environments and parts[2:] in ([], ["tenants"])
    )


def digest_entries(entries: Sequence[tuple[str, str | None]]) -> str | None:
    """The digest of (path, blob id) pairs; None when an id is None (unknown)."""
    return _digest(entries)


def _digest(entries: Sequence[tuple[str, str | None]]) -> str | None:
    h = hashlib.sha256()
    for path, blob in entries:
        if blob is None:
            return None
        h.update(f"{path}\0{blob or ''}\n".encode())
    return h.hexdigest()


def changed_targets(base: InputDigests, head: InputDigests, targets: Iterable[Target]) -> list[Target]:
    """The ``targets`` whose inputs differ between ``base`` and ``head`` (or are unknown on either side).

    For sharding and for tests: a shard may skip a target this leaves out.
    """
    if base.shared is None or base.shared != head.shared:
        return list(targets)
    return [t for t in targets if (old := base.target(t)) is None or old != head.target(t)]


def environment_group(target: Target) -> str:
    """The group a shard keeps together: targets of one environment share its merged base (``inherit``)."""
    return target.environment
