"""What the client reports: its status and its counters (issue 11 §8).

``ConfigClient.metrics()`` returns a :class:`ClientMetrics` snapshot for the
service to copy into its metrics library (README "Consuming config in a
service" lists the Prometheus names). Refusals are counted by reason, one of
:data:`REASONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import get_args

from compiler.errors import LlmccError, Reason, SecretsError, StorageError, VerificationError

# Why an update was refused (the label of llmcc_client_refusals_total): the reason the
# VerificationError carries from the check that failed (compiler.errors.Reason), or one of the
# client's own: its cache, a store object failing the store's integrity checks, a data key.
REASONS: tuple[str, ...] = (*get_args(Reason), "cache", "corrupt_object", "secrets")


def refusal_reason(error: LlmccError) -> str:
    """The reason label of a refused update (``verification`` when no finer one applies)."""
    if isinstance(error, SecretsError):
        return "secrets"
    if isinstance(error, VerificationError):
        return error.reason
    if isinstance(error, StorageError):
        return "corrupt_object"
    return "verification"


def is_refusal(error: LlmccError) -> bool:
    """A refusal (the store served something wrong) rather than a store that cannot be reached."""
    return isinstance(error, VerificationError | SecretsError) or error.exit_code == VerificationError.exit_code


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientStatus:
    """Where the client stands.

    ``age`` is seconds since the store last confirmed ``version`` (a refresh
    that verified it as the latest, or the cache's record of one); ``stale``
    is ``age`` above the client's ``max_age``, or more than five minutes below 0 (a
    confirmation time in the future proves nothing). ``source`` is ``store`` or
    ``cache`` (started from the last known good, not yet confirmed).
    ``last_error`` is the last refresh's error line, None after a good one.
    """

    version: int | None
    digest: str | None
    verified_at: datetime | None
    age: float | None
    stale: bool
    source: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientMetrics:
    """Counters since the client was made (per process: a forked child starts from its parent's)."""

    refreshes: int
    swaps: int
    fetch_errors: int
    deltas: int = 0  # versions rebuilt from a delta on the held one (issue 11 §7)
    refusals: Mapping[str, int] = field(default_factory=dict)
    version: int | None = None
    age: float | None = None
    next_poll_in: float | None = None
