"""The schema of ``policies/*.yaml`` files, as pydantic models (STYLE R9).

These models define what a policies file may hold. Loading pydantic and building
them costs about a tenth of a second of a command's start (issue 14 §1), so
``compiler.policy.rules`` reads a file first with an exact check that accepts a
subset of what these models accept and builds the same values; every file it
does not accept at once is validated here, which gives the error at its line
(tests/policy/test_rules_fast.py holds the two together).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from compiler.policy.rules import DATE_PATTERN, POLICY_NAME_PATTERN

Severity = Literal["error", "warning"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class MatchSpec(_Model):
    environments: list[str] | None = None
    tenants: list[str] | None = None
    modules: list[str] | None = None


class RuleSpec(_Model):
    name: Annotated[str, StringConstraints(pattern=POLICY_NAME_PATTERN)]
    description: str | None = None
    severity: Severity = "error"
    match: MatchSpec = Field(default_factory=MatchSpec)
    rule: Annotated[str, StringConstraints(min_length=1)]


class WaiverSpec(_Model):
    policy: str
    targets: list[str] | None = None
    reason: Annotated[str, StringConstraints(min_length=1)]
    owner: Annotated[str, StringConstraints(min_length=1)]
    expires: Annotated[str, StringConstraints(pattern=DATE_PATTERN)]


class PolicyFile(_Model):
    rules: list[RuleSpec] = Field(default_factory=list)
    waivers: list[WaiverSpec] = Field(default_factory=list)
