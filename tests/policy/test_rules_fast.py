"""The policies file's exact check (compiler.policy.rules) against its pydantic models (rules_schema).

The exact check reads a valid policies file without building the models (issue 14 §1). It may
leave a value to the models, never accept one they refuse, and never build other values.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from compiler.errors import InputError
from compiler.policy import rules, rules_schema
from compiler.policy.rules import parse_policy_file, policy_file_from
from tests._near_valid import Shapes, often

PAIRS = [(getattr(rules, n), getattr(rules_schema, n)) for n in ("MatchSpec", "RuleSpec", "WaiverSpec", "PolicyFile")]
TEXTS = ["a", "prod", "x.y_z-1", "A" * 128, "A" * 129, "-a", "", "a\n", "error", "warning", "info", "prod@*"]
TEXTS += ["2027-01-31", "2027-1-31", "\uff12\uff10\uff12\uff17-01-31", "2027-01-31\n", "2027-13-40", "x > 1"]
ATOM = st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1.5]), st.sampled_from(TEXTS))
JUNK = st.one_of(ATOM, st.lists(ATOM, max_size=2), st.dictionaries(st.sampled_from(TEXTS), ATOM, max_size=2))
SHAPES = Shapes(ATOM, JUNK)
mapping, field_value = SHAPES.mapping, SHAPES.field_value


def texts() -> st.SearchStrategy[Any]:
    return often(st.one_of(st.none(), st.lists(st.sampled_from(TEXTS), max_size=3)), JUNK)


RULE = mapping(
    {"name": field_value(["a", "prod", "x.y_z-1"]), "rule": field_value(["x > 1"])},
    {
        "description": st.one_of(st.none(), field_value(["why"])),
        "severity": field_value(["error", "warning"]),
        "match": mapping({}, {"environments": texts(), "tenants": texts(), "modules": texts()}),
    },
)
WAIVER = mapping(
    {
        "policy": field_value(["a"]),
        "reason": field_value(["why"]),
        "owner": field_value(["me"]),
        "expires": field_value(["2027-01-31"]),
    },
    {"targets": texts()},
)
FILES = mapping({}, {"rules": often(st.lists(RULE, max_size=3), JUNK), "waivers": often(st.lists(WAIVER), JUNK)})


def models_accept(value: Any) -> BaseModel | None:
    try:
        return rules_schema.PolicyFile.model_validate(value)
    except PydanticValidationError:
        return None


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(FILES)
def test_the_exact_check_accepts_only_what_the_models_accept_and_builds_the_same(value: Any) -> None:
    fast = policy_file_from(value)
    model = models_accept(value)
    if fast is not None:
        assert model is not None, "the exact check accepted what the models refuse"
        assert dataclasses.asdict(fast) == model.model_dump()
    if model is not None:
        built = policy_file_from(model.model_dump())
        assert built is not None
        assert dataclasses.asdict(built) == model.model_dump()


@pytest.mark.parametrize(("runtime", "model"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_the_runtime_types_have_the_models_fields_and_defaults(runtime: type, model: type[BaseModel]) -> None:
    fields = dataclasses.fields(runtime)
    assert [f.name for f in fields] == list(model.model_fields)
    for f in fields:
        info = model.model_fields[f.name]
        if f.default is not dataclasses.MISSING:
            assert info.default == f.default
        elif f.default_factory is not dataclasses.MISSING:
            made = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
            made = made.model_dump() if isinstance(made, BaseModel) else made
            built = f.default_factory()
            assert (dataclasses.asdict(built) if dataclasses.is_dataclass(built) else built) == made
        else:
            assert info.is_required()


VALID = b"""\
rules:
  - name: cool
    description: cool models
    severity: warning
    match: {environments: [prod], tenants: [acme], modules: [engine]}
    rule: config.engine.t <= 1.0
waivers:
  - {policy: cool, targets: ["prod@*"], reason: trial, owner: me@example.com, expires: 2027-01-31}
"""


def test_a_valid_policies_file_builds_no_pydantic_model() -> None:
    probe = (
        "import sys; from compiler.policy.rules import parse_policy_file;"
        f"p, w = parse_policy_file({VALID!r}, path='policies/a.yaml'); print(len(p), len(w),"
        " sorted(m for m in ('pydantic', 'compiler.policy.rules_schema') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "1", "[]"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"- {name: a, rule: x, severity: info}\n", "a.yaml:1:22: [0].severity: Input should be 'error' or 'warning'"),
        (b"- {name: '-a', rule: x}\n", "[0].name: must be a name of letters, digits, . _ -"),
        (b"waivers: [{policy: a, reason: r, owner: o, expires: '2027-1-31'}]\n", "expires: must be YYYY-MM-DD"),
        # digits of another script: pydantic-core's \\d takes them, the date parser does not (Hypothesis found it)
        (
            "waivers: [{policy: a, reason: r, owner: o, expires: '\uff12\uff10\uff12\uff17-01-31'}]\n".encode(),
            "expires: must be YYYY-MM-DD",
        ),
        (b"- {name: a, rule: x, mach: {}}\n", "[0].mach: unknown field (did you mean 'match'?)"),
    ],
)
def test_what_the_exact_check_leaves_the_models_refuse_with_their_message(text: bytes, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        parse_policy_file(text, path="policies/a.yaml")
