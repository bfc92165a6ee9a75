"""Evaluate the policies of one target and turn the outcomes into diagnostics (STYLE R7).

Outcomes per policy: ``pass``, ``fail`` (the rule is false), ``error`` (it
cannot be evaluated: no such key, no such overload, not a boolean; fails
closed, at the rule's severity) or ``skip`` (its ``match`` excludes the
target). A waiver turns the failure or error of its policy into a warning
until it expires; an expired waiver waives nothing and says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

from compiler.diagnostics import Diagnostic, Severity
from compiler.jsonpath import JsonPath, resolve
from compiler.jsontypes import JSONObject, JSONValue
from compiler.policy.cel import (
    CEL_INT_MAX,
    CEL_INT_MIN,
    EVAL_ERRORS,
    Activation,
    cel_selection,
    cel_unfit,
    mask_secrets,
    union_modules,
)
from compiler.policy.explain import explain, show
from compiler.policy.rules import Policy, PolicySet, Waiver
from compiler.project import Target

if TYPE_CHECKING:
    from compiler.pipeline import CompileResult

Status = Literal["pass", "fail", "error", "skip"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    policy: Policy
    status: Status
    detail: str = ""  # why it failed, or the evaluation error


def target_value(target: Target) -> JSONObject:
    """The ``target`` variable of rules."""
    return {"environment": target.environment, "tenant": target.tenant, "name": target.name}


def evaluate_target(
    policies: Sequence[Policy],
    target: Target,
    config: Mapping[str, JSONValue],
    secrets: Mapping[str, JSONValue],
) -> list[Outcome]:
    """Every policy's outcome for one target. ``config`` must not hold secret values (``mask_secrets``)."""
    applicable = [p for p in policies if p.applies(target, config)]
    if not applicable:
        return [Outcome(policy=p, status="skip") for p in policies]
    act = Activation(config, target_value(target), dict(secrets), union_modules(p.program for p in applicable))
    unfit = UnfitValues(config)
    out = []
    for policy in policies:
        if policy not in applicable:
            out.append(Outcome(policy=policy, status="skip"))
            continue
        hit = unfit.read_by(policy.program.paths)
        if hit is not None:
            out.append(Outcome(policy=policy, status="error", detail=hit))
            continue
        try:
            value = act.run(policy.program)
        except EVAL_ERRORS as e:
            out.append(Outcome(policy=policy, status="error", detail=eval_error(e)))
            continue
        if value is True:
            out.append(Outcome(policy=policy, status="pass"))
        elif value is False:
            why = explain(policy.rule, act.evaluate) or f"{one_line(policy.rule)} is false"
            out.append(Outcome(policy=policy, status="fail", detail=why))
        else:
            out.append(Outcome(policy=policy, status="error", detail=f"the rule gave {show(value)}, not a boolean"))
    return out


class UnfitValues:
    """The values of one target that cannot reach CEL unchanged (issue 10 §6), found once per subtree."""

    def __init__(self, config: Mapping[str, JSONValue]) -> None:
        self._config = dict(config)
        self._seen: dict[JsonPath, str | None] = {}

    def read_by(self, paths: Iterable[JsonPath] | None) -> str | None:
        """Why a rule selecting ``paths`` (None: anything) would not see a value unchanged, or None."""
        for path in [(m,) for m in sorted(self._config)] if paths is None else paths:
            found = resolve(self._config, path)
            if found is not None and found[0] not in self._seen:
                self._seen[found[0]] = self._why(found[0], cast(JSONValue, found[1]))
            why = None if found is None else self._seen[found[0]]
            if why is not None:
                return why
        return None

    @staticmethod
    def _why(at: JsonPath, value: JSONValue) -> str | None:
        unfit = cel_unfit(value)
        if unfit is None:
            return None
        where = (*at, *unfit[0])
        return (
            f"{cel_selection(str(where[0]), where[1:])} is {unfit[1]}, beyond CEL's int "
            f"(64-bit signed, {CEL_INT_MIN} to {CEL_INT_MAX}): rules cannot read it unchanged"
        )


def eval_error(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"no such key {show(e.args[0]) if e.args else ''}".strip()
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    # The library's hint after "no such overload" is generic; keep its first sentence.
    if text.startswith("No such overload"):
        text = "no such overload: the operands' types do not fit (CEL does not convert between types)"
    return text


def one_line(rule: str) -> str:
    text = " ".join(rule.split())
    return text if len(text) <= 160 else text[:157] + "..."


def evaluate_policies(
    policies: PolicySet, result: CompileResult, secret_meta: Mapping[str, JSONValue], *, now: dt.datetime
) -> list[Diagnostic]:
    """The policy diagnostics of one compiled target (secret values are masked before rules see them)."""
    if not policies:
        return []
    config = mask_secrets(result.modules, result.secrets)  # type: ignore[arg-type]
    outcomes = evaluate_target(policies.policies, result.target, config, secret_meta)
    return policy_diagnostics(outcomes, policies.waivers, result.target, now.date())


def policy_diagnostics(
    outcomes: Iterable[Outcome], waivers: Sequence[Waiver], target: Target, today: dt.date
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for o in outcomes:
        if o.status in ("pass", "skip"):
            continue
        p = o.policy
        verb = "failed" if o.status == "fail" else "could not be evaluated"
        message = f"policy {p.name} {verb}: {o.detail}"
        notes = [f"rule: {one_line(p.rule)}"]
        if p.description:
            notes.append(f"policy: {p.description}")
        severity = Severity(p.severity)
        for w in (w for w in waivers if w.covers(p.name, target)):
            if w.expired(today):
                out.append(
                    Diagnostic(
                        message=f"waiver of policy {p.name} expired on {w.expires} ({w.owner}: {w.reason}); "
                        "it no longer waives",
                        severity=Severity.WARNING,
                        origin=w.origin,
                        target=target.name,
                        rule=p.name,
                    )
                )
                continue
            severity = Severity.WARNING
            message = f"policy {p.name} {verb} (waived until {w.expires} by {w.owner}: {w.reason}): {o.detail}"
            break
        out.append(
            Diagnostic(
                message=message,
                severity=severity,
                origin=p.origin,
                target=target.name,
                rule=p.name,
                notes=tuple(notes),
            )
        )
    return out
