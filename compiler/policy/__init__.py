"""CEL policies: ``policies/*.yaml`` rules, evaluated per target after schema validation.

The rule format for users: README "Policies, pre-commit and CI".

- ``rules``: the file format (pydantic), loading and compiling (``load_policies``).
- ``cel``: the CEL library boundary: compile, narrow and convert the activation.
- ``evaluate``: outcomes per target, waivers, diagnostics (``evaluate_policies``).
- ``explain``: which value made a rule false.
- ``secretmeta`` and ``check``: the ``secrets`` variable and the per-repository entry point.
- ``testing``: ``policies/tests/*.yaml`` cases for ``llmcc policy test``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from compiler.errors import InputError

if TYPE_CHECKING:
    from compiler.policy.check import PolicyCheck, check_target
    from compiler.policy.clock import policy_time
    from compiler.policy.evaluate import evaluate_policies
    from compiler.policy.rules import PolicySet, load_policies
    from compiler.sources.base import SourceTree

# Loaded on first use (PEP 562): importing a light submodule (``clock``) must not load the
# policy engine, which a command whose targets all come from the result cache never runs.
_HOMES = {
    "PolicyCheck": "check",
    "check_target": "check",
    "policy_time": "clock",
    "evaluate_policies": "evaluate",
    "PolicySet": "rules",
    "load_policies": "rules",
}


POLICIES = "policies"


def policy_files(tree: SourceTree) -> list[str]:
    """The policy files ``load_policies`` reads: ``policies/*.yaml`` and ``*.yml`` (not ``policies/tests/``).

    Light: a compile of a repository without any loads none of the policy engine.

    Raises:
        InputError: ``policies`` is there but not a directory, or a ``*.yaml``/``*.yml`` name in it is not
            a regular file (a dangling symlink, a directory, a symlink in a revision): skipped, its rules would
            silently not apply (attacker, issue 14: fail closed).
    """
    for name in tree.unlisted(POLICIES):
        if not name:
            raise InputError(f"{POLICIES}: not a directory; policy files go in {POLICIES}/*.yaml")
        if name.endswith((".yaml", ".yml")):
            raise InputError(f"{POLICIES}/{name}: not a regular file (a dangling symlink or a directory)")
    return [f"{POLICIES}/{name}" for name in tree.list_dir(POLICIES) if name.endswith((".yaml", ".yml"))]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "POLICIES",
    "PolicyCheck",
    "PolicySet",
    "check_target",
    "evaluate_policies",
    "load_policies",
    "policy_files",
    "policy_time",
]
