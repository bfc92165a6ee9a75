"""What the agent's HTTP app needs of a target's source of versions (issue 12 §1).

:class:`ConfigSource` is implemented over issue 11's runtime client by
:class:`compiler.agent.clientsource.ClientSource`; tests use fakes of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from compiler.agent.snapshot import Snapshot

log = logging.getLogger("llmcc.agent")

# (old, new, changed): the ``module$.path`` of every value added, removed or changed (never a value)
ChangeCallback = Callable[[Snapshot | None, Snapshot, list[str]], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceHealth:
    """``version`` None until one verified; ``age`` seconds since the store last confirmed it."""

    target: str
    version: int | None
    digest: str | None
    checked_at: float | None  # time.time() of the last successful poll
    age: float | None
    stale: bool
    last_error: str | None
    refusals: int
    polls: int


class ConfigSource(Protocol):
    """A target's verified versions (what the agent needs of issue 11's ``ConfigClient``)."""

    @property
    def target(self) -> str: ...

    @property
    def current(self) -> Snapshot | None:
        """The version held now; None before the first verified one. A plain read: no lock."""

    def on_change(self, callback: ChangeCallback) -> None:
        """Call ``callback(old, new, changed)`` after each swap, from the source's thread."""

    def health(self) -> SourceHealth: ...

    def start(self) -> None:
        """Start polling (the first poll runs before this returns)."""

    def stop(self) -> None: ...
