"""The names a Jinja scalar's cache key reads come from its source (issue 14 §2): a superset of
those Jinja's parse loads, for every source Jinja compiles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import TemplateSyntaxError, nodes

from compiler.render._sandbox import ENV
from compiler.render.jinja import key_names

CASES = [
    "{{ a ~ b }}",
    '{{ "}}" ~ b }}',
    "{{ '%}' ~ b }}{% if c %}{{ d }}{% endif %}",
    "{# it's #}{{ b }}",
    "{#- {{ x }} -#}{{ b }}",
    '{{ {"a": {"b": c}} }}',
    "{{ [a, (b, {'k': c})] | length }}",
    "{% for x in y %}{{ x.z | upper }}{{ loop.index }}{% endfor %}",
    "{{ 1e5 + x }}{{ 0x1f }}{{ 1_000 }}",
    "{% set ns = namespace(v=a) %}{% set ns.v = b %}{{ ns.v }}",
    "{% macro m(p) %}{{ p ~ q }}{{ caller() }}{% endmacro %}{% call m(r) %}{{ s }}{% endcall %}",
    "{{- a -}} text {{+ b }} {%- if c -%}{%+ if d +%}{% endif %}{% endif %}",
    "{{ 'a\\'b' ~ c }}{{ \"x\\\"y\" ~ d }}",
    "{{ a if b else c }}{{ d is defined }}{{ e[f] }}{{ g(h=i) }}",
    "{% with k = l %}{{ k ~ m }}{% endwith %}{% filter upper %}{{ n }}{% endfilter %}",
    "{{ ümlaut ~ x }}",
]


def _loaded(source: str) -> set[str]:
    return {n.name for n in ENV.parse(source).find_all(nodes.Name) if n.ctx == "load"}


@pytest.mark.parametrize("source", CASES)
def test_key_names_hold_every_name_jinja_loads(source: str) -> None:
    names = key_names(source)
    assert names is not None
    assert _loaded(source) <= set(names)


@pytest.mark.parametrize(
    "source", ["{% raw %}{{ '{% endraw %}{{ b }}' }}{% endraw %}", "{{ a", "{{ 'a }}", "{{ a) }}", "{# a"]
)
def test_a_source_the_tokenizer_does_not_follow_has_no_key_names(source: str) -> None:
    assert key_names(source) is None


PIECES = st.sampled_from(
    [
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        "-",
        "+",
        "'",
        '"',
        "\\",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        " ",
        "~",
        ".",
        "|",
        "a",
        "b",
        "x1",
        "1",
        "1e5",
        "0x",
        "if",
        "endif",
        "for",
        "in",
        "endfor",
        "set",
        "=",
        "raw",
        "endraw",
        "\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=24))
def test_key_names_hold_every_name_jinja_loads_for_any_source_that_parses(pieces: list[str]) -> None:
    source = "".join(pieces)
    try:
        loaded = _loaded(source)
    except TemplateSyntaxError:
        return
    names = key_names(source)
    if names is not None:  # None: compiled each run (never taken as known), its key from the parse
        assert loaded <= set(names)
