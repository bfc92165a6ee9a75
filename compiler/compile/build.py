"""Compile many targets: in parallel worker processes when there are many.

Targets are independent. The parent parses everything they share (manifest,
schemas, templates, base and environment layers) once, then forks workers that
inherit it; each worker compiles a share of the targets and writes their
bundles itself, so only diagnostics travel back. Output is identical to a
serial run: each bundle depends only on its own target.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from compiler.compile.orphans import die_with_parent
from compiler.diagnostics import Diagnostic, sort_diagnostics
from compiler.errors import InputError, InternalError, LlmccError, TerminatedError, is_panic
from compiler.jsontypes import JSONObject, JSONValue
from compiler.lifetime import keep

if TYPE_CHECKING:
    import multiprocessing.context
    import multiprocessing.pool

    from compiler.bundle.canonical import EncodingCache, Members
    from compiler.compile.pipeline import CompileCaches
    from compiler.compile.preparse import Preparse
    from compiler.compile.repository import Repository
    from compiler.compile.types import CompileResult
    from compiler.jsonpath import JsonPath
    from compiler.load.yaml import Value
    from compiler.project import Target
    from compiler.sources.base import SourceInfo

# The compile engine (pipeline, repository, render, schema validation) is imported by the
# functions that compile: a run whose targets all come from the result cache does without
# it (compiler.incremental.run, issue 14 §2).

PARALLEL_MIN_TARGETS = 8

# Findings about who can open a compiled target's secrets (its data key file, its SOPS files).
KeyCheck = Callable[["CompileResult"], list[Diagnostic]]

# Seals a target's secret fields: (target, modules, secret paths) -> (modules, encryption block).
Sealer = Callable[
    ["Target", dict[str, JSONValue], dict[str, list["JsonPath"]]], tuple[dict[str, JSONValue], JSONObject | None]
]


def _caches(request: BuildRequest) -> CompileCaches:
    assert request.caches is not None, "build_targets makes them"
    return request.caches


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetOutcome:
    """What one target's compile produced; ``data`` only when asked to keep the bytes."""

    target: str
    diagnostics: list[Diagnostic]
    size: int = 0
    data: bytes | None = None
    error: tuple[str, int] | None = None  # (message, exit code) of an LlmccError
    note: str | None = None  # a -j worker's warning for the parent to give (``BuildRequest.worker_note``)
    kept: object = None  # what ``BuildRequest.keep`` returned for the bundle bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildRequest:
    repo: Repository
    source: SourceInfo | None
    validate: bool = True
    out_dir: Path | None = None  # a private staging directory: bundles are written there unsynced
    keep_bytes: bool = False
    seal: Sealer | None = None
    check_keys: KeyCheck | None = None
    progress: Callable[[str], None] | None = field(default=None)
    # Called in the calling process with each target whose bundle is now in ``out_dir``, as its
    # outcome arrives (``compile`` starts its fsync then: ``distdir.BundleDir.sync_soon``).
    written: Callable[[str], None] | None = None
    json_cache: EncodingCache = field(default_factory=dict)
    caches: CompileCaches | None = None  # made by build_targets when None; filled before workers fork
    # Called in a -j worker after each task: a warning of that process for the parent (a worker's own
    # state, such as a failed cache write, is lost with it otherwise). None: nothing to say.
    worker_note: Callable[[], str | None] | None = None
    # Called in the process that built a bundle with (request, compile result, bundle bytes, the member
    # texts of the maps its encoding assembled); its result travels back in ``TargetOutcome.kept``
    # instead of the bytes (the result cache stores its blobs in the workers).
    keep: Callable[[BuildRequest, CompileResult, bytes, Members], object] | None = None
    # Tried first for each target, in the process that would compile it: an outcome made without
    # compiling (the result cache re-renders from a previous result), or None to compile.
    attempt: Callable[[BuildRequest, Target], TargetOutcome | None] | None = None
    # Whether the parent merges environment ENV's modules before the workers fork (None: every one
    # that several targets start from). False when its targets are likely made by ``attempt``, which
    # reads none: a target compiled after all merges it in its own process (``env_base``, lazily).
    warm_env: Callable[[BuildRequest, str], bool] | None = None


def build_targets(request: BuildRequest, targets: Sequence[Target], *, jobs: int | None = None) -> list[TargetOutcome]:
    """Compile ``targets``; outcomes come back in the order of ``targets``.

    Raises:
        InputError: a file under ``schemas/`` that no target reads is not a valid schema
            (``Repository.check_schema_files``).
    """
    request.repo.check_schema_files()
    if request.caches is None:
        from compiler.compile.pipeline import CompileCaches

        request = replace(request, caches=CompileCaches())
    if request.out_dir is not None:
        try:
            request.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{request.out_dir}: cannot create the output directory: {e.strerror}") from e
    workers = _workers(len(targets), jobs)
    writes = request.out_dir is not None or request.keep_bytes or request.keep is not None
    parse = request.repo.parse
    with _collector_paused():
        preparse = _preparse(request.repo, targets, workers)
        try:
            if writes or workers > 1:
                _warm(request, targets, preparse)
            if writes:
                _warm_json(request, targets)
            if workers > 1:
                _compile_validators(request)
            if preparse is not None and preparse.rest():  # the targets' layer files it parsed meanwhile
                request.repo.parse = preparse.loader(parse)  # for the workers (put back after the build)
        finally:
            if preparse is not None:
                preparse.stop()
        if workers > 1:
            # The parsed inputs are shared with the workers: keep the collector off their pages. Frozen
            # before the collector is back on, so no collection first walks the ~10^5 young objects
            # the warm-up made (~8 ms on the large workload, issue 14 §3).
            gc.freeze()
    keep(request)  # its caches: left to the OS by a process that ends with os._exit (compiler.lifetime)
    if workers <= 1:
        outcomes = []
        for i, target in enumerate(targets):
            if request.progress:
                request.progress(f"[{i + 1}/{len(targets)}] {target}")
            outcomes.append(_arrived(request, _build_one(request, target)))
        _done(request)
        return outcomes
    global _REQUEST
    _REQUEST = request  # inherited by the forked workers
    try:
        import multiprocessing  # a serial build (validate of a few targets) does without it

        ctx = multiprocessing.get_context("fork")
        order = {t.name: i for i, t in enumerate(targets)}
        results: list[TargetOutcome | None] = [None] * len(targets)
        # Workers ignore SIGINT: Ctrl-C reaches the whole process group, and only the parent
        # reacts (leaving the pool terminates the workers), so no worker prints a traceback.
        # SIGINT is blocked while the workers are forked, so none can take it before
        # `_start_worker` runs; one that reaches the parent meanwhile waits, then raises.
        # SIGTERM the same (to the parent or the group, as a service manager sends it): a worker
        # killed while it holds the pool's task-queue lock would hang `pool.terminate`, so the
        # workers ignore it, the parent raises TerminatedError (exit 143) and SIGKILLs them.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
        try:
            pool = _pool(ctx, workers)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        with pool, _terminate_raises():
            n = 0
            for outcomes in pool.imap_unordered(_worker, _tenant_groups(targets)):
                for outcome in outcomes:
                    n += 1
                    results[order[outcome.target]] = _arrived(request, outcome)
                    if request.progress:
                        request.progress(f"[{n}/{len(targets)}] {outcome.target}")
        _done(request)
        return [r for r in results if r is not None]
    finally:
        _REQUEST = None
        request.repo.parse = parse


def _arrived(request: BuildRequest, outcome: TargetOutcome) -> TargetOutcome:
    if request.written is not None and request.out_dir is not None and outcome.size and outcome.error is None:
        request.written(outcome.target)
    return outcome


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the shared inputs are parsed.

    Parsing allocates hundreds of thousands of containers that all live to the
    end, so the collections it triggers find nothing and each one walks more of
    them: 10-13 % of the parent's warm-up on xlarge (issue 14 §3). Cycles made
    meanwhile are collected once the collector is back on, except in a parallel
    build, which freezes them with the inputs before forking (a few hundred
    objects, held to the end).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _tenant_groups(targets: Sequence[Target]) -> list[tuple[Target, ...]]:
    """The targets as the workers' tasks: a tenant's targets together, each other target alone.

    A tenant's targets in several environments read the same tenant layer files
    (``environments/tenants/<t>.yaml``): in one task they are parsed once. Tasks
    of a target or two keep both workers busy to the end (a worker takes the next
    task when it is done), where chunks of many targets left one idle meanwhile.
    """
    groups: dict[str | Target, list[Target]] = {}
    for target in targets:
        groups.setdefault(target if target.tenant is None else target.tenant, []).append(target)
    return [tuple(group) for group in groups.values()]


_WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_parent_pid = 0  # the pid of the process that made the pool, as its workers saw it when forked


def _pool(ctx: multiprocessing.context.ForkContext, workers: int) -> multiprocessing.pool.Pool:
    """A fork pool whose workers end quietly when their parent is gone (killed, or terminated).

    multiprocessing's worker loop raises ``BrokenPipeError`` when it hands a
    result to a parent that is gone, and its process prints that traceback: a
    worker here ends without a word instead. On Linux a worker is also killed
    the moment its parent dies (``PR_SET_PDEATHSIG``), so none goes on compiling.
    """
    import multiprocessing.pool

    from compiler.compile.orphans import prepare

    prepare()  # each worker calls prctl without importing ctypes
    global _parent_pid
    _parent_pid = os.getpid()

    class QuietWorker(ctx.Process):  # type: ignore[name-defined,misc]
        def terminate(self) -> None:  # what Pool.terminate calls; the workers ignore SIGTERM
            self.kill()

        def run(self) -> None:
            try:
                super().run()
            except BaseException:
                if os.getppid() != _parent_pid:  # the parent is gone: nobody to tell, nothing to say
                    os._exit(1)
                raise

    class QuietPool(multiprocessing.pool.Pool):
        @staticmethod
        def Process(ctx: Any, *args: Any, **kwds: Any) -> Any:  # noqa: ANN401 - Pool's own hook
            return QuietWorker(*args, **kwds)

        def _get_sentinels(self) -> list[Any]:
            # What the pool's worker-handler thread waits on besides the workers' own sentinels (their
            # exit). CPython's list also holds the results pipe, which stays readable from a worker's
            # write until the result thread has read it: the handler spun meanwhile, ~3,000 turns and
            # ~0.1 s of the parent's CPU for 203 targets, on a core the workers need (bench/NOTES.md).
            # Without it the thread wakes for what it acts on: a worker gone, close/terminate, and the
            # last task done (the change notifier).
            return [self._change_notifier._reader]  # type: ignore[attr-defined]

    return QuietPool(workers, initializer=_start_worker, context=ctx)


def _start_worker() -> None:
    """A worker's set-up: SIGINT and SIGTERM ignored (the parent reacts), death with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(_parent_pid)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)  # a pending SIGINT or SIGTERM is now discarded


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM raises TerminatedError in the parent while the pool runs (leaving it terminates the workers)."""
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover - only the main thread may
        yield
        return

    def terminated(_sig: int, _frame: object) -> None:
        raise TerminatedError

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _done(request: BuildRequest) -> None:
    if request.progress is not None:
        request.progress("")


def _workers(count: int, jobs: int | None) -> int:
    if jobs is not None:
        return max(1, min(jobs, count))
    if count < PARALLEL_MIN_TARGETS or threading.active_count() > 1:
        # fork() in a process with threads can deadlock in the child; stay serial.
        return 1
    return max(1, min(os.cpu_count() or 1, count))


def _preparse(repo: Repository, targets: Sequence[Target], workers: int) -> Preparse | None:
    """A helper parsing the modules' templates and the shared environments' layer files while
    ``_warm`` compiles the schemas: for a parallel build of the working tree without the result
    cache's parsed files, in a process without threads."""
    from compiler.compile.types import parse_only
    from compiler.sources.worktree import WorkTree

    if workers <= 1 or repo.parse is not parse_only or type(repo.tree) is not WorkTree or threading.active_count() > 1:
        return None
    from compiler.compile.preparse import Preparse
    from compiler.compile.repository import TEMPLATES
    from compiler.load.layers import resolve_layers
    from compiler.project import Target

    files = [(f"{TEMPLATES}/{module}.yaml", "template") for module in repo.modules]
    for env in _shared_envs(targets):
        files += [(r.path, r.name) for r in resolve_layers(repo.project, Target(env)) if not r.secrets]

    def later() -> Iterator[tuple[str, str]]:  # in the helper: the targets' own layer files, in build order
        for target in targets:
            yield from ((r.path, r.name) for r in resolve_layers(repo.project, target) if not r.secrets)

    return Preparse(repo.tree, list(dict.fromkeys(files)), later)


def _warm(request: BuildRequest, targets: Sequence[Target], preparse: Preparse | None = None) -> None:
    """Parse what every worker needs before forking, so it is parsed once.

    The schemas come first: ``preparse`` parses the templates and the shared layer files meanwhile.
    An input error here is not raised: it belongs to the targets that read the
    file, and each of them meets it again in ``_build_one`` and reports it. So
    one broken environment does not stop the others, and every broken file is
    reported in the same run, as in a serial build.
    """
    from compiler.compile.pipeline import env_base, layout_check, policy_check

    repo, caches = request.repo, _caches(request)
    steps: list[Callable[[], object]] = [partial(repo.schema, module) for module in repo.modules]
    if preparse is not None:  # the validators too (lazy otherwise), while the helper parses
        steps += [partial(_compile_validators, request), _prepare_fork]
    shared: list[Callable[[], object]] = [partial(repo.templates, module) for module in repo.modules]
    envs = [e for e in _shared_envs(targets) if request.warm_env is None or request.warm_env(request, e)]
    shared += [partial(env_base, repo, env, caches) for env in envs]
    steps.append(partial(_warm_shared, repo, preparse, shared))
    steps += [partial(policy_check, repo, caches), partial(layout_check, repo, caches)]
    for step in steps:
        with contextlib.suppress(LlmccError):
            step()


def _prepare_fork() -> None:
    """What forking the workers needs, while the helper still parses (the parent waited for it there):
    the pool's modules (~5 ms to import) and ``prctl`` found once for every worker (``orphans.prepare``)."""
    import multiprocessing.pool  # noqa: F401 - imported for ``_pool``

    from compiler.compile.orphans import prepare

    prepare()


def _compile_validators(request: BuildRequest) -> None:
    """Compile the validators of schemas loaded lazily (``Repository.lazy_schemas``) before forking:
    else each worker would compile its own. A schema that does not compile: its targets report it."""
    for module in request.repo.modules:
        with contextlib.suppress(LlmccError):
            request.repo.schema(module).validator()


def _warm_shared(repo: Repository, preparse: Preparse | None, steps: list[Callable[[], object]]) -> None:
    """``steps`` (templates, environment bases), reading the files ``preparse`` parsed from it."""
    parse = repo.parse
    if preparse is not None:
        repo.parse = preparse.loader(parse)
    try:
        for step in steps:
            with contextlib.suppress(LlmccError):
                step()
    finally:
        repo.parse = parse


def _shared_envs(targets: Sequence[Target]) -> list[str]:
    """Environments whose merged modules more than one of ``targets`` starts from.

    An environment with one target here (``dev`` without tenants) has one user:
    the process that compiles it computes its base, in parallel with the others,
    rather than the parent before any worker starts.
    """
    count = Counter(t.environment for t in targets)
    return sorted(env for env, n in count.items() if n > 1)


# Targets of one environment in a build from which its modules' text is stored for them to splice:
# storing costs about 2.5 whole encodings of them (the text of every map is kept), a splice a fraction
# of one. With fewer, each bundle is encoded whole (a one-value change rebuilds one or two).
SPLICE_MIN_TARGETS = 3


def _warm_json(request: BuildRequest, targets: Sequence[Target]) -> None:
    """Encode the modules of each environment with ``SPLICE_MIN_TARGETS`` targets here once, so each
    bundle reuses the text of what it shares with them (the bytes are the same either way)."""
    from compiler.bundle.canonical import canonical_json

    counts = Counter(t.environment for t in targets)
    for env in sorted(e for e, n in counts.items() if n >= SPLICE_MIN_TARGETS):
        base = _caches(request).env_bases.get(env)
        if base is None:
            continue  # the environment failed to load: its targets report it
        canonical_json(_json_map(base.modules), cache=request.json_cache, store=True)


_REQUEST: BuildRequest | None = None


def _worker(targets: tuple[Target, ...]) -> list[TargetOutcome]:
    assert _REQUEST is not None
    try:
        outcomes = [_build_one(_REQUEST, target) for target in targets]
        note = _REQUEST.worker_note() if _REQUEST.worker_note is not None else None
        if note is not None and outcomes:
            outcomes[-1] = replace(outcomes[-1], note=note)
        return outcomes
    except Exception:
        raise  # the pool hands it to the parent, which raises it there: exit 70
    except BaseException as e:
        # A pool worker passes on only an Exception: anything else ends the worker, its task's
        # result never comes, and the build waits for ever. A bug: exit 70 in the parent.
        raise InternalError(f"internal error: a build worker stopped on {type(e).__name__}: {e}") from e


def _build_one(request: BuildRequest, target: Target) -> TargetOutcome:
    from compiler.compile.pipeline import compile_target

    try:
        if request.attempt is not None and (done := request.attempt(request, target)) is not None:
            return done
        result = compile_target(request.repo, target, validate=request.validate, caches=_caches(request))
        if request.check_keys is not None:
            # Before sealing, so every target's key problem is a finding, not the first one an error.
            found = request.check_keys(result)
            if found:
                result = replace(result, diagnostics=sort_diagnostics([*result.diagnostics, *found]))
        if not result.ok or (request.out_dir is None and not request.keep_bytes and request.keep is None):
            return TargetOutcome(target=target.name, diagnostics=result.diagnostics)
        members: Members | None = {} if request.keep is not None else None
        data = bundle_bytes(request, result, members)
        if request.out_dir is not None:
            write_staged(request.out_dir / f"{target.name}.bundle.json", data)
        return TargetOutcome(
            target=target.name,
            diagnostics=result.diagnostics,
            size=len(data),
            data=data if request.keep_bytes else None,
            kept=request.keep(request, result, data, members) if request.keep and members is not None else None,
        )
    except LlmccError as e:
        return TargetOutcome(target=target.name, diagnostics=[], error=(str(e), e.exit_code))
    except BaseException as e:
        if not is_panic(e):
            raise
        # A native library panicked (a BaseException: it would end a -j worker). Its text is not
        # shown: the library was given this target's values. Exit 70, like any bug.
        why = f"internal error: {target.name}: a native library panicked while compiling it (a bug)"
        return TargetOutcome(target=target.name, diagnostics=[], error=(why, InternalError.exit_code))


def _json_map(modules: dict[str, Value]) -> JSONValue:
    return cast("JSONValue", modules)


def _json(modules: dict[str, Value]) -> dict[str, JSONValue]:
    """Merged modules as JSON: merging leaves no ``Tagged`` node (``compiler.merge``, invariant 2)."""
    return cast("dict[str, JSONValue]", modules)


def bundle_bytes(request: BuildRequest, result: CompileResult, members: Members | None = None) -> bytes:
    # imported here: validate builds no bundle
    from compiler.bundle.canonical import canonical_json
    from compiler.bundle.model import build_body

    modules = _json(result.modules)
    encryption = None
    if request.seal is not None:
        modules, encryption = request.seal(result.target, modules, result.secrets)
    body = build_body(
        project=request.repo.project.name,
        target=result.target.name,
        source=request.source.to_json() if request.source else None,
        modules=modules,
        encryption=encryption,
    )
    # A target's modules share every subtree its own layers did not change with its
    # environment's base (compiler.compile.inherit), whose text _warm_json stored when
    # the build has enough of its targets; else the bundle is encoded whole.
    base = _caches(request).env_bases.get(result.target.environment)
    if base is None or id(base.modules) not in request.json_cache:
        return canonical_json(body)
    like = {"modules": _json_map(base.modules)}
    return canonical_json(body, cache=request.json_cache, like=like, members=members)


def write_staged(path: Path, data: bytes) -> None:
    """A new file in the private staging directory ``out_dir``, not yet durable: the caller
    syncs the staged bundles together before renaming them into place (``distdir.BundleDir``)."""
    from compiler import fileops

    try:
        fileops.write_new(path, data, mode=0o644)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from e


def write_atomic(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a partial one (STYLE R14)."""
    from compiler import fileops

    try:
        fileops.write_atomic(path, data, mode=0o644)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from e


def iter_diagnostics(outcomes: Sequence[TargetOutcome]) -> Iterator[Diagnostic]:
    """Every target's diagnostics; one about the repository (no target) only once."""
    seen: set[Diagnostic] = set()
    for outcome in outcomes:
        for d in outcome.diagnostics:
            if d.target is None:
                if d in seen:
                    continue
                seen.add(d)
            yield d


__all__ = ["BuildRequest", "KeyCheck", "Sealer", "TargetOutcome", "build_targets", "iter_diagnostics", "write_atomic"]
