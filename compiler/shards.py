"""Which targets shard I of N compiles: one CI runner's part of the targets (issue 14 §4).

CI systems already run jobs side by side (a GitHub Actions matrix, GitLab
``parallel:``); ``--shard I/N`` gives each job a fixed part of the targets.

A process parses each file once, however many of its targets read it: an
environment's merged base (``compiler.compile.pipeline.env_base``) serves all the
targets of that environment, and a tenant's layer files
(``environments/tenants/<t>.yaml``, its SOPS file) serve the tenant's targets in
every environment. So a shard keeps together the targets that read the same
files: a tenant's targets are one *unit*, an environment's own target another.

The rule depends only on the set of targets and N (not on the machine, the
input order or ``--jobs``), so every runner computes the same partition:

1. Group the units by the environments they read: a tenant by the set of
   environments its targets are in; an environment's own target joins the
   largest group of tenants whose set holds its environment (ties: the first
   set, as a sorted tuple), else a group of its own. In a group, the
   environments' own targets come first (by name), then the tenants by name,
   each tenant's targets together (by environment name).
2. The fair share is ``cap = ceil(T / N)`` targets for T targets; a shard may
   hold up to ``cap + cap // 8`` rather than split a group.
3. Take the groups largest first (ties: by their set). Give each to the shard
   holding the fewest targets so far (ties: the lowest index): whole when it fits
   within ``cap + cap // 8`` there, else split it between two units near ``cap``
   and go on with the rest of the group. The shard takes the group's first
   targets up to ``cap``, and on to the end of the unit that ``cap`` cuts when
   that stays within ``cap + cap // 8``; else it stops at the start of that
   unit, or (when that unit is the first) at ``cap``, inside it.

So a group is split only when it does not fit: a group much larger than the
fair share, or fewer groups than shards. Every shard holds at most
``cap + cap // 8`` targets. A tenant's targets are cut apart only where a shard
is filled exactly to ``cap`` (a tenant in more environments than the slack
above it), which then takes nothing more: at most N - 1 tenants. When no unit is
larger than ``cap // 8 + 1`` targets, every split fills a shard to ``cap`` or
more, so at most N - 1 groups are split.

A shard computes each of its environments' bases once and parses each of its
tenants' files once (per process: ``Repository`` and ``CompileCaches``). The
price of keeping tenants whole: a shard computes the base of every environment
its tenants are in (two in the bench below, where grouping by environment gave
it one), where grouping by environment alone parsed each tenant file once per
environment, in as many shards: 4 shards of the 1,003-target bench (each tenant
in staging and prod) spent 45 % more CPU per target than one runner, now the
same (bench/NOTES.md). With more shards than targets, some shards are empty.
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
    # ASCII digits only: str.isdigit() and int() also take other scripts' digits (full-width "1/2")
    if not slash or not (index + total).isascii() or not index.isdigit() or not total.isdigit():
        raise UsageError(f"{text!r} is not a shard: expected I/N, e.g. 2/4 (shard 2 of 4, counting from 1)")
    if int(total) < 1 or int(total) > MAX_SHARDS:
        raise UsageError(f"{text!r}: the number of shards N must be between 1 and {MAX_SHARDS}")
    if not 1 <= int(index) <= int(total):
        raise UsageError(f"{text!r}: the shard index I must be between 1 and N ({int(total)}), counting from 1")
    return Shard(int(index), int(total))


def shard_groups(targets: Sequence[T]) -> list[list[T]]:
    """The groups of step 1 of the rule (module docstring), in the order the rule takes them."""
    return [[targets[i] for i in group] for group in _groups(targets)]


def _groups(targets: Sequence[T]) -> list[list[int]]:
    """``shard_groups`` as positions in ``targets``."""
    envs: dict[str, set[str]] = {}  # tenant -> the environments of its targets
    for target in targets:
        if target.tenant is not None:
            envs.setdefault(target.tenant, set()).add(target.environment)
    keys = {tenant: tuple(sorted(found)) for tenant, found in envs.items()}
    sizes: dict[tuple[str, ...], int] = {}
    for tenant, key in keys.items():
        sizes[key] = sizes.get(key, 0) + len(envs[tenant])
    home: dict[str, tuple[str, ...]] = {}  # environment -> the largest tenants' group holding it
    for key in sorted(sizes, key=lambda k: (-sizes[k], k)):
        for env in key:
            home.setdefault(env, key)
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, target in enumerate(targets):
        key = home.get(target.environment, (target.environment,)) if target.tenant is None else keys[target.tenant]
        groups.setdefault(key, []).append(i)

    def order(i: int) -> tuple[bool, str, str, int]:
        return (targets[i].tenant is not None, targets[i].tenant or "", targets[i].environment, i)

    return [sorted(groups[key], key=order) for key in sorted(groups, key=lambda k: (-len(groups[k]), k))]


def assign_shards(targets: Sequence[T], total: int) -> list[list[T]]:
    """Every shard's targets, shard 1 first, each in the order of ``targets`` (rule: module docstring).

    Raises:
        UsageError: ``total`` is not between 1 and ``MAX_SHARDS``.
    """
    Shard(1, total)  # checks total
    cap = math.ceil(len(targets) / total)
    limit = cap + cap // 8
    loads = [0] * total
    chosen: list[list[int]] = [[] for _ in range(total)]
    for rest in _groups(targets):
        while rest:
            shard = min(range(total), key=lambda s: (loads[s], s))
            # room >= 1: fewer than T targets are placed, so the least loaded shard holds < T/N <= cap
            room = limit - loads[shard]
            take = len(rest) if len(rest) <= room else _cut(targets, rest, cap - loads[shard], room)
            chosen[shard] += rest[:take]
            loads[shard] += take
            rest = rest[take:]
    return [[targets[i] for i in sorted(part)] for part in chosen]


def _cut(targets: Sequence[T], group: list[int], fair: int, room: int) -> int:
    """How many of ``group``'s first targets a shard with ``fair`` (>= 1) targets to go to its fair share
    and ``room`` to its limit takes: up to the end of the unit at the fair share when that fits in
    ``room``, else whole units below it, else part of the first unit (up to the fair share)."""

    def joined(end: int) -> bool:  # the targets before and after position ``end`` are one unit
        a, b = targets[group[end - 1]], targets[group[end]]
        return a.tenant is not None and a.tenant == b.tenant

    up = fair
    while up < len(group) and joined(up):
        up += 1
    if up <= room:
        return up
    down = fair
    while down > 0 and joined(down):
        down -= 1
    return down or fair


def select_shard(targets: Sequence[T], shard: Shard | None) -> list[T]:
    """The targets of ``shard`` (all of them when None), in the order of ``targets``."""
    if shard is None:
        return list(targets)
    return assign_shards(targets, shard.total)[shard.index - 1]


__all__ = ["MAX_SHARDS", "Shard", "assign_shards", "parse_shard", "select_shard", "shard_groups"]
