"""Compile or validate targets through the result cache: hits are read, misses built and stored.

``build_cached`` is ``build.build_targets`` with a cache in front: a target
whose key (``compiler.incremental.key``) has a verified entry is not compiled;
its findings come from the entry and, for ``compile``, its bundle is the
entry's sealed modules (a blob) inside a bundle with this run's
``metadata.source``. The outcomes are the ones ``build_targets`` returns, in
the same order.

A bundle this run would write byte for byte as it is already in the output
directory is not written again: the record of the last run
(``record_bundles``) names, per target, the key and source it was made from
and the size, modification time (ns), inode and SHA-256 llmcc left it with;
when all of them are still the same, the old file (hard-linked aside by
``distdir.BundleDir``) is moved back in. A file edited or replaced since is
written anew, even when its size and modification time were put back.

A miss is stored only when its key is still the key after the build (the
files were not edited while it compiled) and it ended without an input error
(an input error is cheap to meet again, and its message is not a finding).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from compiler.bundle.canonical import canonical_json
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
from compiler.jsontypes import JSONObject, JSONValue
from compiler.project import Target

SUFFIX = ".bundle.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePlan:
    """The cache, the mode, and each target's key now; ``recheck`` gives the keys again after the build."""

    cache: ResultCache
    mode: Mode
    keys: Mapping[str, str]
    recheck: Callable[[], Mapping[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reuse:
    """The output directory a compile installs into, and where its old bundles were linked aside."""

    out: Path
    previous: Path
    kept: set[str] = field(default_factory=set)  # targets whose old bundle was moved back: already durable


def build_cached(
    request: BuildRequest,
    targets: Sequence[Target],
    *,
    plan: CachePlan | None,
    jobs: int | None = None,
    reuse: Reuse | None = None,
    complete: Callable[[BuildRequest], BuildRequest] | None = None,
) -> list[TargetOutcome]:
    """``build_targets(request, targets, jobs=jobs)``, reading and filling ``plan.cache`` (None: no cache).

    ``complete`` adds to ``request`` what only a build needs (the sealer, the key
    check: they read every key file and load the crypto stack); a run whose
    targets all hit never calls it.
    """
    if complete is None:
        complete = _same
    if plan is None:
        return build_targets(complete(request), targets, jobs=jobs)
    record = _record(plan, reuse, request) if reuse is not None else {}
    hits: dict[str, TargetOutcome] = {}
    for target in targets:
        key = plan.keys.get(target.name)
        payload = plan.cache.get(key) if key is not None else None
        if key is not None and payload is not None:
            with contextlib.suppress(EntryError):
                outcome = _outcome(request, target, payload, plan, record.get(target.name) == key, reuse)
                if outcome is not None:
                    hits[target.name] = outcome
    misses = [t for t in targets if t.name not in hits]
    built: dict[str, TargetOutcome] = {}
    if misses:
        keep = complete(replace(request, keep_bytes=True) if plan.mode == "compile" else request)
        outcomes = build_targets(keep, misses, jobs=jobs)
        after = plan.recheck()
        for outcome in outcomes:
            key = plan.keys.get(outcome.target)
            if key is not None and after.get(outcome.target) == key:
                payload = _payload(request, outcome, plan)
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


def _same(request: BuildRequest) -> BuildRequest:
    return request


def _source(request: BuildRequest) -> JSONObject | None:
    return request.source.to_json() if request.source else None


def _source_digest(request: BuildRequest) -> str:
    return hashlib.sha256(canonical_json(_source(request))).hexdigest()


def _record_key(out: Path) -> str:
    return hashlib.sha256(f"bundles\0{out.resolve()}".encode()).hexdigest()


def _record(plan: CachePlan, reuse: Reuse, request: BuildRequest) -> dict[str, str]:
    """``{target: key}`` of the old bundles that are still the files the last run left, for this source."""
    payload = plan.cache.get(_record_key(reuse.out))
    if payload is None or payload.get("source") != _source_digest(request):
        return {}
    bundles = payload.get("bundles")
    out: dict[str, str] = {}
    if not isinstance(bundles, dict):
        return out
    for target, entry in bundles.items():
        if not (isinstance(entry, list) and len(entry) == 5 and isinstance(entry[0], str)):
            continue
        try:
            st = (reuse.previous / f"{target}{SUFFIX}").lstat()
            # an edit in place that restores the size and modification time keeps the inode: read it
            if entry[1:4] == [st.st_size, st.st_mtime_ns, st.st_ino] and entry[4] == _file_digest(
                reuse.previous / f"{target}{SUFFIX}"
            ):
                out[target] = entry[0]
        except OSError:
            continue
    return out


def record_bundles(plan: CachePlan | None, request: BuildRequest, out: Path, targets: Iterable[str]) -> None:
    """Remember the installed bundles of ``targets`` (key, size, mtime, inode) for the next run's reuse."""
    if plan is None or plan.mode != "compile":
        return
    rkey = _record_key(out)
    source = _source_digest(request)
    old = plan.cache.get(rkey) or {}
    bundles: dict[str, JSONValue] = {}
    if old.get("source") == source and isinstance(old.get("bundles"), dict):
        bundles.update(old["bundles"])  # type: ignore[arg-type]
    for target in targets:
        key = plan.keys.get(target)
        try:
            st = (out / f"{target}{SUFFIX}").lstat()
        except OSError:
            continue
        if key is not None:
            stats: list[JSONValue] = [key, st.st_size, st.st_mtime_ns, st.st_ino]
            known = bundles.get(target)
            digest = known[4] if isinstance(known, list) and len(known) == 5 and known[:4] == stats else None
            try:  # a file kept from the last run keeps its digest; any other is read
                bundles[target] = [
                    *stats,
                    digest if isinstance(digest, str) else _file_digest(out / f"{target}{SUFFIX}"),
                ]
            except OSError:
                bundles.pop(target, None)
        else:
            bundles.pop(target, None)
    payload: JSONObject = {"source": source, "bundles": bundles}
    if payload != old:
        plan.cache.put(rkey, payload)


def _file_digest(path: Path) -> str:
    """The SHA-256 of a bundle file's bytes (hex). Raises OSError."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _payload(request: BuildRequest, outcome: TargetOutcome, plan: CachePlan) -> JSONObject | None:
    if outcome.error is not None:
        return None
    payload: JSONObject = {
        "diagnostics": [diagnostic_to_json(d) for d in outcome.diagnostics],
        "modules": None,
        "encryption": None,
    }
    if plan.mode == "compile" and outcome.data is not None:
        try:
            modules, encryption = split_bundle(
                outcome.data, project=request.repo.project.name, target=outcome.target, source=_source(request)
            )
        except (EntryError, UnicodeDecodeError):  # pragma: no cover - bundle_bytes writes what split_bundle reads
            return None
        payload["modules"] = plan.cache.put_blob(modules.encode())
        payload["encryption"] = encryption
    return payload


def _outcome(
    request: BuildRequest, target: Target, payload: JSONObject, plan: CachePlan, unchanged: bool, reuse: Reuse | None
) -> TargetOutcome | None:
    """The outcome the entry stands for; None when its blob is gone or damaged (then it is built)."""
    raw = payload.get("diagnostics")
    if not isinstance(raw, list):
        raise EntryError("diagnostics")
    diagnostics = [diagnostic_from_json(d) for d in raw]
    failed = any(d.severity == "error" for d in diagnostics)
    if plan.mode == "validate" or failed:
        return TargetOutcome(target=target.name, diagnostics=diagnostics)
    digest = payload.get("modules")
    if not isinstance(digest, str):
        raise EntryError("modules")
    name = f"{target.name}{SUFFIX}"
    if unchanged and reuse is not None and request.out_dir is not None and not request.keep_bytes:
        try:
            size = (reuse.previous / name).lstat().st_size
            os.replace(reuse.previous / name, request.out_dir / name)  # the same bytes, already durable
        except OSError:
            pass
        else:
            reuse.kept.add(target.name)
            return TargetOutcome(target=target.name, diagnostics=diagnostics, size=size)
    blob = plan.cache.get_blob(digest)
    if blob is None:
        return None
    data = join_bundle(
        blob.decode("utf-8"),
        payload.get("encryption"),
        project=request.repo.project.name,
        target=target.name,
        source=_source(request),
    )
    if request.out_dir is not None:
        write_atomic(request.out_dir / name, data)
    return TargetOutcome(
        target=target.name, diagnostics=diagnostics, size=len(data), data=data if request.keep_bytes else None
    )
