"""``llmcc hook validate|secrets-guard|diff``: the entries of ``.pre-commit-hooks.yaml``.

README "Policies, pre-commit and CI" shows how a config repository uses them.

pre-commit runs them at the repository root with the staged files as
arguments (unstaged changes are stashed, so the working tree is what will be
committed). Run as a bare git hook they see unstaged changes too, so the
secret checks also read the staged content of each file whose index entry
is a change and differs from the working tree (``compiler.plaintext``).
A change is judged against HEAD's parent, not HEAD (``WorkTree.staged_changes``):
``git commit --amend`` re-commits HEAD's own change, and a hook cannot tell that
it amends, so the files HEAD changed are checked with FILE... as well; a file a
``--no-verify`` commit added no longer passes the next commit or the amend unseen.
What a hook cannot see (a secret two commits back, or one a later commit removed
again: both in history) is for CI: ``secrets-guard --since REV`` (README "Trust model").

- ``validate FILE...``: ``llmcc validate`` on the targets the files can
  affect (``compiler.affected``), plus ``llmcc policy test`` when a policies
  file changed. Without FILE, every target.
- ``secrets-guard FILE...``: no plaintext secret, every ``*.sops.yaml``
  encrypted, no private key, credential or decrypted bundle
  (``compiler.plaintext``). Needs no identity. Without FILE, every file git
  can take (tracked, staged, untracked and not ignored): what CI runs. With
  ``--since REV``, each commit of ``REV..HEAD`` too, as that commit has its
  files (``compiler.history_guard``): what a merge request brings into history.
- ``diff``: ``llmcc diff HEAD --format text``, for information: always exits 0.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from compiler.cli._context import Context
from compiler.cli._output import REPORTERS
from compiler.cli._repo import open_tree
from compiler.errors import UsageError

if TYPE_CHECKING:
    from compiler.plaintext import GuardScan
    from compiler.sources.base import SourceTree


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="hook_command", metavar="HOOK", required=True)
    val = sub.add_parser("validate", help="validate the targets that FILE... can affect (all without FILE)")
    val.add_argument("files", nargs="*", metavar="FILE")
    val.add_argument("--format", choices=sorted(REPORTERS), default="text", help="report format (default text)")
    val.add_argument("--no-cache", action="store_true", help="neither read nor fill the result cache .llmcc/cache/")
    guard = sub.add_parser("secrets-guard", help="no plaintext secrets or private keys in FILE...")
    guard.add_argument("files", nargs="*", metavar="FILE")
    guard.add_argument(
        "--since",
        metavar="REV",
        help="each commit of REV..HEAD too, as it has its files (CI: what the merge request brings into history)",
    )
    diff = sub.add_parser("diff", help="show `llmcc diff HEAD --format text`; always exits 0")
    diff.add_argument("--base", default="HEAD", metavar="REV", help="the revision to compare with (default HEAD)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    command: str = args.hook_command
    if command == "validate":
        return _validate(args, ctx)
    if command == "secrets-guard":
        return _secrets_guard(args, ctx)
    return _diff(args, ctx)


def relative_files(ctx: Context, files: list[str]) -> list[str]:
    """FILE arguments as repository-relative POSIX paths (pre-commit passes them relative to the root)."""
    out = []
    for name in files:
        full = ctx.path(name)
        try:
            out.append(full.resolve().relative_to(ctx.root).as_posix())
        except ValueError as e:
            raise UsageError(f"{name}: not inside the config repository {ctx.root}") from e
    return out


def with_head_change(files: list[str], tree: SourceTree) -> list[str]:
    """``files`` (the staged ones, from pre-commit) and every file whose index entry differs from
    HEAD's parent: HEAD's own change, which ``git commit --amend`` commits again (see the module doc)."""
    from compiler.sources.worktree import WorkTree

    if not files or not isinstance(tree, WorkTree):
        return files
    return sorted(set(files) | set(tree.staged_changes()))


def _validate(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.affected import affected_targets
    from compiler.cli import policy, validate
    from compiler.compile.repository import Repository
    from compiler.policy.rules import POLICIES
    from compiler.secrets.sources import SopsOpener

    tree = open_tree(ctx, None)
    files = with_head_change(relative_files(ctx, args.files), tree)
    repo = Repository(tree, open_secrets=SopsOpener(None))
    targets = affected_targets(repo.project, files) if files else repo.project.targets()
    code = 0
    if targets:
        from compiler.cli import build_parser

        argv = ["validate", "--format", args.format, *(a for t in targets for a in ("--target", t.name))]
        argv += ["--no-cache"] if args.no_cache else []
        code = validate.run(build_parser("validate").parse_args(argv), ctx)  # no other command module loads
    if not files or any(f.startswith(f"{POLICIES}/") for f in files):
        code = max(code, policy.run(argparse.Namespace(policy_command="test", files=[], format="text"), ctx))
    return code


def _secrets_guard(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.compile.repository import Repository
    from compiler.diagnostics import Severity, hang_lines, plural, sort_diagnostics
    from compiler.plaintext import scan_files
    from compiler.secrets.sources import SopsOpener

    repo = Repository(open_tree(ctx, None), open_secrets=SopsOpener(None))
    if args.files:
        files = with_head_change(relative_files(ctx, args.files), repo.tree)
    else:
        # CI and a manual run: every file git can take, so "checked nothing" is never a pass
        listed = repo.tree.committable_files()
        if listed is None:
            raise UsageError(f"{ctx.root}: not a git work tree; name the files: llmcc hook secrets-guard FILE...")
        files = listed
    scan = scan_files(repo, files)
    _name_head_kept(repo.tree, scan)
    commits = None
    if args.since is not None:
        from compiler.commitscan import scan_commits

        history, commits = scan_commits(ctx.root, args.since)
        scan.diagnostics += history.diagnostics
        scan.allowed += [a for a in history.allowed if a not in scan.allowed]
        scan.inputs.update(history.inputs)
    # a file that does not parse is still scanned as text: its parse error and its findings, as validate
    for message in scan.inputs:  # a name's line break indented, as the error boundary does: no forged line
        print(f"llmcc: {hang_lines(message)}", file=sys.stderr)
    diags = sort_diagnostics(scan.diagnostics)
    for d in diags:
        print(d.format(), file=sys.stderr)
    for allowed in scan.allowed:
        print(f"llmcc: secrets-guard: allowed by llmcc.yaml secrets_guard.allow: {allowed}", file=sys.stderr)
    errors = sum(1 for d in diags if d.severity is Severity.ERROR)
    scope = plural(len(files), "file") + (f" and {plural(commits, 'commit')}" if commits is not None else "")
    if errors or scan.inputs:
        unread = f", {plural(len(scan.inputs), 'input error')}" if scan.inputs else ""
        print(f"llmcc: secrets-guard FAILED: {plural(errors, 'finding')}{unread} in {scope}", file=sys.stderr)
        return max(scan.inputs.values(), default=1)
    if not args.files:
        print(f"llmcc: secrets-guard ok: {scope}", file=sys.stderr)
    return 0


def _name_head_kept(tree: SourceTree, scan: GuardScan) -> None:
    """Findings in a file whose index entry is HEAD's own change (not one staged now) say so: the
    commit being made keeps what HEAD added (an amend with nothing staged, or the commit after a
    ``--no-verify`` one), which the author did not stage and may not look for."""
    from dataclasses import replace

    from compiler.plaintext import STAGED
    from compiler.sources.worktree import WorkTree
    from compiler.validate.credentials import redact

    kept = tree.kept_from_head() if isinstance(tree, WorkTree) and scan.diagnostics else None
    if not kept or not kept[1]:
        return
    head, paths = kept
    names = paths | {redact(p) for p in paths}
    note = f" (in HEAD {head}, which this commit keeps)"
    scan.diagnostics = [
        replace(d, message=d.message + note)
        if d.origin is not None and d.origin.path in names and STAGED not in d.message
        else d
        for d in scan.diagnostics
    ]


def _diff(args: argparse.Namespace, ctx: Context) -> int:
    from compiler.cli import main
    from compiler.sources.worktree import run_git

    if run_git(ctx.root, "rev-parse", "--verify", "-q", f"{args.base}^{{commit}}", check=False) is None:
        print(f"llmcc hook diff: no commit {args.base} yet; nothing to compare", file=sys.stderr)
        return 0
    code = main(["-C", str(ctx.root), "diff", args.base, "--format", "text"])
    if code not in (0, 1):
        print(f"llmcc hook diff: the diff failed (exit {code}); not blocking the commit", file=sys.stderr)
    return 0
