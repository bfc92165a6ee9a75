"""Set up the cache for one command run: the file ids of the repository and each target's key.

``--no-cache`` or ``LLMCC_NO_CACHE`` (``1``, ``true``, ``yes`` or ``on``, any case) turns it off;
``0``, ``false``, ``no``, ``off`` or empty leaves it on; any other value is a usage error (exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from compiler.errors import UsageError

if TYPE_CHECKING:  # the cache's modules load once the cache is on: `validate --no-cache` does without (issue 14 §1)
    from pathlib import Path

    from compiler.compile.repository import Repository
    from compiler.incremental.inputs import FileIds
    from compiler.incremental.key import Mode
    from compiler.incremental.run import CachePlan
    from compiler.project import Target
    from compiler.secrets.identity import Identities
    from compiler.sources.base import SourceInfo

NO_CACHE_ENV = "LLMCC_NO_CACHE"
_OFF = ("1", "true", "yes", "on")
_ON = ("", "0", "false", "no", "off")


def cache_disabled(flag: bool, env: Mapping[str, str]) -> bool:
    """``--no-cache`` given, or ``LLMCC_NO_CACHE`` set to 1/true/yes/on (any case).

    Raises:
        UsageError: ``LLMCC_NO_CACHE`` is none of those nor 0/false/no/off/empty (a typo must not
            leave the cache on or off unnoticed).
    """
    value = env.get(NO_CACHE_ENV, "").strip().lower()
    if value not in _OFF + _ON:
        raise UsageError(f"{NO_CACHE_ENV}={env[NO_CACHE_ENV]!r}: expected 1, true, yes, on, or 0, false, no, off")
    return flag or value in _OFF


def finish_cache(plan: CachePlan | None) -> str | None:
    """After the run's last write to the cache: evict (``ResultCache.evict``: every byte this run wrote
    is in its tally), then the one warning line about a result cache that failed this run (best-effort:
    the run went on), or None."""
    if plan is None:
        return None
    plan.cache.evict()
    if plan.cache.refused:
        return None  # said before the build
    return f"llmcc: warning: {plan.cache.trouble}" if plan.cache.trouble else None


def plan_cache(
    root: Path,
    repo: Repository,
    targets: Sequence[Target],
    *,
    mode: Mode,
    source: SourceInfo | None,
    identities: Identities | None,
    no_cache: bool = False,
) -> CachePlan | None:
    """The cache plan for compiling ``targets`` of ``repo`` (read from ``root``); None when off."""
    if cache_disabled(no_cache, os.environ):
        return None
    from compiler.audit.revisions import rev_file_ids, worktree_file_ids
    from compiler.incremental.inputs import CHECK_ROOTS
    from compiler.incremental.key import CarryKeys, KeyContext, cache_keys, key_digests
    from compiler.incremental.parsed import ParsedDocuments, RenderedScalars
    from compiler.incremental.run import CachePlan
    from compiler.incremental.store import CACHE_DIR, ResultCache, max_bytes_from
    from compiler.incremental.verdicts import KeptVerdicts

    rev = repo.tree.rev
    if rev is not None and source is None:
        return None  # a revision without a commit to list: nothing to key on
    commit = source.commit if source is not None else ""
    context = KeyContext(
        mode=mode,
        rev=commit if rev is not None else None,
        opaque=repo.secrets_opaque,
        recipients=identities.recipients() if identities else [],
        policy_now=repo.policy_now,
    )

    cache = ResultCache(root / CACHE_DIR, max_bytes=max_bytes_from(os.environ))
    rendered = verdicts = None
    if cache.usable():  # an unsafe directory is found now, so the command can say so before it compiles
        # Below the target level: a target that misses reads its parsed files and rendered scalars
        parsed = ParsedDocuments(cache)
        repo.parse, repo.forget = parsed.load, parsed.forget
        rendered = RenderedScalars(cache)
        # environments' modules found valid before are not validated again: validators compiled on first use
        verdicts = KeptVerdicts(cache, parsed, repo)
        repo.lazy_schemas, repo.schema_checks = True, verdicts

    def files() -> FileIds:
        return rev_file_ids(root, commit, CHECK_ROOTS) if rev is not None else worktree_file_ids(root, CHECK_ROOTS)

    def keys(which: Sequence[Target], listed: FileIds) -> dict[str, str]:
        return cache_keys(repo.project, listed, which, context, read=repo.tree.read)

    def same(which: Sequence[Target]) -> dict[str, str]:
        return {t.name: now[t.name] for t in which if t.name in now}

    def listed_again(which: Sequence[Target]) -> dict[str, str]:
        # Every file read and hashed again. The same ids as before the build: the same inputs, so the
        # same keys (the context is this run's) without working them out again; else worked out anew.
        again = files()
        return same(which) if again == ids else keys(which, again)

    ids = files()
    digests = key_digests(repo.project, ids, context)  # the shared part worked out once for both kinds of key
    now = cache_keys(repo.project, ids, targets, context, read=repo.tree.read, digests=digests)
    carry = CarryKeys.of(repo.project, ids, context, digests=digests) if mode == "compile" and cache.usable() else None
    # A revision's files cannot change while it compiles; the working tree's are listed again.
    recheck = listed_again if rev is None else same
    return CachePlan(
        cache=cache, mode=mode, keys=now, recheck=recheck, rendered=rendered, verdicts=verdicts, carry=carry
    )
