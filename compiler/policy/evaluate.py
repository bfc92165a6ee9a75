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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, cast

from compiler.diagnostics import Diagnostic, Severity
from compiler.diff.masking import secret_fields
from compiler.errors import InputError, SecretsError
from compiler.jsonpath import JsonPath, resolve
from compiler.jsontypes import JSONObject, JSONValue
from compiler.policy.cel import (
    CEL_INT_MAX,
    CEL_INT_MIN,
    EVAL_ERRORS,
    FAILED_CALL,
    Activation,
    cel_selection,
    cel_unfit,
    last_failure,
    mask_secrets,
    union_modules,
)
from compiler.policy.cost import MAX_RULE_COST, rule_cost
from compiler.policy.reads import secrets_read
from compiler.policy.rules import Policy, PolicySet, Waiver
from compiler.project import Target
from compiler.secrets.identity import ADVICE

if TYPE_CHECKING:
    from compiler.compile.types import CompileResult

Status = Literal["pass", "fail", "error", "skip"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    policy: Policy
    status: Status
    detail: str = ""  # why it failed, or the evaluation error
    subject: JsonPath | None = None  # the config path (module first) of the value ``detail`` is about


def target_value(target: Target) -> JSONObject:
    """The ``target`` variable of rules."""
    return {"environment": target.environment, "tenant": target.tenant, "name": target.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretValues:
    """The target's secret fields, for rules that read them (issue 10 §4).

    ``config`` holds their real values, or None when they are not at hand (no
    compiler identity: SOPS ciphertext stands in for them).
    """

    paths: Mapping[str, Sequence[JsonPath]]
    config: Mapping[str, JSONValue] | None


def evaluate_target(
    policies: Sequence[Policy],
    target: Target,
    config: Mapping[str, JSONValue],
    secrets: Mapping[str, JSONValue],
    secret_values: SecretValues | None = None,
) -> list[Outcome]:
    """Every policy's outcome for one target.

    ``config`` must not hold secret values (``mask_secrets``). A rule that reads
    a secret field (``compiler.policy.reads``) is evaluated on
    ``secret_values.config`` instead, and what is reported about it shows no
    value (``_masked``).

    Raises:
        SecretsError: a rule reads a secret field whose value is not at hand (at the rule's line).
        InputError: a rule's cost bound is over ``MAX_RULE_COST`` for this target (at the rule's line).
    """
    applicable = [p for p in policies if p.applies(target, config)]
    if not applicable:
        return [Outcome(policy=p, status="skip") for p in policies]
    reading = {p.name: _secrets_read(p, secret_values) for p in applicable}
    act = Activation(config, target_value(target), dict(secrets), union_modules(p.program for p in applicable))
    unfit = UnfitValues(config)
    real: tuple[Activation, UnfitValues] | None = None
    out = []
    for policy in policies:
        if policy not in applicable:
            out.append(Outcome(policy=policy, status="skip"))
            continue
        fields = reading[policy.name]
        use, use_unfit = act, unfit
        if fields:
            assert secret_values is not None
            if secret_values.config is None:
                raise SecretsError(
                    f"{policy.origin.location()}: policy {policy.name} reads secret {', '.join(fields)}: "
                    f"evaluating it needs the compiler identity ({ADVICE})"
                )
            if real is None:
                real_act = Activation(secret_values.config, target_value(target), dict(secrets), act.modules)
                real = (real_act, UnfitValues(secret_values.config))
            use, use_unfit = real
        hit = use_unfit.read_by(policy.program.paths)
        if hit is not None:
            outcome = Outcome(policy=policy, status="error", detail=hit[0], subject=hit[1])
            out.append(_masked(outcome, fields) if fields else outcome)
            continue
        _check_cost(policy, use, fields)
        outcome = _outcome(policy, use)
        out.append(_masked(outcome, fields) if fields else outcome)
    return out


def _secrets_read(policy: Policy, secret_values: SecretValues | None) -> list[str]:
    if secret_values is None:
        return []
    return secrets_read(policy.program.reads, secret_values.paths)


def _check_cost(policy: Policy, act: Activation, fields: Sequence[str]) -> None:
    tree = policy.program.tree
    if tree is None:
        return
    cost = rule_cost(tree, act.variables)
    if cost > MAX_RULE_COST:
        # The figure follows from the values the rule reads (lists.range(config.vault.pin) costs the pin).
        steps = f"over {MAX_RULE_COST:,}" if fields else f"{cost:,}"
        hidden = f"; values not shown: the rule reads secret {', '.join(fields)}" if fields else ""
        raise InputError(
            f"{policy.origin.location()}: policy {policy.name}: evaluating the rule could take {steps} steps "
            f"for this target, over the limit of {MAX_RULE_COST:,} (see policies/README.md{hidden})"
        )


def _outcome(policy: Policy, act: Activation) -> Outcome:
    try:
        value = act.run(policy.program)
    except EVAL_ERRORS as e:
        return Outcome(policy=policy, status="error", detail=eval_error(e))
    if value is True:
        return Outcome(policy=policy, status="pass")
    from compiler.policy.explain import explain, rule_subject, show  # a rule that did not pass (issue 14 §1)

    if value is False:
        why = explain(policy.rule, act.evaluate)
        if why is None:
            detail, subject = f"{one_line(policy.rule)} is false", rule_subject(policy.rule, act.evaluate)
            return Outcome(policy=policy, status="fail", detail=detail, subject=subject)
        return Outcome(policy=policy, status="fail", detail=why.text, subject=why.subject)
    return Outcome(policy=policy, status="error", detail=f"the rule gave {show(value)}, not a boolean")


def _masked(outcome: Outcome, fields: Sequence[str]) -> Outcome:
    """An outcome of a rule that read secret ``fields``, with every value left out of its detail.

    Explanations and the library's messages quote values, so they are replaced:
    the detail names the rule and the secret fields, never what they hold.
    """
    hidden = f"values not shown: the rule reads secret {', '.join(fields)}"
    if outcome.status == "fail":
        return replace(outcome, detail=f"{one_line(outcome.policy.rule)} is false ({hidden})")
    if outcome.status == "error":
        return replace(outcome, detail=f"the rule cannot be evaluated ({hidden})")
    return outcome


class UnfitValues:
    """The values of one target that cannot reach CEL unchanged (issue 10 §6), found once per subtree."""

    def __init__(self, config: Mapping[str, JSONValue]) -> None:
        self._config = dict(config)
        self._seen: dict[JsonPath, tuple[str, JsonPath] | None] = {}

    def read_by(self, paths: Iterable[JsonPath] | None) -> tuple[str, JsonPath] | None:
        """Why a rule selecting ``paths`` (None: anything) would not see a value unchanged, and the value's path."""
        for path in [(m,) for m in sorted(self._config)] if paths is None else paths:
            found = resolve(self._config, path)
            if found is not None and found[0] not in self._seen:
                self._seen[found[0]] = self._why(found[0], cast(JSONValue, found[1]))
            why = None if found is None else self._seen[found[0]]
            if why is not None:
                return why
        return None

    @staticmethod
    def _why(at: JsonPath, value: JSONValue) -> tuple[str, JsonPath] | None:
        unfit = cel_unfit(value)
        if unfit is None:
            return None
        where = (*at, *unfit[0])
        return (
            f"{cel_selection(str(where[0]), where[1:])} is {unfit[1]}, beyond CEL's int "
            f"(64-bit signed, {CEL_INT_MIN} to {CEL_INT_MAX}): rules cannot read it unchanged",
            where,
        )


def eval_error(e: Exception) -> str:
    if FAILED_CALL in str(e) and last_failure[0]:
        return last_failure[0]
    if isinstance(e, KeyError):
        from compiler.policy.explain import show

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
    policies: PolicySet,
    result: CompileResult,
    secret_meta: Mapping[str, JSONValue],
    *,
    now: dt.datetime,
    secrets_at_hand: bool = False,
) -> list[Diagnostic]:
    """The policy diagnostics of one compiled target.

    Rules see secret values masked, except rules that read them, which see the
    values when ``secrets_at_hand`` (and refuse to run otherwise; ``evaluate_target``).
    """
    if not policies:
        return []
    secret = secret_fields(result)  # marked x-secret, or set by a SOPS file: rules see neither unmasked
    config = mask_secrets(result.modules, secret)  # type: ignore[arg-type]
    values = SecretValues(paths=secret, config=result.modules if secrets_at_hand else None)  # type: ignore[arg-type]
    outcomes = evaluate_target(policies.policies, result.target, config, secret_meta, values)
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
                value_path=o.subject,
            )
        )
    return out
