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

from compiler.policy.check import PolicyCheck, check_target, policy_time
from compiler.policy.evaluate import evaluate_policies
from compiler.policy.rules import PolicySet, load_policies

__all__ = ["PolicyCheck", "PolicySet", "check_target", "evaluate_policies", "load_policies", "policy_time"]
