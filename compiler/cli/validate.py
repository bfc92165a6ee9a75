"""`llmcc validate`: schema, secrets and policy checks per target, and the secrets guard's scan of
every file git can take (keys, credentials, decrypted bundles: ``compiler.plaintext``); writes nothing but
the result cache (``compiler.incremental``)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from compiler.cli._context import Context
from compiler.cli._output import REPORTERS
from compiler.cli._repo import (
    add_cache_arg,
    add_identity_arg,
    add_jobs_arg,
    add_shard_arg,
    add_target_args,
    open_repository,
    select_targets,
    shard_summary,
)

if TYPE_CHECKING:
    from compiler.compile.build import BuildRequest
    from compiler.diagnostics import Diagnostic


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_target_args(p)
    p.add_argument("--format", choices=sorted(REPORTERS), default="text", help="report format (default text)")
    add_jobs_arg(p)
    add_shard_arg(p)
    add_identity_arg(p)
    add_cache_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.incremental.plan import cache_disabled, finish_cache, plan_cache

    report = REPORTERS[args.format]
    no_cache = cache_disabled(getattr(args, "no_cache", False), os.environ)
    # An error that ends the command reaches the boundary, which prints the JSON document.
    # Without the cache nothing is written before the scan: git lists the files while the stack loads.
    repo, source, ids = open_repository(ctx, args, list_files=no_cache)
    from compiler.compile.build import BuildRequest, build_targets, iter_diagnostics
    from compiler.diagnostics import Severity, diagnostic_from_message, plural, sort_diagnostics
    from compiler.plaintext import scan_committable
    from compiler.trust import check_trusted_keys

    selected, targets = select_targets(repo.project, args)
    request = BuildRequest(repo=repo, source=None, progress=ctx.progress)
    plan = plan_cache(ctx.root, repo, targets, mode="validate", source=source, identities=ids, no_cache=no_cache)
    if plan is not None and plan.cache.refused:
        print(f"llmcc: warning: {plan.cache.refused}", file=sys.stderr)
    # Without the cache the files are listed now, git having run while the stack loaded (before any -j
    # worker forks beside its thread); with it, after the build, as the cache writes went.
    early = repo.tree.committable_files() if no_cache else None
    if plan is None:  # the result cache off: its modules are not even imported (issue 14 §1)
        outcomes = build_targets(_with_key_check(request), targets, jobs=args.jobs)
    else:
        from compiler.incremental.run import build_cached

        outcomes = build_cached(request, targets, plan=plan, jobs=args.jobs, complete=_with_key_check)
    # An input error (bad YAML, a missing file) stops its targets; the same file breaks
    # every target that reads it, so each message is reported once, without a target.
    inputs = {o.error[0]: o.error[1] for o in outcomes if o.error}
    diags: list[Diagnostic] = [diagnostic_from_message(m) for m in inputs]
    found = list(iter_diagnostics(outcomes))
    if selected == repo.project.targets():  # an orphan key file belongs to no target: every shard reports it
        from compiler.secrets.access import orphan_key_files
        from compiler.secrets.keyfile import KEY_DIR

        found += orphan_key_files(repo.project, repo.tree.list_dir(KEY_DIR))
    found += check_trusted_keys(repo.project, repo.tree)
    # keys, credentials and decrypted bundles in any file git can take (issue 9 §4); outside git, none
    committable = early if no_cache else repo.tree.committable_files()
    if committable is not None:
        scan = scan_committable(repo, committable, cache=plan.cache if plan else None)
        found += scan.diagnostics
        for message, exit_code in scan.inputs.items():  # staged content that did not parse, a staged template
            if message not in inputs:
                inputs[message] = exit_code
                diags.append(diagnostic_from_message(message))
    diags += sort_diagnostics(found)
    if warning := finish_cache(plan):
        print(warning, file=sys.stderr)
    failed = any(d.severity is Severity.ERROR for d in diags)
    code = max(inputs.values(), default=1 if failed else 0)
    if inputs and args.format == "text":
        for message in inputs:
            print(f"llmcc: {message}", file=sys.stderr)
        diags = diags[len(inputs) :]
    summary: dict[str, object] = {"ok": not failed, "targets": [o.target for o in outcomes], "exit_code": code}
    shard = shard_summary(args.shard, len(outcomes), len(selected))
    if shard is not None:
        summary["shard"] = shard
    report(diags, summary)
    if args.format == "text" and not ctx.quiet:
        n_err = len(inputs) + sum(1 for d in diags if d.severity is Severity.ERROR)
        n_warn = sum(1 for d in diags if d.severity is Severity.WARNING)
        verdict = "ok" if not failed else "FAILED"
        scope = plural(len(outcomes), "target")
        if args.shard is not None:
            scope = f"shard {args.shard}: {len(outcomes)} of {plural(len(selected), 'target')}"
        counts = f"{scope}, {plural(n_err, 'error')}, {plural(n_warn, 'warning')}"
        print(f"llmcc: validate {verdict}: {counts}", file=sys.stderr)
    return code


def _with_key_check(request: BuildRequest) -> BuildRequest:
    """``request`` with the key file check, which only a target that is built needs (it reads every key file)."""
    from compiler.secrets.access import KeyFileCheck

    return replace(request, check_keys=KeyFileCheck(request.repo.tree, request.repo.project))
