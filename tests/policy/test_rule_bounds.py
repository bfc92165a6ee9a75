"""A rule's cost is bounded before it runs, with the error at the rule's line (issue 10 §8).

The CEL library cannot be interrupted, so nothing here is timed: the bound is
computed from the rule's syntax tree and the sizes of what it iterates.
"""

from __future__ import annotations

import pytest

from compiler.errors import InputError
from compiler.policy import cost as cost_module
from compiler.policy import evaluate as evaluate_module
from compiler.policy.cel import MAX_RULE_CHARS, compile_rule
from compiler.policy.celast import MAX_NESTING, Call, Ident, Lit, parse
from compiler.policy.cost import MAX_RULE_COST, rule_cost
from compiler.policy.evaluate import evaluate_target
from compiler.project import Target
from tests.policy._support import policies_from

PATH = "policies/test.yaml"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        # 47 s and 65 s / 3.1 GB before: refused when loaded, as the literals alone decide the cost.
        (
            "lists.range(100000).all(i, lists.range(100000).all(j, i + j >= 0))",
            "evaluating the rule takes at least 60,000,400,003 steps, over the limit of 2,000,000",
        ),
        ("lists.range(100000000).size() > 0", "evaluating the rule takes at least 100,000,006 steps"),
        ("lists.range(3000).map(i, lists.range(3000)).size() > 0", "takes at least 9,015,006 steps"),
        ('lists.range(int("5")).all(i, true)', "cannot bound the argument of lists.range"),
        ("lists.range(3).map(i, [i]).all(l, l.all(x, x > 0))", "cannot bound the size of a value"),
        ("(" * 40 + "true" + ")" * 40, "rule nests brackets deeper than 32"),
        ("(" * 8000 + "true" + ")" * 8000, "rule nests brackets deeper than 32"),  # before: a Rust panic
        ("(" * 100000 + "true" + ")" * 100000, "rule is 200,004 characters long, over the limit of 16,384"),
    ],
)
def test_a_rule_without_a_small_bound_is_refused_at_its_line(rule: str, message: str) -> None:
    with pytest.raises(InputError) as exc:
        policies_from(f"- name: heavy\n  rule: '{rule}'\n")
    assert str(exc.value).startswith(f"{PATH}:2:3: policy heavy: ")
    assert message in str(exc.value)


def test_nesting_at_the_limit() -> None:
    compile_rule("(" * MAX_NESTING + "true" + ")" * MAX_NESTING)
    with pytest.raises(ValueError, match="deeper than 32"):
        compile_rule("(" * (MAX_NESTING + 1) + "true" + ")" * (MAX_NESTING + 1))


PAIRS = "config.m.xs.all(a, config.m.xs.all(b, a != b || a == b))"


def _outcome(rule: str, config: dict[str, object]) -> str:
    policies = policies_from(f"- name: pairs\n  rule: '{rule}'\n").policies
    (outcome,) = evaluate_target(policies, Target("dev"), config, {})  # type: ignore[arg-type]
    return outcome.status


def test_a_bound_from_the_data_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"m": {"xs": list(range(300))}}
    steps = rule_cost(parse(PAIRS), {"config": config})
    assert steps == 3 + 300 * (3 + 300 * 7)  # the inner list is read 300 times; each body costs 7
    monkeypatch.setattr(evaluate_module, "MAX_RULE_COST", steps)
    assert _outcome(PAIRS, config) == "pass"
    monkeypatch.setattr(evaluate_module, "MAX_RULE_COST", steps - 1)
    with pytest.raises(InputError) as exc:
        _outcome(PAIRS, config)
    assert str(exc.value) == (
        f"{PATH}:1:3: policy pairs: evaluating the rule could take {steps:,} steps for this target, "
        f"over the limit of {steps - 1:,} (see policies/README.md)"
    )


def test_the_real_limit_stops_a_rule_on_large_data() -> None:
    big = {"m": {"xs": list(range(1000)), "n": 10**9}}
    with pytest.raises(InputError, match="could take 7,004,004 steps for this target, over the limit of 2,000,000"):
        _outcome(PAIRS, big)
    with pytest.raises(InputError, match="could take 1,000,000,008 steps"):
        _outcome("lists.range(config.m.n).size() > 0", big)
    assert MAX_RULE_COST == 2_000_000


@pytest.mark.parametrize(
    ("rule", "variables", "steps"),
    [
        ("config.a.size() > 0", {"config": {"a": [1, 2]}}, 5),
        ('config.s + "x" == ""', {"config": {"s": "abc"}}, 3 + 1 + 1 + 3 + 1 + 1),
        ("config.a.filter(x, x > 0).all(y, y > 0)", {"config": {"a": [1, 2]}}, 2 + 2 * 3 + 2 + 2 * 3),
        ("config.a.map(x, x).size() > 0", {"config": {"a": [1, 2]}}, 2 + 2 * 1 + 2 + 3),
        ('["a", "b"].exists(x, x == "a")', {}, 3 + 2 * 3),
        ('config.t.split(",").all(x, x != "")', {"config": {"t": "a,b"}}, 4 + 4 * 3),
        ("(true ? [1] : [1, 2]).all(x, x > 0)", {}, 1 + 1 + 2 + 3 + 2 * 3),  # both branches count
        ("lists.range(size(config.a) - 1).all(i, i >= 0)", {"config": {"a": [1, 2, 3]}}, 9 + 2 * 3),
        ("lists.range(config.n * 2 + 1).size() > 0", {"config": {"n": 3}}, 19),
        ('{"a": 1}["a"] == 1', {}, 7),
        ("secrets.all(k, secrets[k].age_days < 90)", {"secrets": {"a.b": {"age_days": 1}}}, 1 + 1 * 6),
        ('config["x"].all(k, true)', {"config": {"x": {"a": 1, "b": 2}}}, 3 + 2 * 1),
    ],
)
def test_the_cost_model(rule: str, variables: dict[str, object], steps: int) -> None:
    assert rule_cost(parse(rule), variables) == steps  # type: ignore[arg-type]


def test_the_parser_reads_every_kind_of_expression() -> None:
    tree = parse("!a.b(1u, 0x1F, 1.5e3, .5, b\"x\", r'y', '''z''') ? -c[?0] : d.?e || {?f: g}.h && [?i, j] in k")
    assert isinstance(tree, Call)
    assert tree.function == "_?_:_"
    assert parse(".x") == Ident("x")
    assert parse("T{a: 1}") == cost_module.MapLit(((Lit("a"), Lit(1)),))
    with pytest.raises(ValueError, match="unexpected"):
        parse("1 2")
    with pytest.raises(ValueError, match="cannot read"):
        parse("a # b")
    with pytest.raises(ValueError, match="cannot read"):
        parse("a > \uff12")  # CEL digits are ASCII; Python's \\d also takes other scripts' digits
    with pytest.raises(ValueError, match="expected"):
        parse("(1")


def test_a_rule_llmcc_cannot_analyse_is_refused() -> None:
    # The library reads a message literal after a selection; the analysis cannot: fail closed.
    with pytest.raises(ValueError, match="uses syntax llmcc cannot analyse"):
        compile_rule("config.x{c: 1} == 1")
    with pytest.raises(ValueError, match="rule is not valid CEL: Syntax error: token recognition error at: '#'"):
        compile_rule("a #")


def test_a_failing_extension_function_is_an_error_of_the_rule_and_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    policies = policies_from('- name: char\n  rule: \'"abc".charAt(100) == "x"\'\n').policies
    (outcome,) = evaluate_target(policies, Target("dev"), {}, {})
    assert outcome.status == "error"
    assert outcome.detail == "charAt: IndexError: charAt: index 100 out of range for string of length 3"
    assert capfd.readouterr().err == ""  # the library prints a raised exception; guarded functions return


def test_lists_range_has_its_own_guard() -> None:
    from compiler.policy import cel as cel_module

    guarded = cel_module._guarded("lists.range", lambda n: list(range(n)))
    assert guarded(3) == [0, 1, 2]
    assert isinstance(guarded(cel_module.MAX_LIST + 1), cel_module._Failed)
    assert cel_module.last_failure[0] == "lists.range(2000001) is over the limit of 2000000 elements"


def test_sizes_of_paths_that_are_not_there() -> None:
    variables = {"config": {"a": [[1, 2, 3]], "m": {"k": "abcd"}}}
    assert rule_cost(parse("config.a[0].all(x, true)"), variables) == 4 + 3  # type: ignore[arg-type]
    assert rule_cost(parse("config.a[5].all(x, true)"), variables) == 4  # type: ignore[arg-type]
    assert rule_cost(parse("config.m.nope.all(x, true)"), variables) == 3  # type: ignore[arg-type]
    assert rule_cost(parse("config.m.k.nope.all(x, true)"), variables) == 4  # type: ignore[arg-type]
    assert rule_cost(parse("other.all(x, true)"), variables) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "detail"),
    [
        # Before: 8 nested replace("", ...) grew a string 9-fold each (345 MB; one more: 3 GB).
        (
            '"ab"' + '.replace("", "xxxxxxxx")' * 8 + ".size() > 0",
            "replace: the result would grow by over 4,194,304 characters",
        ),
        # Before: every element compared with every other, 5 s for 30,000.
        (
            "sets.contains(lists.range(30000), lists.range(30000))",
            "sets.contains: comparing 30000 x 30000 elements is over the limit of 2,000,000",
        ),
        ("lists.range(1500).map(x, [x]).distinct().size() > 0", "distinct: comparing 1500 elements is over"),
    ],
)
def test_a_library_function_that_would_build_or_compare_too_much_fails_the_rule(rule: str, detail: str) -> None:
    policies = policies_from(f"- name: lib\n  rule: '{rule}'\n").policies
    (outcome,) = evaluate_target(policies, Target("dev"), {}, {})
    assert (outcome.status, outcome.detail[: len(detail)]) == ("error", detail)


@pytest.mark.parametrize(
    "rule",
    [
        '"ab".replace("", "x").replace("a", "yy", 1) == "xyyxbx"',
        "lists.range(30000).distinct().size() == 30000",  # scalars: one pass
        "lists.range(1000).map(x, [x]).distinct().size() == 1000",
        "sets.contains(lists.range(1000), lists.range(1000))",
    ],
)
def test_library_functions_within_their_bounds_work(rule: str) -> None:
    policies = policies_from(f"- name: lib\n  rule: '{rule}'\n").policies
    assert [o.status for o in evaluate_target(policies, Target("dev"), {}, {})] == ["pass"]


def test_rule_length_at_the_limit() -> None:
    # Before: a 1.3 MB list literal took 6 s and 1.1 GB to load (the library's parser: 950 MB).
    rule = "[" + ",".join("1" * 8000) + "].size() > 0"
    compile_rule(rule.ljust(MAX_RULE_CHARS))
    with pytest.raises(ValueError, match="rule is 16,385 characters long, over the limit of 16,384"):
        compile_rule(rule.ljust(MAX_RULE_CHARS + 1))


def test_selecting_a_long_string_costs_its_copy() -> None:
    # Before: 1 step per selection; the library copies the string each time (a 1 MB string
    # selected 200,000 times in a macro: 1.4 M steps, minutes).
    config = {"m": {"v": "x" * 1_000_000}}
    rule = "lists.range(200000).all(i, size(config.m.v) > 0)"
    assert rule_cost(parse(rule), {"config": config}) > 200_000 * (1_000_000 // 512)
    with pytest.raises(InputError, match=r"could take .* steps for this target, over the limit of 2,000,000"):
        _outcome(rule, config)
    assert _outcome("lists.range(1000).all(i, size(config.m.v) > 0)", config) == "pass"
