"""Which targets shard I of N compiles: one CI runner's part of the targets (issue 14 §4).

CI systems already run jobs side by side (a GitHub Actions matrix, GitLab
``parallel:``); ``--shard I/N`` gives each job a fixed part of the targets.

The rule depends only on the set of targets and N (not on the machine, the
input order or ``--jobs``), so every runner computes the same partition:

1. Group the targets by environment: the environment's own target first, then
   its tenant targets by tenant name. A group shares its environment's merged
   base (``compiler.compile.pipeline.env_base``), computed once per process.
2. The fair share is ``cap = ceil(T / N)`` targets for T targets; a shard may
   hold up to ``cap + cap // 8`` rather than split a group.
3. Take the groups largest first (ties: by environment name). Give each to the
   shard holding the fewest targets so far (ties: the lowest index): whole when
   it fits within ``cap + cap // 8`` there, else fill that shard up to ``cap``
   with the group's first targets and go on with the rest of the group.

So a group is split only when it does not fit: a group much larger than the
fair share, or fewer groups than shards. Every shard holds at most
``cap + cap // 8`` targets; a shard that holds part of a group computes that
environment's base once; at most N - 1 groups are split (each split fills a
shard up to ``cap``, which then takes nothing more). With more shards than
targets, some shards are empty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from compiler.errors import UsageError

MAX_SHARDS = 10_000  # more runners than any CI matrix allows (GitHub: 256 jobs, GitLab: parallel 200)


class _Targeted(Protocol):
    @property
    def environment(self) -> str: ...

    @property
    def tenant(self) -> str | None: ...


T = TypeVar("T", bound=_Targeted)


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (1-based) of ``total``."""

    index: int
    total: int

    def __post_init__(self) -> None:
        if not 1 <= self.total <= MAX_SHARDS or not 1 <= self.index <= self.total:
            raise UsageError(f"{self.index}/{self.total} is not a shard (I/N with 1 <= I <= N <= {MAX_SHARDS})")

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> Shard:
    """``"2/4"`` -> ``Shard(2, 4)``.

    Raises:
        UsageError: not ``I/N`` with whole numbers ``1 <= I <= N <= MAX_SHARDS``.
    """
    index, slash, total = text.strip().partition("/")
    if not slash or not index.isdigit() or not total.isdigit():
        raise UsageError(f"{text!r} is not a shard: expected I/N, e.g. 2/4 (shard 2 of 4, counting from 1)")
    if int(total) < 1 or int(total) > MAX_SHARDS:
        raise UsageError(f"{text!r}: the number of shards N must be between 1 and {MAX_SHARDS}")
    if not 1 <= int(index) <= int(total):
        raise UsageError(f"{text!r}: the shard index I must be between 1 and N ({int(total)}), counting from 1")
    return Shard(int(index), int(total))


def assign_shards(targets: Sequence[T], total: int) -> list[list[T]]:
    """Every shard's targets, shard 1 first, each in the order of ``targets`` (rule: module docstring).

    Raises:
        UsageError: ``total`` is not between 1 and ``MAX_SHARDS``.
    """
    Shard(1, total)  # checks total
    cap = math.ceil(len(targets) / total)
    limit = cap + cap // 8
    groups: dict[str, list[int]] = {}  # positions in `targets`, by environment
    for i, target in enumerate(targets):
        groups.setdefault(target.environment, []).append(i)
    loads = [0] * total
    chosen: list[list[int]] = [[] for _ in range(total)]
    for env in sorted(groups, key=lambda e: (-len(groups[e]), e)):
        rest = sorted(groups[env], key=lambda i: (targets[i].tenant is not None, targets[i].tenant or "", i))
        while rest:
            shard = min(range(total), key=lambda s: (loads[s], s))
            # room >= 1: fewer than T targets are placed, so the least loaded shard holds < T/N <= cap
            take = len(rest) if loads[shard] + len(rest) <= limit else cap - loads[shard]
            chosen[shard] += rest[:take]
            loads[shard] += take
            rest = rest[take:]
    return [[targets[i] for i in sorted(part)] for part in chosen]


def select_shard(targets: Sequence[T], shard: Shard | None) -> list[T]:
    """The targets of ``shard`` (all of them when None), in the order of ``targets``."""
    if shard is None:
        return list(targets)
    return assign_shards(targets, shard.total)[shard.index - 1]


__all__ = ["MAX_SHARDS", "Shard", "assign_shards", "parse_shard", "select_shard"]
