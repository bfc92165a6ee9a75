"""``llmcc policy test``: run the policy test cases in ``policies/tests/`` (like ``opa test``).

One line per case on stdout, ``PASS`` or ``FAIL`` with the reason; exit 1
when a case fails, 2 when a policies or test file is bad.
"""

from __future__ import annotations

import argparse
import sys

from compiler.cli import Context
from compiler.cli._repo import open_tree
from compiler.errors import UsageError
from compiler.policy.rules import load_policies
from compiler.policy.testing import TESTS, case_files, load_cases, run_case


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    test = sub.add_parser("test", help=f"run the policy test cases in {TESTS}/")
    test.add_argument("files", nargs="*", metavar="FILE", help=f"only these test files (default: {TESTS}/*.yaml)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    tree = open_tree(ctx, None)
    policies = load_policies(tree)
    files = [_relative(ctx, f) for f in args.files] or case_files(tree)
    cases = [case for path in files for case in load_cases(tree.read(path), path=path, policies=policies)]
    if not cases:
        print(f"llmcc: policy test: no test cases in {TESTS}/", file=sys.stderr)
        return 0
    failed = 0
    for case in cases:
        result = run_case(case, policies)
        if result.ok:
            print(f"PASS {case.location}: {case.name}")
        else:
            failed += 1
            print(f"FAIL {case.location}: {case.name}: {'; '.join(result.failures)}")
    if not ctx.quiet:
        verdict = "ok" if not failed else "FAILED"
        print(f"llmcc: policy test {verdict}: {len(cases) - failed} passed, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def _relative(ctx: Context, name: str) -> str:
    """A FILE argument as a repository-relative path (relative names are taken from the repository)."""
    from pathlib import Path

    path = Path(name)
    full = path if path.is_absolute() else (Path.cwd() / path)
    if not full.exists() and not path.is_absolute():
        full = ctx.root / path
    try:
        return full.resolve().relative_to(ctx.root).as_posix()
    except ValueError as e:
        raise UsageError(f"{name}: not inside the config repository {ctx.root}") from e
