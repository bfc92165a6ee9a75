"""``llmcc policy test``: run the policy test cases in ``policies/tests/`` (like ``opa test``).

One line per case on stdout, ``PASS`` or ``FAIL`` with the reason (``--format
json``: one document); exit 1 when a case fails, 2 when a policies or test file is bad.
"""

from __future__ import annotations

import argparse
import sys

from compiler.cli._context import Context
from compiler.cli._output import add_format_arg, print_json
from compiler.cli._repo import open_tree
from compiler.errors import UsageError

TESTS = "policies/tests"  # compiler.policy.testing.TESTS, here so that `policy --help` imports no CEL


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    test = sub.add_parser("test", help=f"run the policy test cases in {TESTS}/")
    test.add_argument("files", nargs="*", metavar="FILE", help=f"only these test files (default: {TESTS}/*.yaml)")
    add_format_arg(test)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.policy.rules import load_policies

    tree = open_tree(ctx, None)
    policies = load_policies(tree)
    files = [_relative(ctx, f) for f in args.files] or [
        f"{TESTS}/{n}" for n in tree.list_dir(TESTS) if n.endswith((".yaml", ".yml"))
    ]
    if files:  # the test runner and its case models, with cases to run (issue 14 §1: hook validate)
        from compiler.policy.testing import load_cases, run_case
    cases = [case for path in files for case in load_cases(tree.read(path), path=path, policies=policies)]
    as_json = args.format == "json"
    if not cases and not as_json:
        print(f"llmcc: policy test: no test cases in {TESTS}/", file=sys.stderr)
        return 0
    failed = 0
    results: list[dict[str, object]] = []
    for case in cases:
        result = run_case(case, policies)
        failed += not result.ok
        results.append({"location": case.location, "name": case.name, "ok": result.ok, "failures": result.failures})
        if as_json:
            continue
        if result.ok:
            print(f"PASS {case.location}: {case.name}")
        else:
            print(f"FAIL {case.location}: {case.name}: {'; '.join(result.failures)}")
    if as_json:
        doc = {"ok": not failed, "exit_code": 1 if failed else 0, "passed": len(cases) - failed, "failed": failed}
        print_json({**doc, "cases": results})
    elif not ctx.quiet:
        verdict = "ok" if not failed else "FAILED"
        print(f"llmcc: policy test {verdict}: {len(cases) - failed} passed, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def _relative(ctx: Context, name: str) -> str:
    """A FILE argument as a repository-relative path: a relative name is taken from where llmcc
    runs (``-C DIR`` or the current directory), else from the repository's root."""
    full = ctx.path(name)
    if not full.exists():
        full = ctx.root / name
    try:
        return full.resolve().relative_to(ctx.root).as_posix()
    except ValueError as e:
        raise UsageError(f"{name}: not inside the config repository {ctx.root}") from e
