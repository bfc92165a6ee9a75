"""Every failed target of a build, reported in one run (issue 10 §1: no "one target per run")."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from compiler.compile.build import TargetOutcome, iter_diagnostics
from compiler.diagnostics import Severity, plural
from compiler.errors import ConfigCheckError, LlmccError


def failed_targets(outcomes: Sequence[TargetOutcome]) -> list[str]:
    """Targets that ended in an error or have an error-severity finding, in build order."""
    return [o.target for o in outcomes if o.error or any(d.severity is Severity.ERROR for d in o.diagnostics)]


def raise_failures(outcomes: Sequence[TargetOutcome]) -> None:
    """Raise for the failed targets, having shown every one of them.

    Raises:
        LlmccError: a target could not be read (its exit code, the highest of
            them); every finding and every other such message is printed first.
        ConfigCheckError: targets failed validation (exit 1), with every finding.
    """
    bad = failed_targets(outcomes)
    if not bad:
        return
    diags = list(iter_diagnostics(outcomes))  # a finding about the repository, once
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.error is not None:
            errors.setdefault(*o.error)  # one file breaks every target that reads it: say it once
    if not errors:
        summary = f"{len(bad)} of {plural(len(outcomes), 'target')} failed validation: {', '.join(bad)}"
        raise ConfigCheckError(summary, diags)
    for d in diags:
        if d.severity is Severity.ERROR:
            print(d.format(), file=sys.stderr)
    *others, last = errors
    for message in others:
        print(f"llmcc: {message}", file=sys.stderr)
    err = LlmccError(last)
    err.exit_code = max(errors.values())
    raise err
