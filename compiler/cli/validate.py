"""`llmcc validate`: schema, secrets and policy checks; nothing written."""

from __future__ import annotations

import argparse
import sys

from compiler.build import BuildRequest, build_targets
from compiler.cli import Context
from compiler.cli._output import REPORTERS
from compiler.cli._repo import add_identity_arg, add_target_args, open_repository
from compiler.diagnostics import Diagnostic, Severity, sort_diagnostics
from compiler.errors import LlmccError


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_target_args(p)
    p.add_argument("--format", choices=sorted(REPORTERS), default="text", help="report format (default text)")
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="worker processes (default: one per core)")
    add_identity_arg(p)


def run(args: argparse.Namespace, ctx: Context) -> int:
    report = REPORTERS[args.format]
    try:
        repo, _, _ = open_repository(ctx, args)
        targets = repo.project.select(args.target)
        outcomes = build_targets(BuildRequest(repo=repo, source=None, progress=ctx.progress), targets, jobs=args.jobs)
    except LlmccError as e:
        if args.format != "json":
            raise
        # --format json prints exactly one JSON document, whatever happens.
        report([Diagnostic(message=str(e))], {"ok": False, "targets": [], "exit_code": e.exit_code})
        return e.exit_code
    errors = [o for o in outcomes if o.error]
    diags: list[Diagnostic] = [Diagnostic(message=o.error[0], target=o.target) for o in errors if o.error]
    diags += sort_diagnostics([d for o in outcomes for d in o.diagnostics])
    failed = any(d.severity is Severity.ERROR for d in diags)
    code = max((o.error[1] for o in errors if o.error), default=1 if failed else 0)
    report(diags, {"ok": not failed, "targets": [o.target for o in outcomes], "exit_code": code})
    if args.format == "text" and not ctx.quiet:
        n_err = sum(1 for d in diags if d.severity is Severity.ERROR)
        n_warn = len(diags) - n_err
        verdict = "ok" if not failed else "FAILED"
        print(
            f"llmcc: validate {verdict}: {len(outcomes)} targets, {n_err} errors, {n_warn} warnings",
            file=sys.stderr,
        )
    return code
