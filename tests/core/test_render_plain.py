"""Plain template scalars are evaluated without compiling them with Jinja (issue 14 §1, §3), the way Jinja does.

For any scalar the plain form takes and any variables, the value or the error is the one the
Jinja-compiled scalar gives; a scalar outside the plain form is compiled with Jinja.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.load.yaml import load_document
from compiler.render import jinja
from compiler.render.jinja import Renderer, plan_template

NAMES = ["x", "y", "env_name", "range", "namespace", "true", "none", "not", "_x", "X1"]
LITERALS = ["1", "0", "8080", "1.5", "'http'", '"USD"', "true", "False", "none", "''", "'a b'", "-1", "08", "'a\\'b'"]
FILTERS = ["upper", "lower", *(f"default({lit})" for lit in LITERALS), "default( 2 )", "default(1, true)", "title"]
SPACES = ["", " ", "  "]
TEXTS = ["", "a", "https://", ".svc:", " ", "-", "x\n", "\r", "{", "}", "}}", "${a}", "{ x }", "é", "{#", "{%", "%}"]
# Look-ups after a name: keys of maps, names of dict methods and attributes, Jinja's words.
STEPS = [".a", ".b", ".items", ".get", ".__class__", ".true", ".upper"]
STEPS += ["['a']", '["b"]', "['items']", "['']", "['a b']"]
KEYS = ["a", "b", "items", "", "a b"]
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["", "prod", "eu-west-1", "ÉTÉ", "x" * 30]),
    st.lists(st.integers(0, 3), max_size=2),
)
VALUES = st.recursive(LEAVES, lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=3), max_leaves=6)


@st.composite
def scalars(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        parts.append(draw(st.sampled_from(TEXTS)))
        sp = draw(st.sampled_from(SPACES))
        filters = "".join(
            f"{draw(st.sampled_from(SPACES))}|{sp}{f}" for f in draw(st.lists(st.sampled_from(FILTERS), max_size=2))
        )
        steps = "".join(draw(st.lists(st.sampled_from(STEPS), max_size=3)))
        parts.append("{{" + sp + draw(st.sampled_from(NAMES)) + steps + filters + sp + "}}")
    parts.append(draw(st.sampled_from(TEXTS)))
    return "".join(parts)


def outcome(expr: Any, variables: dict[str, Any]) -> Any:
    """What the renderer makes of a compiled scalar: its value, or its failure (message included)."""
    return Renderer(variables, {})._run(expr)


@settings(deadline=None, max_examples=600)
@given(scalars(), st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=4))
def test_a_plain_scalar_evaluates_as_jinja_evaluates_it(source: str, variables: dict[str, Any]) -> None:
    plain = jinja._plain_expr(source, "t.yaml:1:1")
    if plain is None:
        return  # compiled with Jinja
    by_jinja = jinja._compile_source(source, where="t.yaml:1:1")
    assert (plain.native, plain.names) == (by_jinja.native, by_jinja.names)
    assert outcome(plain, variables) == outcome(by_jinja, variables)
    assert type(outcome(plain, variables)) is type(outcome(by_jinja, variables))  # 1 is not 1.0 is not True


MAPS = st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1, max_size=3)


@st.composite
def look_ups(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A scalar reading ``x`` down a path that mostly exists in the value drawn for ``x``."""
    value = draw(MAPS)
    node: Any = value
    steps = ""
    for _ in range(draw(st.integers(1, 3))):
        found = isinstance(node, dict) and node and draw(st.integers(0, 4)) > 0
        key = draw(st.sampled_from(sorted(node))) if found else draw(st.sampled_from(KEYS))
        node = node[key] if found else None
        dot = key.isidentifier() and draw(st.booleans())
        steps += f".{key}" if dot else draw(st.sampled_from([f"['{key}']", f'["{key}"]']))
    filters = "".join(f" | {f}" for f in draw(st.lists(st.sampled_from(FILTERS[:6]), max_size=1)))
    source = draw(st.sampled_from(TEXTS[:5])) + "{{ x" + steps + filters + " }}" + draw(st.sampled_from(TEXTS[:5]))
    return source, {"x": value}


@settings(deadline=None, max_examples=400)
@given(look_ups())
def test_a_plain_look_up_evaluates_as_jinja_evaluates_it(case: tuple[str, dict[str, Any]]) -> None:
    source, variables = case
    plain = jinja._plain_expr(source, "t.yaml:1:1")
    if plain is None:
        return  # a dict method (.items) or a literal Jinja reads otherwise: compiled with Jinja
    by_jinja = jinja._compile_source(source, where="t.yaml:1:1")
    assert (plain.native, plain.names) == (by_jinja.native, by_jinja.names)
    assert outcome(plain, variables) == outcome(by_jinja, variables)
    assert type(outcome(plain, variables)) is type(outcome(by_jinja, variables))


@pytest.mark.parametrize(
    "source",
    [
        "{{ model }}",
        "{{ upstream_tls | default(false) }}",
        "{{ upstream_scheme | default('http') }}://router.llm-{{ env_name }}:{{ upstream_port | default(8080) }}",
        "{{ top_p | default(1.0) }}",
        "LLM_{{ env_name | upper }}",
        "{{ limits.tpm }}",  # the generated workloads' look-ups (bench/workload)
        "svc-{{ namespace }}.api",  # a Jinja global, read as the variable that shadows it
        "{{ pricing.input_per_mtok }}",
        "svc-{{ a.b['max-tokens'] | default(1) }}.{{ c[\"d e\"].f | lower }}",
    ],
)
def test_the_example_templates_scalars_are_plain(source: str) -> None:
    assert jinja._plain_expr(source, "t.yaml:1:1") is not None


@pytest.mark.parametrize(
    "source",
    [
        "{{ x + 1 }}",
        "{{ x.items }}",  # a dict method, whatever the map holds
        "{{ x.__class__ }}",
        "{{ x.none }}",
        "{{ x.0 }}",
        "{{ x . y }}",
        "{{ x[y] }}",
        "{{ x[0] }}",
        "{{ x['a\\'b'] }}",
        "{{ x['{{'] }}",
        "{{ x['('] }}",
        "{{ x.y() }}",
        "{{ true }}",
        "{{- x }}",
        "{% if x %}a{% endif %}",
        "{{ x | default(y) }}",
        "{{ x | title }}",
        "a\r{{ x }}",  # Jinja turns CR into LF in text
        "{{{ x }}",
    ],
)
def test_a_scalar_outside_the_plain_form_is_compiled_with_jinja(source: str) -> None:
    assert jinja._plain_expr(source, "t.yaml:1:1") is None


def test_a_global_no_variable_shadows_is_left_to_jinja() -> None:
    plain = jinja._plain_expr("{{ range | default(1) }}", "t.yaml:1:1")
    assert plain is not None
    assert outcome(plain, {"range": 3}) == 3
    assert isinstance(outcome(plain, {}), jinja._Failure)  # Jinja's range function is no JSON value


def test_an_undefined_variable_fails_as_jinja_says_it() -> None:
    plain = jinja._plain_expr("a-{{ nope }}", "t.yaml:1:1")
    assert plain is not None
    assert outcome(plain, {}) == jinja._Failure("undefined variable 'nope' in 'a-{{ nope }}'")


def test_a_result_over_the_size_bound_fails_as_jinja_says_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jinja, "MAX_OUTPUT_CHARS", 10)
    plain = jinja._plain_expr("{{ x }}-{{ x }}", "t.yaml:1:1")
    assert plain is not None
    by_jinja = jinja._compile_source("{{ x }}-{{ x }}", where="t.yaml:1:1")
    assert outcome(plain, {"x": "abcdef"}) == outcome(by_jinja, {"x": "abcdef"})
    assert isinstance(outcome(plain, {"x": "abcdef"}), jinja._Failure)


def test_a_filtered_value_over_the_size_bound_fails_as_jinja_says_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jinja, "MAX_OUTPUT_CHARS", 3)  # a filter's result passes the bound on built values
    plain = jinja._plain_expr("{{ x | default(1) }}", "t.yaml:1:1")
    assert plain is not None
    by_jinja = jinja._compile_source("{{ x | default(1) }}", where="t.yaml:1:1")
    assert outcome(plain, {"x": [1, 2, 3, 4]}) == outcome(by_jinja, {"x": [1, 2, 3, 4]})
    assert isinstance(outcome(plain, {"x": [1, 2, 3, 4]}), jinja._Failure)


def test_a_template_of_plain_scalars_renders_without_bounds_and_one_other_scalar_brings_them_back() -> None:
    plain = "a: '{{ x }}'\nb: 'x-{{ y | default(1) }}'\nc: 3\n"
    doc = load_document(plain.encode(), path="templates/t.yaml", layer="template")
    plan = plan_template(doc, doc.value)
    assert plan.plain
    assert Renderer({"x": [1]}, {}).render(plan) == {"a": [1], "b": "x-1", "c": 3}
    looped = plain + "d: '{% for i in range(2) %}{{ i }}{% endfor %}'\n"
    doc = load_document(looped.encode(), path="templates/t.yaml", layer="template")
    assert not plan_template(doc, doc.value).plain
