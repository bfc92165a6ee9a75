"""Evaluating policies: outcomes, the explanations users read, waivers, and secrets never seen by rules."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.diagnostics import Severity
from compiler.jsonpath import split_address
from compiler.masking import SECRET_TEXT as SECRET_MASK
from compiler.policy.cel import (
    cel_selection,
    cel_unfit,
    mask_secrets,
    referenced_modules,
    referenced_paths,
)
from compiler.policy.evaluate import evaluate_target, policy_diagnostics
from compiler.policy.explain import split_top
from compiler.project import Target
from tests.policy._support import policies_from

PROD = Target("prod")
TODAY = dt.date(2026, 11, 22)


def outcome(rule: str, config: dict[str, object], *, secrets: dict[str, object] | None = None, target: Target = PROD):
    ps = policies_from(f"- name: p\n  rule: {rule!r}\n")
    (o,) = evaluate_target(ps.policies, target, config, secrets or {})  # type: ignore[arg-type]
    return o.status, o.detail


@pytest.mark.parametrize(
    ("rule", "config", "detail"),
    [
        (
            'config["inference-engine"].model.temperature <= 1.0',
            {"inference-engine": {"model": {"temperature": 1.4}}},
            'config["inference-engine"].model.temperature is 1.4, expected <= 1.0',
        ),
        (
            'config.gw.routes.all(r, r.tls && r.upstream.startsWith("https://"))',
            {"gw": {"routes": [{"tls": True, "upstream": "https://a"}, {"tls": True, "upstream": "http://b"}]}},
            'config.gw.routes[1].upstream is "http://b", expected it to start with "https://"',
        ),
        (
            "config.gw.routes.all(r, r.tls)",
            {"gw": {"routes": [{"tls": False}]}},
            "config.gw.routes[0].tls is false",
        ),
        (
            'config.rl.all(t, config.rl[t].rpm <= {"free": 60}[t])',
            {"rl": {"free": {"rpm": 600}}},
            'config.rl["free"].rpm is 600, expected <= 60 ({"free": 60}["free"])',
        ),
        (
            "lists.range(size(config.c.t) - 1).all(i, config.c.t[i] < config.c.t[i + 1])",
            {"c": {"t": [80, 100, 95]}},
            "config.c.t[1] is 100, expected < 95 (config.c.t[1 + 1])",
        ),
        (
            '!config.d.host.matches("(^|[.-])prod([.-]|$)")',
            {"d": {"host": "pg-prod.internal"}},
            'config.d.host is "pg-prod.internal", expected it not to match "(^|[.-])prod([.-]|$)"',
        ),
        (
            'config.t.tier in ["free", "pro"]',
            {"t": {"tier": "gold"}},
            'config.t.tier is "gold", expected in ["free", "pro"]',
        ),
        ("config.a.x || config.a.y", {"a": {"x": False, "y": False}}, "config.a.x || config.a.y is false"),
    ],
)
def test_a_failing_rule_names_the_offending_value(rule: str, config: dict[str, object], detail: str) -> None:
    assert outcome(rule, config) == ("fail", detail)


def test_secrets_metadata_is_explained_by_key() -> None:
    secrets = {"m.a.api_key": {"age_days": 10}, "m.b.api_key": {"age_days": 120}, "m.c.token": {"age_days": 999}}
    rule = 'secrets.filter(k, k.endsWith(".api_key")).all(k, secrets[k].age_days <= 90)'
    assert outcome(rule, {}, secrets=secrets) == ("fail", 'secrets["m.b.api_key"].age_days is 120, expected <= 90')


@pytest.mark.parametrize(
    ("rule", "config", "status", "detail"),
    [
        ("config.m.t <= 1.0", {"m": {"t": 1}}, "pass", ""),  # an int compares with a double bound
        ("config.m.x != null", {"m": {"x": 3}}, "pass", ""),
        ("config.m.missing.deeper == 1", {"m": {}}, "error", 'no such key "missing"'),
        ("config.m.t + 1", {"m": {"t": 1}}, "error", "the rule gave 2, not a boolean"),
        ('config.m.t < "a"', {"m": {"t": 1}}, "error", "no such overload"),
    ],
)
def test_outcomes_and_evaluation_errors(rule: str, config: dict[str, object], status: str, detail: str) -> None:
    got_status, got_detail = outcome(rule, config)
    assert got_status == status
    assert got_detail.startswith(detail)


def test_match_skips_other_targets_and_missing_modules() -> None:
    ps = policies_from(
        """\
        - {name: prod-only, match: {environments: [prod]}, rule: "false"}
        - {name: acme-only, match: {tenants: [acme]}, rule: "false"}
        - {name: needs-m, match: {modules: [m]}, rule: "false"}
        """
    )
    got = {o.policy.name: o.status for o in evaluate_target(ps.policies, Target("staging", "acme"), {}, {})}
    assert got == {"prod-only": "skip", "acme-only": "fail", "needs-m": "skip"}


def test_rules_see_the_target() -> None:
    rule = 'target.environment == "prod" && target.tenant == "acme" && target.name == "prod@acme"'
    assert outcome(rule, {}, target=Target("prod", "acme"))[0] == "pass"
    assert outcome("target.tenant == null", {})[0] == "pass"


def test_rules_never_see_secret_values() -> None:
    modules = {"m": {"db": {"password": "hunter2", "host": "h"}, "keys": [{"k": "s3cr3t"}]}}
    masked = mask_secrets(modules, {"m": [("db", "password"), ("keys", 0, "k")]})  # type: ignore[arg-type]
    assert masked == {"m": {"db": {"password": SECRET_MASK, "host": "h"}, "keys": [{"k": SECRET_MASK}]}}
    assert modules["m"]["db"]["password"] == "hunter2"  # the compiled value is untouched
    status, detail = outcome('config.m.db.password == "x"', masked)
    assert (status, detail) == ("fail", 'config.m.db.password is "<secret>", expected == "x"')


WAIVERS = """\
rules:
  - {name: p, description: Why it matters, rule: "config.m.t <= 1.0"}
waivers:
  - {policy: p, targets: ["prod*"], reason: pilot, owner: ml@example.com, expires: 2026-11-30}
  - {policy: p, targets: [staging], reason: old, owner: ops@example.com, expires: 2026-01-31}
"""


def test_a_waiver_turns_a_failure_into_a_warning_until_it_expires() -> None:
    ps = policies_from(WAIVERS)
    config = {"m": {"t": 2}}
    waived = policy_diagnostics(evaluate_target(ps.policies, PROD, config, {}), ps.waivers, PROD, TODAY)
    assert [(d.severity, d.format()) for d in waived] == [
        (
            Severity.WARNING,
            "policies/test.yaml:2:5: warning: policy p failed (waived until 2026-11-30 by ml@example.com: pilot): "
            "config.m.t is 2, expected <= 1.0 (target prod)\n"
            "    rule: config.m.t <= 1.0\n    policy: Why it matters",
        )
    ]
    later = policy_diagnostics(evaluate_target(ps.policies, PROD, config, {}), ps.waivers, PROD, dt.date(2026, 12, 1))
    assert [(d.severity, d.origin.location() if d.origin else None) for d in later] == [
        (Severity.WARNING, "policies/test.yaml:4:5"),
        (Severity.ERROR, "policies/test.yaml:2:5"),
    ]
    assert later[0].message == ("waiver of policy p expired on 2026-11-30 (ml@example.com: pilot); it no longer waives")
    staging = Target("staging")
    expired = policy_diagnostics(evaluate_target(ps.policies, staging, config, {}), ps.waivers, staging, TODAY)
    assert [d.severity for d in expired] == [Severity.WARNING, Severity.ERROR]
    dev = Target("dev")
    assert [
        d.severity for d in policy_diagnostics(evaluate_target(ps.policies, dev, config, {}), ps.waivers, dev, TODAY)
    ] == [Severity.ERROR]


def test_a_warning_rule_only_warns() -> None:
    ps = policies_from('- {name: w, severity: warning, rule: "false"}\n')
    (d,) = policy_diagnostics(evaluate_target(ps.policies, PROD, {}, {}), (), PROD, TODAY)
    assert d.severity is Severity.WARNING
    assert d.rule == "w"
    assert d.target == "prod"


def test_referenced_modules_narrow_only_literal_selections() -> None:
    assert referenced_modules('config["a-b"].x && config.c.y > 1') == frozenset({"a-b", "c"})
    assert referenced_modules("secrets.size() > 0") == frozenset()
    assert referenced_modules("config.all(m, m != '')") is None
    assert referenced_modules('size(config) > 0 && config["a"].x') is None


@settings(deadline=None)
@given(
    st.dictionaries(
        st.text("abc", min_size=1, max_size=2),
        st.recursive(
            st.integers() | st.text(max_size=3) | st.none(),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("xy", max_size=2), inner, max_size=3),
            max_leaves=8,
        ),
        max_size=3,
    ),
    st.data(),
)
def test_masking_hides_exactly_the_secret_paths(modules: dict[str, object], data: st.DataObject) -> None:
    paths: dict[str, list[tuple[str | int, ...]]] = {}
    leaves: dict[str, list[tuple[str | int, ...]]] = {}
    for module, value in modules.items():
        found: list[tuple[str | int, ...]] = []
        stack: list[tuple[object, tuple[str | int, ...]]] = [(value, ())]
        while stack:
            node, path = stack.pop()
            if isinstance(node, dict):
                stack += [(v, (*path, k)) for k, v in node.items()]
            elif isinstance(node, list):
                stack += [(v, (*path, i)) for i, v in enumerate(node)]
            elif path and node is not None:
                found.append(path)
        leaves[module] = found
        paths[module] = data.draw(st.lists(st.sampled_from(found), unique=True)) if found else []
    masked = mask_secrets(modules, paths)  # type: ignore[arg-type]

    def get(value: object, path: tuple[str | int, ...]) -> object:
        for part in path:
            value = value[part]  # type: ignore[index]
        return value

    for module, chosen in paths.items():
        for path in leaves[module]:
            want = SECRET_MASK if path in chosen else get(modules[module], path)
            assert get(masked[module], path) == want


@settings(deadline=None)
@given(
    st.lists(st.sampled_from(["a", "x.y", '"&&"', "(b && c)", "f(d, e)", "[1 && 2]", "'q'"]), min_size=1, max_size=5)
)
def test_splitting_at_the_top_level_keeps_brackets_and_strings(parts: list[str]) -> None:
    assert split_top(" && ".join(parts), "&&") == parts


def test_explaining_gives_up_after_a_fixed_number_of_evaluations() -> None:
    from compiler.policy.explain import explain

    calls: list[str] = []

    def evaluate(expression: str, bindings: dict[str, int]) -> object:
        calls.append(expression)
        values = {"config.xs": list(range(100)), "99": 99, "x": bindings.get("x")}
        return values[expression] if expression in values else bindings["x"] < 99

    assert explain("config.xs.all(x, x < 99)", evaluate, budget=50) is None
    assert len(calls) == 50
    found = explain("config.xs.all(x, x < 99)", evaluate)
    assert found is not None
    assert found.text == "99, expected < 99"
    assert found.subject == ("xs", 99)  # the item, by its index: data, not read back from the words


# --- values CEL cannot hold (issue 10 §6) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "paths"),
    [
        ("config.m.a > 1", (("m", "a"),)),
        ('config["m"].labels["a.b"] == 1 && config.m.x[0].y', (("m", "labels", "a.b"), ("m", "x", 0, "y"))),
        ("config['m'].x == 1", (("m", "x"),)),
        ("config.m.routes.all(r, r.t > 0)", (("m", "routes"),)),  # stops at a method call
        ("config.m.x[i] > 0", (("m", "x"),)),  # stops at a computed index
        ('config["m"]["a\\"b"] == 1', (("m",),)),  # stops at an escape
        ('config[""].x == 1', (("", "x"),)),
        ("config.all(m, true)", None),  # reads every module
        ("size(config) > 0", None),
        ("config[0] == 1", None),
    ],
)
def test_referenced_paths(source: str, paths: tuple[tuple[object, ...], ...] | None) -> None:
    assert referenced_paths(source) == paths


def test_cel_selection_spells_what_check_and_explain_read_back() -> None:
    assert cel_selection("m", ("a", "b.c", 0, "x-y", "")) == 'config["m"].a["b.c"][0]["x-y"][""]'
    assert cel_selection("m", ("café", "x\u200by", "cafe\u0301")) == 'config["m"]["café"]["x\\u200by"]["cafe\\u0301"]'
    assert split_address(cel_selection("m", ("cafe\u0301", "\u2028")), ["m"]) == ("m", ("cafe\u0301", "\u2028"))
    assert cel_unfit({"note": "a 19-digit string 1234567890123456789 is no int"}) is None
    assert cel_unfit({"a": [1, {"b": 2**63}]}) == (("a", 1, "b"), 2**63)
    assert cel_unfit({"a": True, "b": -(2**63)}) is None


BIG = {"m": {"id": 2**64, "n": 3, "xs": [1, -(2**63) - 1]}, "other": {"k": 1}}


@pytest.mark.parametrize(
    ("rule", "status", "detail"),
    [
        ("config.m.n == 3", "pass", ""),  # the rule does not select the big value: it runs
        ("config.other.k == 1", "pass", ""),
        ("config.m.id > 0", "error", 'config["m"].id is 18446744073709551616, beyond'),
        ("config.m.xs.all(x, x < 5)", "error", 'config["m"].xs[1] is -9223372036854775809, beyond'),
        ("config.m.size() > 0", "error", 'config["m"].id is 18446744073709551616, beyond'),
        ('config.all(k, k != "")', "error", 'config["m"].id is 18446744073709551616, beyond'),
        ("!has(config.m.missing)", "pass", ""),  # a path with no value: nothing to check
    ],
)
def test_a_rule_that_reads_an_int_cel_cannot_hold_is_an_error_naming_it(rule: str, status: str, detail: str) -> None:
    got_status, got_detail = outcome(rule, BIG)
    assert got_status == status
    assert got_detail.startswith(detail)
    if status == "error":
        assert got_detail.endswith(
            "beyond CEL's int (64-bit signed, -9223372036854775808 to 9223372036854775807): "
            "rules cannot read it unchanged"
        )


def test_a_map_comprehension_names_the_same_key_every_run() -> None:
    """CEL's maps iterate in hash order: the finding named a different failing key on each run."""
    config = {"m": {k: 0 for k in "hgfedcba"}}
    details = {outcome("config.m.all(k, config.m[k] > 0)", config)[1] for _ in range(8)}
    assert details == {'config.m["a"] is 0, expected > 0'}
    details = {outcome('config.m.filter(k, k != "x").all(k, k == "z")', config)[1] for _ in range(8)}
    assert details == {'"a", expected == "z"'}
