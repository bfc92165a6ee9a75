"""Templates: Jinja in scalars, native types, the sandbox, and bounds on size and time."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.errors import InputError
from compiler.load.yaml import Value, load_document
from compiler.render import jinja
from compiler.render.jinja import Renderer, plan_template
from tests.core._repos import dedent

PATH = "templates/inference-engine.yaml"


def render(text: str, variables: dict[str, Any] | None = None, cache: dict | None = None) -> Value:
    doc = load_document(dedent(text).encode(), path=PATH, layer="template")
    plan = plan_template(doc, doc.value)
    return Renderer(variables or {}, {} if cache is None else cache).render(plan)


def one(expr: str, variables: dict[str, Any] | None = None) -> Value:
    """Render one scalar given as YAML text (quote it yourself)."""
    out = render(f"v: {expr}\n", variables)
    assert isinstance(out, dict)
    return out["v"]


def render_error(text: str, variables: dict[str, Any] | None = None) -> str:
    with pytest.raises(InputError) as exc:
        render(text, variables)
    return str(exc.value)


# --- native types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [0.7, 1, 0, -3, True, False, None, "text", "0.7", "", [1, "a", None], {"a": {"b": [1.5]}}, 10**30],
)
def test_a_single_expression_keeps_the_native_type(value: Any) -> None:
    got = one('"{{ x }}"', {"x": value})
    assert got == value
    assert type(got) is type(value)


def test_expressions_compute_native_values() -> None:
    assert one('"{{ n * 2 }}"', {"n": 21}) == 42
    assert one('"{{ [a, b] }}"', {"a": 1, "b": "two"}) == [1, "two"]
    assert one("\"{{ {'k': a} }}\"", {"a": 1}) == {"k": 1}
    assert one('"{{ (1, 2) }}"') == [1, 2]
    assert one('"{{ none }}"') is None
    assert one('"{{ x if x > 1 else 0 }}"', {"x": 5}) == 5
    assert one("\"{{ '5' }}\"") == "5"  # a string stays a string, even when it looks like a number


def test_whitespace_control_is_one_expression_but_surrounding_text_is_not() -> None:
    assert one('"{{- x -}}"', {"x": 0.7}) == 0.7
    assert one('"  {{ x }}  "', {"x": 0.7}) == "  0.7  "


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('"{{ x }} tokens"', "4096 tokens"),
        ('"{{ x }}{{ x }}"', "40964096"),
        ('"http://{{ host }}:{{ x }}/v1"', "http://vllm:4096/v1"),
        ('"{{ x }}\\n"', "4096\n"),
        ('"{% if x %}on{% else %}off{% endif %}"', "on"),
        ('"{# only a comment #}"', ""),
        ("\"{{ '}}' }}\"", "}}"),
    ],
)
def test_mixed_text_renders_a_string(expr: str, expected: str) -> None:
    assert one(expr, {"x": 4096, "host": "vllm"}) == expected


def test_default_gives_a_value_for_an_undefined_variable() -> None:
    assert one('"{{ x | default(1000) }}"') == 1000
    assert one('"{{ x | default(1000) }}"', {"x": 5}) == 5
    assert one('"{{ x | default(0.5) }}"') == 0.5
    assert one("\"{{ x | default('gpt-4o') }}\"") == "gpt-4o"
    assert one('"{{ x | default([]) }}"') == []
    assert one('"max {{ x | default(1000) }}"') == "max 1000"


def test_the_rendered_tree_keeps_static_parts_and_types() -> None:
    out = render(
        """
        model:
          name: "{{ model }}"
          temperature: "{{ temperature }}"
          top_p: 1.0
        fallbacks: ["{{ fallback }}", static]
        static: {a: [1, 2]}
        """,
        {"model": "gpt-4o", "temperature": 0.7, "fallback": "claude"},
    )
    assert out == {
        "model": {"name": "gpt-4o", "temperature": 0.7, "top_p": 1.0},
        "fallbacks": ["claude", "static"],
        "static": {"a": [1, 2]},
    }


def test_rendering_shares_static_subtrees_and_never_mutates_the_plan() -> None:
    doc = load_document(b'static: {a: [1, 2]}\nv: "{{ x }}"\n', path=PATH, layer="template")
    plan = plan_template(doc, doc.value)
    first = Renderer({"x": 1}, {}).render(plan)
    second = Renderer({"x": 2}, {}).render(plan)
    assert first == {"static": {"a": [1, 2]}, "v": 1}
    assert second == {"static": {"a": [1, 2]}, "v": 2}
    assert first["static"] is second["static"] is doc.value["static"]  # type: ignore[index]
    assert doc.value == {"static": {"a": [1, 2]}, "v": "{{ x }}"}


def test_a_template_without_jinja_is_returned_as_is() -> None:
    doc = load_document(b"a: {b: 1}\n", path=PATH, layer="template")
    assert Renderer({}, {}).render(plan_template(doc, doc.value)) is doc.value


def test_the_cache_is_keyed_by_the_values_of_the_variables_read() -> None:
    cache: dict = {}
    assert render('v: "{{ x }}-{{ y }}"\n', {"x": 1, "y": "a"}, cache) == {"v": "1-a"}
    assert render('v: "{{ x }}-{{ y }}"\n', {"x": 1, "y": "a", "z": 9}, cache) == {"v": "1-a"}
    assert render('v: "{{ x }}-{{ y }}"\n', {"x": 2, "y": "a"}, cache) == {"v": "2-a"}
    # 1, 1.0 and True are equal in Python but render differently
    assert render('v: "{{ x }}"\n', {"x": 1}, cache) == {"v": 1}
    assert render('v: "{{ x }}"\n', {"x": 1.0}, cache) == {"v": 1.0}
    assert type(render('v: "{{ x }}"\n', {"x": 1.0}, cache)["v"]) is float  # type: ignore[index]
    assert render('v: "{{ x }}"\n', {"x": True}, cache) == {"v": True}
    assert render('v: "{{ x }}"\n', {"x": [1]}, cache) == {"v": [1]}
    assert render('v: "{{ x }}"\n', {"x": [1.0]}, cache) == {"v": [1.0]}
    assert type(render('v: "{{ x }}"\n', {"x": [1.0]}, cache)["v"][0]) is float  # type: ignore[index]


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
        max_leaves=8,
    )
)
def test_any_json_variable_round_trips_through_a_single_expression(value: Any) -> None:
    got = one('"{{ x }}"', {"x": value})
    assert got == value
    assert repr(got) == repr(value)  # same types all the way down (1 vs 1.0 vs True)


# --- strict and sandboxed --------------------------------------------------------------------


def test_an_undefined_variable_names_the_template_line() -> None:
    message = render_error('model:\n  name: "{{ model }}"\n  temperature: "{{ temperature }}"\n', {"model": "m"})
    assert message == "templates/inference-engine.yaml:3:3: undefined variable 'temperature' in '{{ temperature }}'"


def test_an_undefined_variable_in_mixed_text_and_in_an_attribute() -> None:
    assert render_error('a: "x {{ nope }}"\n') == (
        "templates/inference-engine.yaml:1:1: undefined variable 'nope' in 'x {{ nope }}'"
    )
    assert render_error('a: "{{ cfg.nope }}"\n', {"cfg": {}}) == (
        "templates/inference-engine.yaml:1:1: template error: 'dict object' has no attribute 'nope' in '{{ cfg.nope }}'"
    )
    assert render_error('a:\n  - "{{ nope }}"\n') == (
        "templates/inference-engine.yaml:2:5: undefined variable 'nope' in '{{ nope }}'"
    )


def test_a_jinja_syntax_error_names_the_template_line() -> None:
    message = render_error('a: 1\nb: "{{ x + }}"\n', {"x": 1})
    assert message.startswith("templates/inference-engine.yaml:2:1: template error: ")


@pytest.mark.parametrize(
    "expr",
    [
        "''.__class__",
        "''.__class__.__mro__[1].__subclasses__()",
        "cycler.__init__.__globals__",
        "x.__globals__",
        "namespace.__init__.__globals__['os']",
        "lipsum.__globals__",
        "range.__self__",
        "self.__init__",
        "x.__code__",
    ],
)
def test_the_sandbox_blocks_python_internals(expr: str) -> None:
    message = render_error(f'v: "{{{{ {expr} }}}}"\n', {"x": {"a": 1}})
    assert message.startswith("templates/inference-engine.yaml:1:1: ")
    assert "unsafe" in message or "undefined" in message or "no attribute" in message


@pytest.mark.parametrize(
    "source",
    [
        "{% set l = [1] %}{{ l.append(2) }}",
        "{% set d = {} %}{{ d.update(a=1) }}",
        "{{ x.pop() }}",
        "{% include 'etc/passwd' %}",
        "{% import 'x' as y %}",
        "{% extends 'base' %}",
    ],
)
def test_no_mutation_and_no_file_access(source: str) -> None:
    message = render_error(f'v: "{source}"\n', {"x": [1]})
    assert message.startswith("templates/inference-engine.yaml:1:1: ")


def test_no_environment_access() -> None:
    # Globals are Jinja's own: there is no `os`, `environ` or `open`.
    for name in ("os", "environ", "open", "__import__", "__builtins__"):
        assert "undefined variable" in render_error(f'v: "{{{{ {name} }}}}"\n')


def test_jinja_inside_a_tagged_node_is_refused() -> None:
    with pytest.raises(InputError, match=r"^templates/inference-engine.yaml:1:4: Jinja inside a tagged node"):
        render('a: !append ["{{ x }}"]\n', {"x": 1})


# --- bounds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "'a' * 10**9",
        "10**9 * 'a'",
        "[1] * 10**9",
        "('a' * 4000000) ~ ('a' * 4000000)",
        "'%999999999d' % 1",
        "'%*d' % (999999999, 1)",
        "'{:>999999999}'.format(1)",
        "'{:>{w}}'.format(1, w=999999999)",
        "'a'.ljust(999999999)",
        "'a'.center(999999999)",
        "'1'.zfill(999999999)",
        "'\\t'.expandtabs(999999999)",
        "('a' * 4000000).replace('a', 'aa')",
        "('a' * 4000000).join(['b', 'c', 'd'])",
        "'a' | center(999999999)",
        "('a\\n' * 1000000) | indent(1000)",
        "'%999999999d' | format(1)",
        "(['b'] * 100) | join('a' * 100000)",
        "('a' * 4000000) | replace('a', 'aa')",
        "10 ** 10000",
        "(10 ** 1000) ** 1000",
        "1e308 * 10",
    ],
)
def test_huge_results_are_refused_before_they_are_built(expr: str) -> None:
    message = render_error(f'v: "{{{{ {expr} }}}}"\n')
    assert message.startswith("templates/inference-engine.yaml:1:1: ")
    assert "too large" in message or "not a JSON number" in message or "OverflowError" in message


@pytest.mark.parametrize(
    "source",
    [
        "{% set s = 'a' * 4000000 %}{% for i in range(100000) %}{{ s }}{% endfor %}",
        "{% set ns = namespace(s='a') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(s='a') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
        "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s }}{% endmacro %}{{ f('a', 60) }}",
        "{% set s %}{% for i in range(100000) %}{{ 'a' * 1000 }}{% endfor %}{% endset %}{{ s | length }}",
    ],
)
def test_output_that_grows_in_a_loop_is_refused(source: str) -> None:
    message = render_error(f'v: "{source}"\n')
    assert message.startswith("templates/inference-engine.yaml:1:1: ")
    assert "result too large" in message


def test_large_results_within_the_bound_render() -> None:
    assert len(one("\"{{ 'a' * 4000000 }}\"")) == 4_000_000  # type: ignore[arg-type]
    assert one("\"{{ '%5d' % 7 }}\"") == "    7"
    assert one("\"{{ '{:>5}'.format(7) }}\"") == "    7"
    assert one("\"{{ 'a' | center(5) }}\"") == "  a  "
    assert one("\"{{ ['a', 'b'] | join(', ') }}\"") == "a, b"
    assert one("\"{{ 'a-b' | replace('-', '_') }}\"") == "a_b"
    assert one('"{{ tpm * 1000 }}"', {"tpm": 40000}) == 40_000_000
    assert one("\"{{ '%d' % tpm }}\"", {"tpm": 40_000_000}) == "40000000"
    assert one('"{{ 2 ** 100 }}"') == 2**100
    assert one('"{{ [1] + [2] }}"') == [1, 2]
    assert one("\"{{ 'a' + 'b' ~ 'c' }}\"") == "abc"
    assert one('"{{ 1 + 2.5 }}"') == 3.5


def test_a_rendered_string_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jinja, "MAX_OUTPUT_CHARS", 10)
    assert render_error('v: "{{ x }}"\n', {"x": "a" * 11}) == (
        "templates/inference-engine.yaml:1:1: rendered value over 10 chars"
    )


# --- direct look-ups (issue 14 §3) ------------------------------------------------------------

_DIRECT_VARS: dict[str, Any] = {
    "name": "gpt",
    "n": 3,
    "none": None,
    "flag": False,
    "limits": {"tpm": 100, "items": 7, "deep": {"x": [1, {"y": 2}]}},
    "word": "text",
    "lst": [1, 2],
    "range": 5,
    "namespace": "ns",
}


def _outcome(run: Any, variables: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", jinja._to_value(run(variables), True)
    except Exception as e:  # noqa: BLE001 - the type and message are what is compared
        return type(e).__name__, str(e)


@pytest.mark.parametrize(
    ("source", "direct"),
    [
        ("{{ name }}", True),
        ("{{n}}", True),
        ("{{ none }}", False),  # Jinja's constant None, not the variable
        ("{{ flag }}", True),
        ("{{ limits.tpm }}", True),
        ("{{ limits.deep.x }}", True),
        ("{{ limits.deep }}", True),
        ("{{ limits.missing }}", True),
        ("{{ limits.tpm.more }}", True),
        ("{{ word.upper }}", True),  # a str's method: Jinja decides
        ("{{ lst.x }}", True),
        ("{{ missing }}", True),
        ("{{ missing.key }}", True),
        ("{{ limits.items }}", False),  # a dict method, not the key
        ("{{ range }}", True),  # a Jinja global, unless a variable has its name
        ("{{ lipsum | default(1) }}", True),
        ("{{ range | default(1) }}", True),
        ("{{ n | default(5) }}", True),
        ("{{ none | default(5) }}", False),
        ("{{ missing | default(5) }}", True),
        ("{{ missing|default(0) }}", True),
        ("{{ limits | default(5) }}", True),  # a map: Jinja's own default (and its size check)
        ("{{ lst | default(5) }}", True),
        ("{{ name | default(5.0) }}", False),
        ("{{ name | default(-5) }}", False),
        ("{{ name | default('x') }}", False),
        (" {{ name }}", True),  # text around the expression: a string
        ("{{ name }}\n", True),
        ("svc-{{ limits.tpm }}.example.com/v1", True),
        ("n={{ n }}, f={{ flag }}", False),
        ("{{ none }} x", False),
        ("x {{ limits }}", True),  # a map: Jinja's own str()
        ("x {{ missing }}", True),
        ("x {{ lst }}", True),
        ("a\r\n{{ name }}", False),  # Jinja's lexer turns \r\n into \n
        ("{% raw %}{{ name }}{% endraw %}", False),
        ("{# c #}{{ name }}", False),
        ("{{ range.x }}", True),
        ("{{ namespace }}", True),  # a Jinja global, shadowed by a variable of that name
        ("{{- name }}", False),
        ("{{ name | upper }}", False),
    ],
)
def test_simple_scalars_are_read_directly_with_the_same_result_as_jinja(source: str, direct: bool) -> None:
    """Compiling each scalar with Jinja cost ~1 ms (a third of a large workload's fixed cost);
    the simple forms are look-ups, and every outcome -- value or error -- is Jinja's."""
    expr = jinja._direct(source)
    assert (expr is not None) == direct
    reference = jinja._compile_jinja(source, where="t.yaml:1")
    compiled = jinja._compile_source(source, where="t.yaml:1")
    assert compiled.names == reference.names
    assert compiled.native == reference.native
    for variables in (_DIRECT_VARS, {}, {"name": {"a": 1}, "n": [1] * 3}):
        assert _outcome(compiled.run, variables) == _outcome(reference.run, variables), (source, variables)
