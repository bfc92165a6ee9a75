"""Policy test cases, ``policies/tests/*.yaml``, for ``llmcc policy test`` (like ``opa test`` / ``kyverno test``).

A file is a list of cases::

    - name: a production temperature above 1.0 fails
      target: prod@acme              # ENV or ENV@TENANT; need not be in llmcc.yaml
      config:                        # the modules the rules read, as a fragment (not merged with anything)
        inference-engine:
          model: {temperature: 1.4}
      secrets:                       # optional: metadata by module.path; missing fields are null
        inference-engine.providers.openai.api_key: {age_days: 120}
      expect:                        # per policy: pass | fail | error | skip
        prod-temperature-bounded: fail

Only the policies named in ``expect`` are evaluated, and waivers do not
apply: a case tests the rule, not today's exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from compiler.errors import InputError, UsageError
from compiler.fields import first_error
from compiler.jsontypes import JSONValue
from compiler.load.yaml import load_document
from compiler.policy.evaluate import Status, evaluate_target
from compiler.policy.rules import POLICIES, PolicySet
from compiler.project import Target, parse_target

TESTS = f"{POLICIES}/tests"
SECRET_FIELDS = (
    "module",
    "path",
    "file",
    "rotated_at",
    "rotated_at_source",
    "rotate_every",
    "rotate_every_days",
    "age_days",
    "placeholder",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CaseSpec(_Model):
    name: Annotated[str, StringConstraints(min_length=1)]
    target: str
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    expect: dict[str, Literal["pass", "fail", "error", "skip"]] = Field(min_length=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    name: str
    location: str  # path:line of the case
    target: Target
    config: dict[str, JSONValue]
    secrets: dict[str, JSONValue]
    expect: dict[str, Status]


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    case: Case
    failures: list[str]  # "policy: expected fail, got pass (why)"

    @property
    def ok(self) -> bool:
        return not self.failures


def load_cases(data: bytes, *, path: str, policies: PolicySet) -> list[Case]:
    """The cases of one test file.

    Raises:
        InputError: bad YAML, a field that does not fit, a bad target, an
            unknown policy in ``expect`` or an unknown secret field (at path:line).
    """
    doc = load_document(data, path=path, layer="policy-test")
    if doc.value is None:
        return []
    if not isinstance(doc.value, list):
        raise InputError(f"{path}:1:1: a policy test file is a list of cases (name, target, config, expect)")
    cases = []
    for i, item in enumerate(doc.value):
        try:
            spec = CaseSpec.model_validate(item)
        except PydanticValidationError as e:
            inner, msg = first_error(e, CaseSpec)
            loc = (i, *inner)
            field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
            raise InputError(f"{doc.origin(loc).location()}: {field}: {msg}") from e
        where = doc.origin((i,)).location()
        try:
            target = parse_target(spec.target)
        except UsageError as e:
            raise InputError(f"{doc.origin((i, 'target')).location()}: {e}") from e
        for name in spec.expect:
            if policies.get(name) is None:
                raise InputError(f"{doc.origin((i, 'expect', name)).location()}: expect: unknown policy {name!r}")
        secrets: dict[str, JSONValue] = {}
        for key, given in spec.secrets.items():
            unknown = sorted(set(given) - set(SECRET_FIELDS))
            if unknown:
                where_s = doc.origin((i, "secrets", key, unknown[0])).location()
                raise InputError(f"{where_s}: unknown secret metadata field {unknown[0]!r}")
            module, _, rest = key.partition(".")
            entry: dict[str, JSONValue] = dict.fromkeys(SECRET_FIELDS)
            entry.update(module=module, path=rest)
            entry.update(given)
            secrets[key] = entry
        cases.append(
            Case(
                name=spec.name,
                location=":".join(where.split(":")[:2]),
                target=target,
                config=spec.config,
                secrets=secrets,
                expect=dict(spec.expect),
            )
        )
    return cases


def run_case(case: Case, policies: PolicySet) -> CaseResult:
    chosen = [p for p in policies.policies if p.name in case.expect]
    outcomes = evaluate_target(chosen, case.target, case.config, case.secrets)
    failures = []
    for o in outcomes:
        want = case.expect[o.policy.name]
        if o.status != want:
            why = f" ({o.detail})" if o.detail else ""
            failures.append(f"{o.policy.name}: expected {want}, got {o.status}{why}")
    return CaseResult(case=case, failures=failures)
