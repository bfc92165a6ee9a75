"""``policies/*.yaml``: CEL rules and their waivers (README "Policies, pre-commit and CI"). A trust boundary (STYLE R9).

A policies file is either a list of rules (the form README "Policies, pre-commit and CI" shows) or a
mapping ``{rules: [...], waivers: [...]}``; a file of only waivers is fine::

    - name: prod-temperature-bounded
      description: Production models run with temperature at most 1.0
      severity: error                 # error (default) fails the build, warning reports
      match: {environments: [prod]}   # also tenants: [...], modules: [...]; none = every target
      rule: config["inference-engine"].model.temperature <= 1.0

    waivers:
      - policy: prod-temperature-bounded
        targets: [prod@acme]          # fnmatch patterns; none = every target
        reason: acme's evaluation runs at 1.2 until the contract review
        owner: ml-platform@example.com
        expires: 2027-01-31           # the last day it waives

Invariants of a loaded ``PolicySet``:

1. Every rule compiled once, here; a rule that does not parse, calls an
   unknown function or names an unknown variable is an ``InputError`` at the
   rule's file:line (exit 2), like any other bad input.
2. Policy names are unique across all files; every waiver names a policy.
3. Files are read in name order; policies keep file order (reports are stable).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from compiler.diagnostics import Origin
from compiler.errors import InputError
from compiler.jsonpath import JsonPath
from compiler.load.yaml import Document, load_document
from compiler.policy import POLICIES as POLICIES  # re-exported: where testing and hook take it
from compiler.policy import policy_files
from compiler.policy.cel import RuleProgram, compile_rule
from compiler.project import Project, Target
from compiler.sources.base import SourceTree
from compiler.suggestions import suggestion

POLICY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"  # ASCII digits: pydantic-core's \d also takes other scripts' digits
_NAME = re.compile(POLICY_NAME_PATTERN)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")  # ASCII digits: any other form goes to the models
Severity = Literal["error", "warning"]

if TYPE_CHECKING:
    from pydantic import ValidationError as PydanticValidationError


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchSpec:
    environments: list[str] | None = None
    tenants: list[str] | None = None
    modules: list[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSpec:
    name: str
    description: str | None = None
    severity: Severity = "error"
    match: MatchSpec = field(default_factory=MatchSpec)
    rule: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WaiverSpec:
    policy: str
    targets: list[str] | None = None
    reason: str
    owner: str
    expires: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyFile:
    """A policies file's rules and waivers, as the models of ``compiler.policy.rules_schema`` give them."""

    rules: list[RuleSpec] = field(default_factory=list)
    waivers: list[WaiverSpec] = field(default_factory=list)


class _Unsure(Exception):
    """The exact check does not accept a value at once: the pydantic models decide."""


def _mapping(value: object, fields: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, object]:
    if type(value) is not dict or not value.keys() <= set(fields) or not set(required) <= value.keys():
        raise _Unsure
    return value


def _text(value: object, pattern: re.Pattern[str] | None = None, *, min_length: int = 0) -> str:
    if type(value) is not str or len(value) < min_length or (pattern is not None and not pattern.fullmatch(value)):
        raise _Unsure
    return value


def _texts(value: object) -> list[str] | None:
    if value is None:
        return None
    if type(value) is not list:
        raise _Unsure
    return [_text(v) for v in value]


def _rule(value: object) -> RuleSpec:
    v = _mapping(value, ("name", "description", "severity", "match", "rule"), ("name", "rule"))
    description = v.get("description")
    severity = _text(v.get("severity", "error"))
    if severity not in ("error", "warning"):
        raise _Unsure
    m = _mapping(v.get("match", {}), ("environments", "tenants", "modules"))
    return RuleSpec(
        name=_text(v["name"], _NAME),
        description=None if description is None else _text(description),
        severity="error" if severity == "error" else "warning",
        match=MatchSpec(
            environments=_texts(m.get("environments")),
            tenants=_texts(m.get("tenants")),
            modules=_texts(m.get("modules")),
        ),
        rule=_text(v["rule"], min_length=1),
    )


def _waiver(value: object) -> WaiverSpec:
    required = ("policy", "reason", "owner", "expires")
    v = _mapping(value, (*required, "targets"), required)
    return WaiverSpec(
        policy=_text(v["policy"]),
        targets=_texts(v.get("targets")),
        reason=_text(v["reason"], min_length=1),
        owner=_text(v["owner"], min_length=1),
        expires=_text(v["expires"], _DATE),
    )


def policy_file_from(value: object) -> PolicyFile | None:
    """The rules and waivers ``value`` (the mapping form) describes, when it is in the exact form
    the models of ``compiler.policy.rules_schema`` accept; None when the models must decide."""
    try:
        v = _mapping(value, ("rules", "waivers"))
        rules, waivers = v.get("rules", []), v.get("waivers", [])
        if type(rules) is not list or type(waivers) is not list:
            raise _Unsure
        return PolicyFile(rules=[_rule(r) for r in rules], waivers=[_waiver(w) for w in waivers])
    except _Unsure:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """One compiled rule. ``origin`` is the rule's entry in its policies file."""

    name: str
    description: str | None
    severity: Severity
    match: MatchSpec
    program: RuleProgram
    origin: Origin

    @property
    def rule(self) -> str:
        return self.program.source

    def applies(self, target: Target, modules: Container[str]) -> bool:
        """Whether the rule is evaluated for ``target`` (``match.environments`` covers its tenant targets)."""
        m = self.match
        if m.environments is not None and target.environment not in m.environments:
            return False
        if m.tenants is not None and target.tenant not in m.tenants:
            return False
        return m.modules is None or all(name in modules for name in m.modules)


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiver:
    """A time-limited exception to one policy for some targets."""

    policy: str
    targets: tuple[str, ...] | None
    reason: str
    owner: str
    expires: dt.date
    origin: Origin

    def covers(self, policy: str, target: Target) -> bool:
        if policy != self.policy:
            return False
        return self.targets is None or any(_glob(p).fullmatch(target.name) for p in self.targets)

    def expired(self, today: dt.date) -> bool:
        """A waiver waives through its ``expires`` day, and not after."""
        return today > self.expires


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySet:
    policies: tuple[Policy, ...] = ()
    waivers: tuple[Waiver, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.policies)

    def get(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)


def _glob(pattern: str) -> re.Pattern[str]:
    """``prod@*`` style patterns: ``*`` is any run of characters, everything else literal."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def check_names(policies: PolicySet, project: Project, modules: Sequence[str]) -> None:
    """Every name a rule's ``match`` or a waiver's ``targets`` uses exists: a misspelt one
    would make the rule or the waiver apply nowhere, silently (issue 10: fail validate instead).

    Raises:
        InputError: at the rule or waiver, naming the unknown name and the closest known one.
    """
    targets = [t.name for t in project.targets()]
    known = {
        "environments": list(project.manifest.environments),
        "tenants": list(project.manifest.tenants),
        "modules": list(modules),
    }
    for policy in policies.policies:
        for section, names in known.items():
            for name in getattr(policy.match, section) or ():
                if name not in names:
                    where = policy.origin.location()
                    raise InputError(
                        f"{where}: policy {policy.name}: match.{section}: {name!r} is not one of "
                        f"llmcc.yaml's {section}{suggestion(name, names)}"
                    )
    for waiver in policies.waivers:
        for pattern in waiver.targets or ():
            if not any(_glob(pattern).fullmatch(t) for t in targets):
                raise InputError(
                    f"{waiver.origin.location()}: waiver of policy {waiver.policy}: targets: {pattern!r} matches no "
                    f"target{suggestion(pattern, targets)}"
                )


def load_policies(tree: SourceTree) -> PolicySet:
    """Every ``policies/*.yaml`` file (not ``policies/tests/``), compiled; empty without the directory.

    Raises:
        InputError: bad YAML, a field that does not fit, a duplicate name, a
            waiver of an unknown policy, or a rule that is not valid CEL
            (all at file:line).
    """
    policies: list[Policy] = []
    waivers: list[Waiver] = []
    for path in policy_files(tree):
        p, w = parse_policy_file(tree.read(path), path=path)
        policies += p
        waivers += w
    seen: dict[str, Policy] = {}
    for policy in policies:
        if policy.name in seen:
            first = seen[policy.name].origin.location()
            raise InputError(f"{policy.origin.location()}: policy name {policy.name!r} is already used at {first}")
        seen[policy.name] = policy
    for waiver in waivers:
        if waiver.policy not in seen:
            raise InputError(f"{waiver.origin.location()}: waiver of unknown policy {waiver.policy!r}")
    return PolicySet(policies=tuple(policies), waivers=tuple(waivers))


def parse_policy_file(data: bytes, *, path: str) -> tuple[list[Policy], list[Waiver]]:
    """The rules and waivers of one policies file (pure: the caller reads the bytes)."""
    doc = load_document(data, path=path, layer="policy")
    value = doc.value
    if value is None:
        return [], []
    listed = isinstance(value, list)
    if not listed and not isinstance(value, dict):
        raise InputError(f"{path}:1:1: a policies file is a list of rules, or a mapping with rules: and waivers:")
    spec = policy_file_from({"rules": value} if listed else value)
    if spec is None:
        spec = _validate_with_models(doc, listed)
    prefix: JsonPath = () if listed else ("rules",)
    policies = []
    for i, rs in enumerate(spec.rules):
        rule_origin = doc.origin((*prefix, i, "rule"))
        try:
            program = compile_rule(rs.rule)
        except ValueError as e:
            raise InputError(f"{rule_origin.location()}: policy {rs.name}: {e}") from e
        policies.append(
            Policy(
                name=rs.name,
                description=rs.description,
                severity=rs.severity,
                match=rs.match,
                program=program,
                origin=doc.origin((*prefix, i)),
            )
        )
    waivers = []
    for i, ws in enumerate(spec.waivers):
        origin = doc.origin(("waivers", i))
        try:
            expires = dt.date.fromisoformat(ws.expires)
        except ValueError as e:
            where = doc.origin(("waivers", i, "expires")).location()
            raise InputError(f"{where}: expires: {ws.expires!r} is not a date (YYYY-MM-DD)") from e
        targets = tuple(ws.targets) if ws.targets is not None else None
        waivers.append(
            Waiver(policy=ws.policy, targets=targets, reason=ws.reason, owner=ws.owner, expires=expires, origin=origin)
        )
    return policies, waivers


def _validate_with_models(doc: Document, listed: bool) -> PolicyFile:
    """The file as the pydantic models validate it: their first error, at its line, or the values."""
    from pydantic import ValidationError as PydanticValidationError

    from compiler.policy import rules_schema

    value = doc.value
    try:
        model = rules_schema.PolicyFile.model_validate({"rules": value} if listed else value)
    except PydanticValidationError as e:
        raise _input_error(e, doc, listed) from e
    spec = policy_file_from(model.model_dump())
    if spec is None:  # the models accepted a form the exact check does not know: a bug here
        raise AssertionError(f"{doc.path}: the models' values do not pass the exact check")
    return spec


def _input_error(e: PydanticValidationError, doc: Document, listed: bool) -> InputError:
    from compiler.fields import first_error, pattern_mismatch
    from compiler.policy import rules_schema

    loc, msg = first_error(e, rules_schema.PolicyFile)
    shown = loc[1:] if listed and loc[:1] == ("rules",) else loc
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in shown).lstrip(".") or "(top level)"
    if pattern_mismatch(e, loc):
        msg = "must be YYYY-MM-DD" if loc[-1:] == ("expires",) else "must be a name of letters, digits, . _ -"
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return InputError(f"{doc.origin(shown).location()}: {field}: {msg}{more}")
