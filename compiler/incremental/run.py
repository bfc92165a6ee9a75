"""Compile or validate targets through the result cache: hits are read, misses built and stored.

``build_cached`` is ``build.build_targets`` with a cache in front: a target
whose key (``compiler.incremental.key``) has a verified entry is not compiled;
its findings come from the entry and, for ``compile``, its bundle is the
entry's sealed modules (a blob) inside a bundle with this run's
``metadata.source``. The outcomes are the ones ``build_targets`` returns, in
the same order.

A bundle this run would write byte for byte as it is already in the output
directory is left where it is (``bundles_in_place``, before the output
directory is prepared): the record of the last run (``record_bundles``) names,
per target, the key and source it was made from, the size, modification and
change times (ns), inode and device llmcc saw it with, its SHA-256, and a
time stamp of the output directory's file system taken before that stat.
When the key, the source and every stat field are still the same, the file
is the one recorded: any write since changes its change time, which no one
can set back (``os.utime`` sets it to now). Git's racy-timestamp rule covers
a write within the same clock tick as the stat: a file whose modification or
change time is not older than the stamp is read and its SHA-256 compared.
What a run records is what it checked or wrote, never what ``DIR`` holds when
it records: another process (a second compile, an editor) may install a file
between any two steps. A bundle checked in place is left in ``DIR`` untouched
(``distdir.BundleDir.staged``) only when its stat, change time included, is
still the checked one just before the run clears its old bundles
(``Reuse.unchanged``): then nothing moves its change time and the next run
trusts it by its stat without reading it; a bundle replaced or written before
that is removed and written from the cache, one written after it keeps a
moved change time and is not recorded, so the next run reads it. A bundle
written this run is recorded with the SHA-256 of the bytes written, so a file
someone else put there since fails the next run's comparison.

A miss is stored only when its key is still the key after the build (the
files were not edited while it compiled) and it ended without an input error
(an input error is cheap to meet again, and its message is not a finding).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.bundle.canonical import canonical_json
from compiler.compile.build import PARALLEL_MIN_TARGETS, BuildRequest, TargetOutcome, build_targets, write_staged
from compiler.diagnostics import Diagnostic
from compiler.errors import InputError
from compiler.incremental.entry import (
    EntryError,
    diagnostic_from_json,
    diagnostic_to_json,
    join_bundle,
    split_bundle_at,
)
from compiler.incremental.filestat import fs_now, stats, trusted
from compiler.incremental.key import CarryKeys, Mode
from compiler.incremental.parsed import RenderedScalars
from compiler.incremental.store import ResultCache
from compiler.incremental.verdicts import KeptVerdicts
from compiler.jsontypes import JSONObject, JSONValue
from compiler.project import Target

if TYPE_CHECKING:
    from compiler.bundle.canonical import Members
    from compiler.compile.types import CompileResult

SUFFIX = ".bundle.json"
_FACT_LEN = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePlan:
    """The cache, the mode, and each target's key now; ``recheck(targets)`` gives those targets' keys
    again after the build (the files listed again: the built ones are stored only if unchanged)."""

    cache: ResultCache
    mode: Mode
    keys: Mapping[str, str]
    recheck: Callable[[Sequence[Target]], Mapping[str, str]]
    rendered: RenderedScalars | None = None  # rendered template scalars kept across runs
    verdicts: KeptVerdicts | None = None  # environments' modules found valid by earlier runs
    carry: CarryKeys | None = None  # keys of previous results to re-render from (compile only)
    # Targets of this run (in the process that builds them) whose previous result differed only in
    # variables but could not be re-rendered from: their build keeps a whole record (``_keep_blob``),
    # the others a stub. Per run, not per process: a target whose compile fails keeps its name here.
    want_record: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reuse:
    """The bundles of the output directory this run leaves in place, as ``bundles_in_place`` found them."""

    out: Path
    stamp: int  # the file system's time (ns) before any bundle was looked at; 0: none could be taken
    in_place: dict[str, JSONObject] = field(default_factory=dict)  # target -> its verified entry
    facts: dict[str, list[JSONValue]] = field(default_factory=dict)  # target -> its record as verified now
    left: set[str] = field(default_factory=set)  # targets whose bundle was left in DIR (``BundleDir.left``)
    written: dict[str, str] = field(default_factory=dict)  # target -> SHA-256 of the bundle this run wrote

    def unchanged(self, target: str, st: os.stat_result) -> bool:
        """Whether ``target``'s bundle, now of stat ``st``, is the one ``bundles_in_place`` checked: its
        stat unchanged, change time included (any write, rename or ``os.utime`` sets that to now)."""
        fact = self.facts.get(target)
        return target in self.in_place and fact is not None and stats(st) == fact[1:6]


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
    request.repo.check_schema_files()  # a target taken from the cache reads no schema
    if plan is None:
        return build_targets(complete(request), targets, jobs=jobs)
    hits: dict[str, TargetOutcome] = {}
    written = reuse.written if reuse is not None else {}  # what record_bundles may say this run wrote
    for target in targets:
        if reuse is not None and target.name in reuse.left:  # its bundle left in DIR as it is
            size = reuse.facts[target.name][1]
            diagnostics = _diagnostics(reuse.in_place[target.name])  # read once already: well-formed
            hits[target.name] = TargetOutcome(
                target=target.name, diagnostics=diagnostics, size=size if isinstance(size, int) else 0
            )
            continue
        key = plan.keys.get(target.name)
        payload = plan.cache.get(key) if key is not None else None
        if key is not None and payload is not None:
            with contextlib.suppress(EntryError):
                outcome = _outcome(request, target, payload, plan, written)
                if outcome is not None:
                    hits[target.name] = outcome
    misses = [t for t in targets if t.name not in hits]
    built: dict[str, TargetOutcome] = {}
    if _may_fork(len(misses), jobs):
        plan.cache.forked = True  # what the workers write is not counted here: the eviction scans
    with _collector_off(0 < len(misses) < PARALLEL_MIN_TARGETS):
        _build_misses(request, misses, plan, jobs, complete, written, built)
    if not misses and request.out_dir is not None:
        _mkdir(request.out_dir)
    return [hits.get(t.name) or built[t.name] for t in targets]


@contextlib.contextmanager
def _collector_off(few: bool) -> Iterator[None]:
    """No cyclic garbage collection while ``few`` targets are built (fewer than the build forks for).

    What such a build allocates is mostly what lives to the end of the run: the kept documents,
    templates and rendered scalars decoded from the cache. The collections it triggers find nothing
    and each walks more of them: ~30 ms of the ~0.33 s one-value compile on xlarge, ~20 ms of
    ``hook validate`` (the generations' collections, counted with ``gc.callbacks``). The garbage
    cycles of a few targets' compiles wait until it is back on. A larger build (a base variable
    changed, ``--jobs 1`` over all targets) keeps it on: its cycles would add up.

    Back on, what the build made goes to the oldest generation unwalked (``gc.freeze`` then
    ``gc.unfreeze``): the young collection the next allocation starts walked all of it (~6.5 ms);
    the full collections still see it. Not when objects are frozen already (kept off forked
    workers' pages): ``unfreeze`` would let go of them too.
    """
    if not few or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _build_misses(
    request: BuildRequest,
    misses: list[Target],
    plan: CachePlan,
    jobs: int | None,
    complete: Callable[[BuildRequest], BuildRequest],
    written: dict[str, str],
    built: dict[str, TargetOutcome],
) -> None:
    """Build ``misses`` (compile, or re-render from a previous result) and store what may be stored."""
    if not misses:
        return
    keep = request
    if plan.mode == "compile":
        plan.cache.usable()  # decided once, before workers fork
        keep = replace(request, keep=partial(_keep_blob, plan, _source(request)))
        if plan.carry is not None:
            keep = replace(keep, attempt=partial(_carry_one, plan, _source(request)))
            keep = replace(keep, warm_env=partial(_env_changed, plan))
    # a cache write that fails in a -j worker (a blob, a parsed file) comes back as its note
    keep = replace(_with_rendered(complete(keep), plan.rendered, plan.verdicts), worker_note=lambda: plan.cache.trouble)
    outcomes = build_targets(keep, misses, jobs=jobs)
    for outcome in outcomes:  # a cache write that failed in a -j worker: warned once, as in a serial run
        if outcome.note is not None and plan.cache.trouble is None:
            plan.cache.trouble = outcome.note
    if plan.rendered is not None and keep.caches is not None:
        # what the workers rendered, from the targets after which one stored some (unknown: looked for)
        told = {o.target: k.rendered for o in outcomes if (k := _kept(o.kept)) is not None}
        plan.rendered.save(keep.caches.render, [t.name for t in misses if told.get(t.name, True)])
    staged = {p for o in outcomes if (k := _kept(o.kept)) is not None for p in (k.entry, k.record) if p}
    try:
        after = plan.recheck(misses)
        for outcome in outcomes:
            kept = _kept(outcome.kept)
            if kept is not None:
                plan.cache.written += kept.written  # read as "anything written" (-j1 counts twice: harmless)
            key = plan.keys.get(outcome.target)
            if key is not None and after.get(outcome.target) == key:
                staged -= _store(plan, key, outcome, kept)
            if kept is not None and request.out_dir is not None:
                written[outcome.target] = kept.sha256
            built[outcome.target] = replace(outcome, kept=None)
    finally:
        for pending in staged:  # not committed: its key no longer holds (or the run is ending)
            plan.cache.drop(pending)


def _store(plan: CachePlan, key: str, outcome: TargetOutcome, kept: _Kept | None) -> set[str]:
    """Put ``outcome``'s entry (and its carry record) in place under ``key``, which still holds after
    the build: the entries the worker staged are committed (a rename each; the pending names
    returned), any other is written here."""
    done: set[str] = set()
    if kept is not None and kept.entry is not None and kept.key == key:
        plan.cache.commit(key, kept.entry)
        done.add(kept.entry)
    else:
        payload = _payload(outcome, plan, kept)
        if payload is not None:
            plan.cache.put(key, payload)
    if kept is not None and kept.record is not None and kept.carry_key is not None:
        plan.cache.commit(kept.carry_key, kept.record)
        done.add(kept.record)
    return done


def _may_fork(count: int, jobs: int | None) -> bool:
    """Whether ``build_targets`` may build ``count`` targets in forked workers (its rule, threads aside:
    a thread only keeps it serial)."""
    if jobs is not None:
        return min(jobs, count) > 1
    return count >= PARALLEL_MIN_TARGETS and (os.cpu_count() or 1) > 1


def _same(request: BuildRequest) -> BuildRequest:
    return request


def _mkdir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create the output directory: {e.strerror}") from e


def _carry_one(
    plan: CachePlan, source: JSONObject | None, request: BuildRequest, target: Target
) -> TargetOutcome | None:
    """``target`` re-rendered from its previous result (``compiler.incremental.carry``); None: compile it.

    Runs where the target would be compiled (a build worker); the blob is stored there and the
    entry and the record staged, for the parent to commit after its recheck, as for a compiled target.
    """
    from compiler.compile.pipeline import layout_check, load_stack
    from compiler.incremental.carry import Checks, carry, layer_digests
    from compiler.render.jinja import Renderer

    assert plan.carry is not None
    assert request.caches is not None, "build_targets made them"
    try:
        stack = load_stack(request.repo, target)
    except InputError:
        return None  # compiled, which reports it
    digests = layer_digests(stack)
    ckey = plan.carry.key(target, digests) if digests is not None else None
    record = plan.cache.get(ckey) if ckey is not None else None
    if ckey is None or record is None:
        return None
    # Found: only variables changed since. A stub (what a build leaves, cheaply) or a record that
    # does not fit: compile, and keep a whole record for the next such change (``_keep_blob``).
    plan.want_record.add(target.name)
    if not isinstance(record.get("modules"), str):
        return None
    blob = plan.cache.get_blob(str(record["modules"]))
    if blob is None:
        return None
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
    caches = request.caches
    checks = Checks(layout=layout_check(request.repo, caches), jinja=caches.jinja, guard=caches.guard)
    done = carry(request.repo, stack, Renderer(stack.variables, caches.render), record, text, checks)
    if done is None:
        return None
    data = join_bundle(done.text, None, project=request.repo.project.name, target=target.name, source=source)
    if request.out_dir is not None:
        write_staged(request.out_dir / f"{target.name}{SUFFIX}", data)
    if request.caches.after_target is not None:
        request.caches.after_target(target.name)
    plan.want_record.discard(target.name)
    before = plan.cache.written
    digest = plan.cache.put_blob(done.text.encode("utf-8"))
    sha = hashlib.sha256(data).hexdigest()
    kept_record = canonical_json({**done.record, "modules": digest})  # encoded here, in parallel
    kept = _staged(plan, target, [], _Kept(digest, None, sha, plan.cache.written - before), kept_record, ckey)
    return TargetOutcome(
        target=target.name, diagnostics=[], size=len(data), data=data if request.keep_bytes else None, kept=kept
    )


def _env_changed(plan: CachePlan, request: BuildRequest, env: str) -> bool:
    """Whether environment ``env``'s own target is not to be carried: no whole record under its carry
    key (``_carry_one``). Its tenants' targets stack its layers, so most likely carry alike."""
    from compiler.compile.pipeline import load_stack
    from compiler.incremental.carry import layer_digests

    assert plan.carry is not None
    try:
        stack = load_stack(request.repo, Target(environment=env, tenant=None))
    except InputError:
        return True  # merged before the fork as before; each target meets the error again
    digests = layer_digests(stack)
    ckey = plan.carry.key(Target(environment=env, tenant=None), digests) if digests is not None else None
    record = plan.cache.get(ckey) if ckey is not None else None
    return record is None or not isinstance(record.get("modules"), str)


def _with_rendered(
    request: BuildRequest, rendered: RenderedScalars | None, verdicts: KeptVerdicts | None = None
) -> BuildRequest:
    """``request`` whose compile starts from the rendered scalars and validity verdicts kept by earlier runs."""
    if rendered is None or request.caches is not None:
        return request
    from compiler.compile.pipeline import CompileCaches

    render = rendered.load()
    after = partial(rendered.worker_done, render)
    return replace(request, caches=CompileCaches(render=render, after_target=after, verdicts=verdicts))


def _source(request: BuildRequest) -> JSONObject | None:
    return request.source.to_json() if request.source else None


def _source_digest(source: JSONObject | None) -> str:
    return hashlib.sha256(canonical_json(source)).hexdigest()


def _record_key(out: Path) -> str:
    return hashlib.sha256(f"bundles\0{out.resolve()}".encode()).hexdigest()


def _fact(entry: JSONValue) -> list[JSONValue] | None:
    """A record's ``[key, size, mtime_ns, ctime_ns, inode, device, sha256, stamp_ns]``, or None."""
    if not (isinstance(entry, list) and len(entry) == _FACT_LEN):
        return None
    if not (isinstance(entry[0], str) and isinstance(entry[6], str)):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (*entry[1:6], entry[7])):
        return None
    return entry


def bundles_in_place(plan: CachePlan, source: JSONObject | None, out: Path) -> Reuse:
    """The targets whose bundle in ``out`` is byte for byte the one this run makes (see the module doc).

    Each such target's key has a verified entry without errors, and the
    bundle file is the one the last run recorded for that key and ``source``:
    the same stat (a file whose times are not older than the record's stamp
    is read and its SHA-256 compared). Call it before ``out`` is prepared.
    """
    reuse = Reuse(out=out, stamp=fs_now(out))
    payload = plan.cache.get(_record_key(out)) if plan.mode == "compile" else None
    if payload is None or payload.get("source") != _source_digest(source):
        return reuse
    bundles = payload.get("bundles")
    if not isinstance(bundles, dict):
        return reuse
    for target, entry in bundles.items():
        fact = _fact(entry)
        key = plan.keys.get(target)
        if fact is None or key is None or fact[0] != key:
            continue
        path = out / f"{target}{SUFFIX}"
        try:
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode) or stats(st) != fact[1:6]:
                continue
            when = fact[7]
            if not trusted(fact[1:], st):  # racy: perhaps changed in the same tick as recorded
                if _file_digest(path) != fact[6]:
                    continue
                when = reuse.stamp  # read after this stat, taken after the stamp
        except OSError:
            continue
        entry_payload = plan.cache.get(key)
        if entry_payload is None:
            continue
        try:
            if any(d.severity == "error" for d in _diagnostics(entry_payload)):
                continue  # a failed target keeps no bundle
        except EntryError:
            continue
        reuse.in_place[target] = entry_payload
        reuse.facts[target] = [*fact[:7], when]
    return reuse


def record_bundles(
    plan: CachePlan | None, source: JSONObject | None, reuse: Reuse | None, targets: Iterable[str]
) -> None:
    """Remember the installed bundles of ``targets`` (key, stat, SHA-256, stamp) for the next run."""
    if plan is None or reuse is None or plan.mode != "compile":
        return
    rkey = _record_key(reuse.out)
    digest = _source_digest(source)
    old = plan.cache.get(rkey) or {}
    bundles: dict[str, JSONValue] = {}
    if old.get("source") == digest and isinstance(old.get("bundles"), dict):
        bundles.update(old["bundles"])  # type: ignore[arg-type]
    for target in targets:
        key = plan.keys.get(target)
        bundles.pop(target, None)
        path = reuse.out / f"{target}{SUFFIX}"
        try:
            st = path.lstat()
            fact = reuse.facts.get(target)
            if target in reuse.left and fact is not None and fact[1:6] == stats(st):
                bundles[target] = fact  # left in place, as verified at the start
            elif key is not None and target in reuse.written:
                # written this run, after the stamp: racy until a later run has read it and found the
                # bytes this run wrote (not DIR's file now: another run may have installed its own since)
                bundles[target] = [key, *stats(st), reuse.written[target], reuse.stamp]
        except OSError:
            continue
    payload: JSONObject = {"source": digest, "bundles": bundles}
    if payload != old:
        plan.cache.put(rkey, payload)


def _file_digest(path: Path) -> str:
    """The SHA-256 of a bundle file's bytes (hex). Raises OSError."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Kept:
    """What ``_keep_blob`` did with one built bundle, in the process that built it."""

    modules: str  # SHA-256 of the sealed modules' canonical text, stored as a blob
    encryption: JSONValue
    sha256: str  # of the whole bundle, as written into the staging directory
    written: int  # blobs the call wrote (for eviction); a failed write travels as the worker's note
    # Entries staged where the bundle was built (``ResultCache.stage``), for the parent to commit
    # once the key still holds: the target's entry under ``key``, and what a later run re-renders
    # from (``compiler.incremental.carry``) under ``carry_key``.
    key: str | None = None
    entry: str | None = None
    record: str | None = None
    carry_key: str | None = None
    rendered: bool = True  # whether the worker stored rendered scalars after the target (``RenderedScalars``)


def _staged(
    plan: CachePlan,
    target: Target,
    diagnostics: list[Diagnostic],
    kept: _Kept,
    record: bytes | None,
    carry_key: str | None,
) -> _Kept:
    """``kept`` with the target's entry and its record (payload bytes, under ``carry_key``) staged."""
    if plan.rendered is not None:
        kept = replace(kept, rendered=target.name in plan.rendered.stored)
    key = plan.keys.get(target.name)
    if key is None:  # never cached: nor is its record (a record is written only with its entry)
        return kept
    payload: JSONObject = {
        "diagnostics": [diagnostic_to_json(d) for d in diagnostics],
        "modules": kept.modules,
        "encryption": kept.encryption,
    }
    entry = plan.cache.stage(key, canonical_json(payload))
    staged = plan.cache.stage(carry_key, record) if record is not None and carry_key is not None else None
    return replace(kept, key=key, entry=entry, record=staged, carry_key=carry_key)


def _keep_blob(
    plan: CachePlan,
    source: JSONObject | None,
    request: BuildRequest,
    result: CompileResult,
    data: bytes,
    members: Members,
) -> _Kept | None:
    """Store the sealed modules of ``data`` as a blob, where the bundle was built (a build worker):
    only digests (and the carry record) travel back to the parent, not 54 MB of bundles (xlarge)
    to hash and write there."""
    cache = plan.cache
    try:
        start, encryption = split_bundle_at(
            data, project=request.repo.project.name, target=result.target.name, source=source
        )
    except (EntryError, UnicodeDecodeError):  # pragma: no cover - bundle_bytes writes what split_bundle reads
        return None
    before = cache.written
    digest = cache.put_blob(data[start:-1])
    record: bytes | None = None
    ckey: str | None = None
    if plan.carry is not None and encryption is None and not result.diagnostics:
        from compiler.incremental.carry import STUB, layer_digests, make_record

        digests = layer_digests(result.stack)
        ckey = plan.carry.key(result.target, digests) if digests is not None else None
        if ckey is not None and result.target.name not in plan.want_record:
            record = canonical_json(STUB)  # locating every scalar costs ~5 ms a target: only once variables change
        elif ckey is not None:
            plan.want_record.discard(result.target.name)
            text = data[start:-1].decode("utf-8")
            base = request.caches.env_bases.get(result.target.environment) if request.caches else None
            env = (base.stack, base.reach) if base is not None else None
            made = make_record(request.repo, result, text, request.json_cache, members, env)
            record = None if made is None else canonical_json({**made, "modules": digest})
    sha = hashlib.sha256(data).hexdigest()
    kept = _Kept(digest, encryption, sha, cache.written - before)
    return _staged(plan, result.target, result.diagnostics, kept, record, ckey)


def _kept(value: object) -> _Kept | None:
    """``_keep_blob``'s result as it came back from the worker (None: no bundle, or none kept)."""
    return value if isinstance(value, _Kept) else None


def _payload(outcome: TargetOutcome, plan: CachePlan, kept: _Kept | None) -> JSONObject | None:
    if outcome.error is not None:
        return None
    payload: JSONObject = {
        "diagnostics": [diagnostic_to_json(d) for d in outcome.diagnostics],
        "modules": None,
        "encryption": None,
    }
    if plan.mode == "compile" and kept is not None:
        payload["modules"] = kept.modules
        payload["encryption"] = kept.encryption
    return payload


def _diagnostics(payload: JSONObject) -> list[Diagnostic]:
    raw = payload.get("diagnostics")
    if not isinstance(raw, list):
        raise EntryError("diagnostics")
    return [diagnostic_from_json(d) for d in raw]


def _outcome(
    request: BuildRequest, target: Target, payload: JSONObject, plan: CachePlan, written: dict[str, str]
) -> TargetOutcome | None:
    """The outcome the entry stands for; None when its blob is gone or damaged (then it is built).

    A bundle written into ``request.out_dir`` has its SHA-256 put in ``written`` under the target's name.
    """
    diagnostics = _diagnostics(payload)
    failed = any(d.severity == "error" for d in diagnostics)
    if plan.mode == "validate" or failed:
        return TargetOutcome(target=target.name, diagnostics=diagnostics)
    digest = payload.get("modules")
    if not isinstance(digest, str):
        raise EntryError("modules")
    name = f"{target.name}{SUFFIX}"
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
    if request.out_dir is not None:  # the private staging directory: synced with the built ones before install
        write_staged(request.out_dir / name, data)
        written[target.name] = hashlib.sha256(data).hexdigest()
    return TargetOutcome(
        target=target.name, diagnostics=diagnostics, size=len(data), data=data if request.keep_bytes else None
    )
