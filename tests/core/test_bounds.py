"""Every template's rendering is bounded, with the error at its file:line (issue 10 §8).

Deterministic bounds (steps, sizes, nesting, macro depth, extends) are tested
at the limit (accepted) and one past it (rejected), with the limit lowered
where the real one would make a slow test. The CPU-time and memory backstops
run in a child process: they need a process with one thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.compile.pipeline import CompileCaches, compile_target
from compiler.compile.repository import MAX_EXTENDS
from compiler.errors import InputError
from compiler.load.yaml import load_document
from compiler.project import Target
from compiler.render import _sandbox, jinja
from tests.conftest import copy_example
from tests.core._repos import BASE, ENGINE_TEMPLATE, mini_repo, open_repo
from tests.core.test_pipeline import compiled, engine
from tests.core.test_render import one, render_error

AT = "templates/inference-engine.yaml:2:1: template error: "


def scalar_error(source: str, variables: dict[str, object] | None = None) -> str:
    return render_error(f'a: 1\nv: "{source}"\n', variables)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "rendering takes over 1,000,000 steps (loop iterations, range elements, macro calls)",
        ),
        ("{{ [[1]*4000000]*4000000 }}", "result too large"),
        (
            "{{ lipsum(10000000) }}",
            "rendering takes over 1,000,000 steps (loop iterations, range elements, macro calls)",
        ),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "macro calls nested deeper than 50"),
        ("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "macro calls nested deeper than 50"),
        ("{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}", "brackets or blocks nested deeper than 32"),
    ],
)
def test_the_issue_cases_end_at_the_template_line(source: str, message: str) -> None:
    # Before: a 10 s deadline per environment naming no line, or RecursionError (exit 70).
    assert scalar_error(source).startswith(AT + message)


def test_steps_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jinja, "MAX_STEPS", 100)
    loop = "{% for c in s %}.{% endfor %}"
    assert one(f'"{loop}"', {"s": "a" * 100}) == "." * 100
    assert scalar_error(loop, {"s": "a" * 101}).startswith(AT + "rendering takes over 100 steps")
    assert one('"{{ range(100) | list | length }}"') == 100
    assert scalar_error("{{ range(101) | list | length }}").startswith(AT + "rendering takes over 100 steps")
    assert isinstance(one('"{{ lipsum(1, False, 20, 100) }}"'), str)
    assert scalar_error("{{ lipsum(1, False, 20, 101) }}").startswith(AT + "rendering takes over 100 steps")


def test_steps_count_per_scalar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jinja, "MAX_STEPS", 100)
    a, b, c = ("{{ range(50) | list | " + f + " }}" for f in ("length", "first", "last"))
    assert one(f'"{a}"') == 50
    assert render_error(f'a: "{a}"\nb: "{b}"\nc: "{c}"\nd: "{{{{ range(101) | list }}}}"\n').startswith(
        "templates/inference-engine.yaml:4:1: template error: rendering takes over 100 steps"
    )


def test_a_scalars_outcome_does_not_depend_on_the_targets_compiled_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outcomes are cached by (scalar, the values it reads) for every target of the run (and across
    # runs): with one step budget per template, y failed after x had used it up in staging, and dev,
    # where x costs nothing, then got y's cached failure -- or passed when compiled alone.
    monkeypatch.setattr(jinja, "MAX_STEPS", 100)
    loop = "{% for i in range(N) %}.{% endfor %}"
    root = mini_repo(
        tmp_path,
        {
            "templates/engine.yaml": ENGINE_TEMPLATE
            + f'x: "{loop.replace("N", "a")}"\ny: "{loop.replace("N", "b")}"\n',
            "environments/base.yaml": BASE + "  a: 30\n  b: 30\n",
            "environments/dev.yaml": "vars:\n  a: 0\n",
        },
    )
    repo, caches = open_repo(root), CompileCaches()
    alone = compile_target(open_repo(root), Target("dev"), validate=False).modules["engine"]
    compile_target(repo, Target("staging"), validate=False, caches=caches)
    after = compile_target(repo, Target("dev"), validate=False, caches=caches).modules["engine"]
    assert after == alone
    assert isinstance(alone, dict)
    assert alone["y"] == "." * 30


def test_macro_depth_at_the_limit() -> None:
    deep = "{% macro f(n) %}{{ f(n + 1) if n < LIMIT - 1 else n + 1 }}{% endmacro %}{{ f(0) }}"
    assert one(f'"{deep.replace("LIMIT", str(jinja.MAX_MACRO_DEPTH))}"') == str(jinja.MAX_MACRO_DEPTH)
    too_deep = deep.replace("LIMIT", str(jinja.MAX_MACRO_DEPTH + 1))
    assert scalar_error(too_deep).startswith(AT + "macro calls nested deeper than 50")


@pytest.mark.parametrize(("limit", "ok"), [(100, True), (99, False)])
def test_a_repeated_list_counts_the_lists_inside_it(monkeypatch: pytest.MonkeyPatch, limit: int, ok: bool) -> None:
    monkeypatch.setattr(jinja, "MAX_OUTPUT_CHARS", limit)
    source = "{{ ([[1] * 9] * 10) | length }}"  # 10 x (one list + its 9 elements) = 100
    if ok:
        assert one(f'"{source}"') == 10
    else:
        assert scalar_error(source).startswith(AT + "result too large")
    assert one('"{{ (3 * [1]) | length }}"') == 3  # int * list is the same operation


def test_nesting_at_the_limit() -> None:
    n = jinja.MAX_NESTING
    assert one(f'"{{{{ {"(" * n}1{")" * n} }}}}"') == 1
    assert scalar_error(f"{{{{ {'(' * (n + 1)}1{')' * (n + 1)} }}}}").startswith(AT + "brackets or blocks nested")
    blocks = "{% if true %}" * (n - 1) + "{{ [1] | length }}" + "{% endif %}" * (n - 1)
    assert one(f'"{blocks}"') == "1"
    deeper = "{% if true %}" * n + "{{ [1] | length }}" + "{% endif %}" * n
    assert scalar_error(deeper).startswith(AT + "brackets or blocks nested deeper than 32")


def _chain(length: int) -> dict[str, str | None]:
    """templates/engine.yaml extends t1.yaml ... up to a chain of ``length`` templates."""
    files: dict[str, str | None] = {"templates/engine.yaml": "extends: t1.yaml\nmodel: {name: n}\n"}
    for i in range(1, length - 1):
        files[f"templates/t{i}.yaml"] = f"extends: t{i + 1}.yaml\nk{i}: {i}\n"
    files[f"templates/t{length - 1}.yaml"] = "region: root\n"
    return files


def test_extends_at_the_limit(tmp_path: Path) -> None:
    assert engine(mini_repo(tmp_path / "ok", _chain(MAX_EXTENDS)))["region"] == "root"
    with pytest.raises(InputError) as exc:
        compiled(mini_repo(tmp_path / "long", _chain(MAX_EXTENDS + 1)))
    assert str(exc.value) == (
        f"templates/t{MAX_EXTENDS - 1}.yaml:1:1: a chain of extends is at most {MAX_EXTENDS} templates long"
    )


def test_a_1500_long_chain_of_extends_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="a chain of extends is at most 32 templates long"):
        compiled(mini_repo(tmp_path, _chain(1500)))  # before: RecursionError, exit 70


BACKSTOP = """
import sys
from compiler.errors import InputError
from compiler.load.yaml import load_document
from compiler.load.yaml import load_document
from compiler.render import jinja
jinja.MAX_MEMORY_BYTES = int(sys.argv[2])
doc = load_document(('a: 1\\nv: "' + sys.argv[1] + '"\\n').encode(), path="templates/t.yaml", layer="template")
try:
    jinja.Renderer({"big": list(range(100000))}, {}).render(jinja.plan_template(doc, doc.value))
    print("ok")
except InputError as e:
    print(e)
"""


def backstop(source: str, memory: int = jinja.MAX_MEMORY_BYTES) -> str:
    done = subprocess.run(
        [sys.executable, "-c", BACKSTOP, source, str(memory)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_cpu_time_is_bounded_inside_steps_no_counter_sees() -> None:
    # 200,000 steps, each a C call over 100,000 elements: only the CPU timer stops it.
    source = "{% for i in range(100000) %}{{ big.count(1) }}{% endfor %}"
    assert backstop(source).startswith("templates/t.yaml:2:1: template error: rendering took over 1.5s of CPU time")


def test_memory_is_bounded_inside_one_c_call() -> None:
    source = "{{ ('x' * 4000000) | length }}"  # one C call builds a 4 MB string
    assert backstop(source) == "ok"
    assert backstop(source, memory=2 * 2**20).startswith(
        "templates/t.yaml:2:1: template error: rendering needs over 2 MiB of memory"
    )


def test_validate_names_the_template_line_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = copy_example(tmp_path / "repo")
    template = repo / "templates/observatory.yaml"
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    template.write_text(template.read_text() + textwrap.dedent(f'slow: "{loop}"\n'))
    line = template.read_text().count("\n")
    capsys.readouterr()
    assert main(["-C", str(repo), "validate"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"llmcc: templates/observatory.yaml:{line}:1: template error: rendering takes over")
    assert len(err) == 2  # one line for every environment, and the verdict


def test_lipsum_takes_integers_and_dicts_count_inside_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    assert scalar_error("{{ lipsum('5') }}").startswith(AT + "lipsum takes integer n and max")
    monkeypatch.setattr(jinja, "MAX_OUTPUT_CHARS", 100)
    assert one("\"{{ ([{'k': 'abcdefgh'}] * 10) | length }}\"") == 10  # 10 x (1 + 1 + 8)
    assert scalar_error("{{ [{'k': 'abcdefghi'}] * 10 }}").startswith(AT + "result too large")


def test_blocks_nested_past_what_the_parser_can_read() -> None:
    deep = "{% set a %}" * 400 + "x" + "{% endset %}" * 400  # block sets are not counted as nesting
    assert scalar_error(deep) == AT + "nested too deeply"


def test_a_bound_passed_between_two_scalars_names_the_template() -> None:
    took = pytest.raises(InputError, match=r"^templates/t.yaml: template error: rendering took over")
    with took, jinja.bounded("templates/t.yaml"):
        raise jinja.LimitError("rendering took over 1.5s of CPU time")
    needs = pytest.raises(InputError, match=r"^templates/t.yaml: template error: rendering needs over 128 MiB$")
    with needs, jinja.bounded("templates/t.yaml"):
        raise MemoryError


def test_with_another_thread_running_the_counted_bounds_still_hold() -> None:
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert scalar_error("{{ lipsum(10000000) }}").startswith(AT + "rendering takes over 1,000,000 steps")
        assert one('"{{ [1, 2] | length }}"') == 2
    finally:
        stop.set()
        thread.join()


SHARED = "{% set ns = namespace(x=['abcdefgh'], y=['abcdefgh']) %}{% for i in range(40) %}"
SHARED += "{% set ns.x = [ns.x, ns.x] %}{% set ns.y = [ns.y, ns.y] %}{% endfor %}"


@pytest.mark.parametrize(
    "use",
    ["{{ ns.x }}", "{{ ns.x | tojson }}", "{{ ns.x == ns.y }}", "{{ ns.x ~ '' }}", "{{ '%s' % [ns.x] }}"],
)
def test_a_value_built_by_sharing_counts_as_its_copies(use: str) -> None:
    # 2**40 strings in 41 lists: str(), json and == would each run for hours inside one C call.
    assert scalar_error(SHARED + use).startswith(AT + "result too large")


@pytest.mark.parametrize(
    "source",
    [
        "{{ [[1] * 4194304] }}",  # a literal holding a list at the limit
        "{{ dict(a='x' * 4000000, b='y' * 4000000) }}",  # a global's result
        "{{ [1, 2] | batch(4, 'x' * 2100000) | list }}",  # a filter's result: the fill, twice
        "{{ ('x' * 3000000) | list }}",  # 3,000,000 strings and their characters
        "{{ (' ' * 4194304).split(' ') }}",  # a method's result: 4,194,305 empty strings
    ],
)
def test_every_list_and_dict_a_template_builds_is_weighed(source: str) -> None:
    assert scalar_error(source).startswith(AT + "result too large")


def test_value_depth_at_the_limit() -> None:
    nest = "{% set ns = namespace(x=1) %}{% for i in range(N) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x | length }}"
    assert one(f'"{nest.replace("N", str(jinja.MAX_VALUE_DEPTH))}"') == "1"
    too_deep = nest.replace("N", str(jinja.MAX_VALUE_DEPTH + 1))
    assert scalar_error(too_deep).startswith(AT + "a value nested deeper than 100 levels")


def test_nothing_is_evaluated_while_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    # Jinja's optimizer folds constant expressions at compile time, outside every bound:
    # {{ [1] | batch(10000000, 'x') | list }} ran there, unbounded.
    calls: list[str] = []

    def recording(value: str) -> str:
        calls.append(value)
        return value.upper()

    monkeypatch.setitem(_sandbox.ENV.filters, "upper", recording)
    doc = load_document(b"v: \"{{ 'folded?' | upper }}\"\n", path="templates/t.yaml", layer="template")
    plan = jinja.plan_template(doc, doc.value)
    assert calls == []
    assert jinja.Renderer({}, {}).render(plan) == {"v": "FOLDED?"}
    assert calls == ["folded?"]


def test_sum_of_lists_is_one_pass() -> None:
    # Before: builtins.sum copied the growing list per item in one C call no timer stops (20 s of CPU).
    assert backstop("{{ ([[1]] * 100000) | sum(start=[]) | length }}") == "ok"
    assert one(json.dumps("{{ [[1], [2]] | sum(start=[]) }}")) == [1, 2]
    assert one(json.dumps("{{ [(1,), (2,)] | sum(start=()) }}")) == [1, 2]
    assert one(json.dumps("{{ [{'a': [1]}, {'a': [2]}] | sum('a', start=[]) }}")) == [1, 2]
    assert one(json.dumps("{{ [1, 2] | sum(start=1) }}")) == 4
    assert "TypeError: can only concatenate list (not int)" in scalar_error("{{ [1] | sum(start=[]) }}")


def test_strip_characters_are_bounded() -> None:
    # Before: 'a' * 400000 stripped of 'b' * 400000 + 'a' ran 1.8 s in one C call (quadratic).
    assert one(json.dumps("{{ ('a' * 400000) | trim('b' * 400000 + 'a') }}")) == ""
    assert one(
        json.dumps("{{ ' xay ' | trim('x ') }}{{ 'xxy'.lstrip('x') }}{{ 'yxx'.rstrip('x') }}{{ ' z '.strip() }}")
    ) == ("ayyyz")
    distinct = (
        "{% set ns = namespace(s='') %}{% for i in range(300) %}{% set ns.s = ns.s ~ '%c' % (i + 256) %}{% endfor %}"
    )
    assert scalar_error(distinct + "{{ ('a' * 1000000).strip(ns.s) }}").startswith(
        AT + "strip: 300 distinct characters to strip from 1,000,000 is too costly"
    )


TENANT_BACKSTOP = """
import sys
from compiler.compile.pipeline import CompileCaches, compile_target
from compiler.errors import InputError
from compiler.project import Target
from compiler.render import jinja
from tests.core._repos import open_repo
jinja.MAX_MEMORY_BYTES = int(sys.argv[2])
repo, caches = open_repo(__import__("pathlib").Path(sys.argv[1])), CompileCaches()
for target in (Target("staging"), Target("staging", "acme"), Target("prod", "acme")):
    try:
        compile_target(repo, target, validate=False, caches=caches)
        print(target, "ok")
    except InputError as e:
        print(target, e)
"""


def tenant_backstop(tmp_path: Path, scalar: str, n: int, memory: int = jinja.MAX_MEMORY_BYTES) -> list[str]:
    """Compile the environment and two tenant targets whose tenant file alone sets ``n`` high.

    The tenants inherit their environment's modules and render only the scalars whose
    variables they change (``compiler.compile.inherit``): the scalar runs in a tenant alone.
    """
    root = mini_repo(
        tmp_path,
        {
            "templates/engine.yaml": ENGINE_TEMPLATE + f'slow: "{scalar}"\n',
            "environments/staging.yaml": "vars:\n  n: 1\n",
            "environments/tenants/acme.yaml": f"vars:\n  n: {n}\n",
        },
    )
    done = subprocess.run(
        [sys.executable, "-c", TENANT_BACKSTOP, str(root), str(memory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,  # without the CPU bound the loop runs for many minutes
        cwd=Path(__file__).resolve().parents[2],
    )
    return done.stdout.splitlines()


def test_a_runaway_scalar_that_only_a_tenant_runs_is_stopped_at_its_line(tmp_path: Path) -> None:
    # 100,000 steps, each a C call building and scanning 4 MB: only the CPU timer stops it.
    scalar = "{% for i in range(n) %}{{ ('x' * 4000000).count('y') }}{% endfor %}"
    out = tenant_backstop(tmp_path, scalar, 100_000)
    assert out[0] == "staging ok"
    where = "templates/engine.yaml:8:1: template error: rendering took over 1.5s of CPU time in "
    assert out[1].startswith(f"staging@acme {where}")
    # prod@acme: the same scalar with the same variables fails from the cache, at the same line
    assert out[2] == out[1].replace("staging@acme", "prod@acme")


def test_a_tenant_scalar_that_allocates_past_the_limit_is_stopped_at_its_line(tmp_path: Path) -> None:
    out = tenant_backstop(tmp_path, "{{ ('x' * n) | length }}", 4_000_000, memory=2 * 2**20)
    assert out[0] == "staging ok"
    assert out[1] == (
        "staging@acme templates/engine.yaml:8:1: template error: rendering needs over 2 MiB of memory"
        " in \"{{ ('x' * n) | length }}\""
    )
    assert out[2] == out[1].replace("staging@acme", "prod@acme")
