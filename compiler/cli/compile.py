"""`llmcc compile`: render, validate, encrypt; write DIR/<target>.bundle.json."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from compiler.cli._context import Context
from compiler.cli._repo import (
    add_cache_arg,
    add_identity_arg,
    add_jobs_arg,
    add_shard_arg,
    add_target_args,
    open_repository,
    select_targets,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_target_args(p)
    p.add_argument("-o", "--out", metavar="DIR", default="dist", help="output directory (default dist/)")
    add_jobs_arg(p)
    add_shard_arg(p)
    add_identity_arg(p)
    add_cache_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.cli._failures import failed_targets, raise_failures
    from compiler.compile.build import BuildRequest, iter_diagnostics
    from compiler.diagnostics import plural
    from compiler.distdir import BundleDir, bundle_name
    from compiler.incremental.plan import finish_cache, plan_cache
    from compiler.incremental.run import build_cached, bundles_in_place, record_bundles
    from compiler.lifetime import keep

    start = time.perf_counter()
    repo, source, ids = open_repository(ctx, args, need_secrets=True)
    selected, targets = select_targets(repo.project, args)
    out_dir = Path(args.out)
    if not out_dir.is_absolute():
        out_dir = ctx.root / out_dir
    repo.check_schema_files()  # an input error of the whole run: refused before DIR is touched
    plan = plan_cache(ctx.root, repo, targets, mode="compile", source=source, identities=ids, no_cache=args.no_cache)
    if plan is not None and plan.cache.refused:
        print(f"llmcc: warning: {plan.cache.refused}", file=sys.stderr)
    source_json = source.to_json() if source else None
    reuse = bundles_in_place(plan, source_json, out_dir) if plan is not None else None
    # a bundle already in DIR byte for byte, its stat still the checked one, is left as it is (the
    # next run trusts its stat); the run's other old bundles are cleared first (distdir)
    bundles = BundleDir(out_dir, [t.name for t in targets], known=[t.name for t in repo.project.targets()])
    if reuse is not None:
        reuse = replace(reuse, left=bundles.left)
    with bundles.staged(leave=reuse.unchanged if reuse is not None else None) as staging:
        request = BuildRequest(
            repo=repo, source=source, out_dir=staging, progress=ctx.progress, written=bundles.sync_soon
        )

        def complete(r: BuildRequest) -> BuildRequest:
            # only a target that is built needs these (and the crypto stack they load)
            from compiler.secrets.access import KeyFileCheck
            from compiler.secrets.sealing import KeyFileSealer

            seal = KeyFileSealer(repo.tree, repo.project, ids if ids else None)
            return replace(r, seal=seal, check_keys=KeyFileCheck(repo.tree, repo.project))

        outcomes = build_cached(request, targets, plan=plan, jobs=args.jobs, reuse=reuse, complete=complete)
        bad = set(failed_targets(outcomes))
        good = [o.target for o in outcomes if o.target not in bad]
        bundles.install(good)  # a failed target keeps no bundle; one left in place is not moved
    keep(repo, plan, outcomes)  # left to the OS when the process ends with os._exit (compiler.lifetime)
    record_bundles(plan, source_json, reuse, good)
    if warning := finish_cache(plan):
        print(warning, file=sys.stderr)
    shown = _display(out_dir, ctx.root)
    for target in good:
        print(f"{shown}/{bundle_name(target)}")
    raise_failures(outcomes)
    diags = list(iter_diagnostics(outcomes))
    for d in diags:
        print(d.format(), file=sys.stderr)
    if not ctx.quiet:
        took = time.perf_counter() - start
        compiled = f"compiled {plural(len(outcomes), 'target')}"
        if args.shard is not None:
            compiled = f"shard {args.shard}: compiled {len(outcomes)} of {plural(len(selected), 'target')}"
        print(f"llmcc: {compiled} in {took:.2f}s", file=sys.stderr)
    return 0


def _display(out_dir: Path, root: Path) -> str:
    try:
        return str(out_dir.relative_to(root))
    except ValueError:
        return str(out_dir)
