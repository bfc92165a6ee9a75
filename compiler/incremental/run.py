"""Compile or validate targets through the result cache: hits are read, misses built and stored.

``build_cached`` is ``build.build_targets`` with a cache in front: a target
whose key (``compiler.incremental.key``) has a verified entry is not compiled;
its findings come from the entry and, for ``compile``, its bundle is the
entry's sealed modules inside a bundle with this run's ``metadata.source``.
The outcomes are the ones ``build_targets`` returns, in the same order.

A miss is stored only when its key is still the key after the build (the
files were not edited while it compiled) and it ended without an input error
(an input error is cheap to meet again, and its message is not a finding).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from compiler.compile.build import BuildRequest, TargetOutcome, build_targets, write_atomic
from compiler.errors import InputError
from compiler.incremental.entry import (
    EntryError,
    diagnostic_from_json,
    diagnostic_to_json,
    join_bundle,
    split_bundle,
)
from compiler.incremental.key import Mode
from compiler.incremental.store import ResultCache
from compiler.jsontypes import JSONObject
from compiler.project import Target


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePlan:
    """The cache, the mode, and each target's key now; ``recheck`` gives the keys again after the build."""

    cache: ResultCache
    mode: Mode
    keys: Mapping[str, str]
    recheck: Callable[[], Mapping[str, str]]


def build_cached(
    request: BuildRequest, targets: Sequence[Target], *, plan: CachePlan | None, jobs: int | None = None
) -> list[TargetOutcome]:
    """``build_targets(request, targets, jobs=jobs)``, reading and filling ``plan.cache`` (None: no cache)."""
    if plan is None:
        return build_targets(request, targets, jobs=jobs)
    hits: dict[str, TargetOutcome] = {}
    for target in targets:
        key = plan.keys.get(target.name)
        payload = plan.cache.get(key) if key is not None else None
        if payload is not None:
            with contextlib.suppress(EntryError):
                hits[target.name] = _outcome(request, target, payload, plan.mode)
    misses = [t for t in targets if t.name not in hits]
    built: dict[str, TargetOutcome] = {}
    if misses:
        keep = replace(request, keep_bytes=True) if plan.mode == "compile" else request
        outcomes = build_targets(keep, misses, jobs=jobs)
        after = plan.recheck()
        for outcome in outcomes:
            key = plan.keys.get(outcome.target)
            if key is not None and after.get(outcome.target) == key:
                payload = _payload(request, outcome, plan.mode)
                if payload is not None:
                    plan.cache.put(key, payload)
            built[outcome.target] = outcome if request.keep_bytes else replace(outcome, data=None)
    elif request.out_dir is not None:
        try:
            request.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{request.out_dir}: cannot create the output directory: {e.strerror}") from e
    plan.cache.evict()
    return [hits.get(t.name) or built[t.name] for t in targets]


def _source(request: BuildRequest) -> JSONObject | None:
    return request.source.to_json() if request.source else None


def _payload(request: BuildRequest, outcome: TargetOutcome, mode: Mode) -> JSONObject | None:
    if outcome.error is not None:
        return None
    payload: JSONObject = {
        "diagnostics": [diagnostic_to_json(d) for d in outcome.diagnostics],
        "modules": None,
        "encryption": None,
    }
    if mode == "compile" and outcome.data is not None:
        try:
            modules, encryption = split_bundle(
                outcome.data, project=request.repo.project.name, target=outcome.target, source=_source(request)
            )
        except (EntryError, UnicodeDecodeError):  # pragma: no cover - bundle_bytes writes what split_bundle reads
            return None
        payload["modules"] = modules
        payload["encryption"] = encryption
    return payload


def _outcome(request: BuildRequest, target: Target, payload: JSONObject, mode: Mode) -> TargetOutcome:
    raw = payload.get("diagnostics")
    if not isinstance(raw, list):
        raise EntryError("diagnostics")
    diagnostics = [diagnostic_from_json(d) for d in raw]
    modules = payload.get("modules")
    failed = any(d.severity == "error" for d in diagnostics)
    if mode == "validate" or failed:
        return TargetOutcome(target=target.name, diagnostics=diagnostics)
    if not isinstance(modules, str):
        raise EntryError("modules")
    data = join_bundle(
        modules,
        payload.get("encryption"),
        project=request.repo.project.name,
        target=target.name,
        source=_source(request),
    )
    if request.out_dir is not None:
        write_atomic(request.out_dir / f"{target.name}.bundle.json", data)
    return TargetOutcome(
        target=target.name, diagnostics=diagnostics, size=len(data), data=data if request.keep_bytes else None
    )
