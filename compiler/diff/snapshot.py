"""One module of one target, merged alone and with its secrets masked: what ``history`` compares.

``history`` asks for one value at many commits; merging only the asked module
(instead of every module of the target) keeps each commit's cost to that module.
"""

from __future__ import annotations

from compiler.compile.pipeline import CompileCaches, compile_target
from compiler.compile.repository import Repository
from compiler.diff.masking import Masked, SecretDigest, mask_secrets, sops_paths
from compiler.jsonpath import Query, Segment, select
from compiler.project import Target


class Absent:
    """No value: the target, module or path does not exist at that revision (one instance, ``ABSENT``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = Absent()


def snapshot_module(
    repo: Repository, target: Target, module: str, key: bytes, caches: CompileCaches | None = None
) -> Masked | Absent:
    """The effective value of ``module`` for ``target``, secrets as digests; ABSENT when undefined.

    The module is compiled alone (``compile_target`` with ``modules``), unvalidated.
    """
    if target not in repo.project.targets() or module not in repo.modules:
        return ABSENT
    result = compile_target(repo, target, validate=False, inherit=False, modules=[module], caches=caches)
    paths = {*result.secrets.get(module, ()), *sops_paths(result.stack, module)}
    return mask_secrets(result.modules[module], paths, key)


def lookup(value: Masked | Absent, query: Query) -> tuple[Masked | Absent, Query]:
    """The value at ``query`` and the concrete path to it (``compiler.jsonpath.select`` per segment).

    A secret above the path stands for everything below it: the path is then
    the secret's, followed by the segments of ``query`` below it.
    """
    path: list[Segment] = []
    for n, segment in enumerate(query):
        if isinstance(value, SecretDigest):
            return value, (*path, *query[n:])
        key = select(value, segment)
        if key is None:
            return ABSENT, query
        path.append(key)
        value = value[key]  # type: ignore[index]
    return value, tuple(path)
