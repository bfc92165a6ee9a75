"""A native library's panic fails closed with one line, never a traceback, a hang or a pass.

PyO3 raises a Rust panic as ``pyo3_runtime.PanicException``, a ``BaseException``:
``except Exception`` lets it through. jsonschema-rs 0.61 panics ("A named target
lives in its resolver's resource") on a schema in which a subschema repeats a URI
another one has and a reference goes through an anchor; an attacker's random
schema generator found it (a traceback, exit 1). Such a schema is now refused at
the repeated keyword's line (JSON Schema 2020-12 core §9.1.2), and every call into
the library turns a panic into our error, as do the CLI's error boundary, the
``-j`` workers (a BaseException ended the worker and the build waited for ever)
and the runtime client.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import jsonschema_rs
import pytest

import compiler.cli.validate as validate_command
import compiler.compile.pipeline as pipeline
from compiler.cli import main
from compiler.errors import InputError, LlmccError, is_panic
from compiler.native import panics_as
from compiler.validate.schema import ModuleSchema
from compiler.validate.schemafiles import engine_failed
from tests.core._repos import many_targets_repo, mini_repo

MODULE = "schemas/engine.schema.json"
# The nested resource repeats the root's $id, and the $ref goes through an anchor.
PANICS = {
    "$id": "m.json",
    "$ref": "#x",
    "$defs": {"a": {"$anchor": "x"}, "b": {"$id": "o.json", "$defs": {"c": {"$id": "m.json"}}}},
}


def panic() -> None:
    """A real panic of jsonschema-rs 0.61 (the schema above, compiled without our checks)."""
    jsonschema_rs.validator_for(PANICS, base_uri="https://llmcc.invalid/schemas/m.schema.json")


def test_the_schema_still_panics_the_engine() -> None:
    # if a release fixes it, the guards below are tested with a panic no longer: find another
    with pytest.raises(BaseException, match="A named target lives in its resolver's resource") as caught:
        panic()
    assert is_panic(caught.value)
    assert not isinstance(caught.value, Exception)


def run(root: Path, *argv: str) -> int:
    return main(["-q", "-C", str(root), *argv])


def test_a_repeated_id_is_refused_at_its_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path / "repo", {MODULE: json.dumps(PANICS, indent=2) + "\n"})
    assert run(root, "validate") == 2
    out, err = capfd.readouterr()  # file descriptor 2: what Rust's panic hook writes too
    assert err.splitlines() == [
        f"llmcc: {MODULE}:12:18: $id 'm.json' names schemas/m.json, which {MODULE}:2:10 names already "
        "(one URI, two schemas)"
    ]
    assert "panicked" not in out + err


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        # an anchor name twice in one resource (core §8.2.2)
        ({"$ref": "#x", "$defs": {"a": {"$anchor": "x"}, "b": {"$dynamicAnchor": "x"}}}, "8:25: $dynamicAnchor 'x'"),
        # a nested $id that is the file's own URI, or empty (the enclosing resource's)
        ({"$defs": {"b": {"$id": "engine.schema.json"}}}, "4:14: $id 'engine.schema.json'"),
        ({"$defs": {"b": {"$id": ""}}}, "4:14: $id ''"),
    ],
)
def test_a_uri_named_twice_in_one_file_is_refused(schema: object, where: str) -> None:
    with pytest.raises(InputError, match=r"names .*, which schemas/engine.schema.json:\d+:\d+ names already") as e:
        ModuleSchema.load("engine", MODULE, json.dumps(schema, indent=2).encode())
    assert str(e.value).startswith(f"{MODULE}:{where}")


def test_a_uri_named_again_in_another_file_is_refused_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared = {"$defs": {"name": {"type": "string"}, "other": {"$id": "../engine.schema.json"}}}
    root = mini_repo(
        tmp_path / "repo",
        {
            MODULE: '{"$ref": "shared/defs.json#/$defs/name"}\n',
            "schemas/shared/defs.json": json.dumps(shared, indent=1),
        },
    )
    assert run(root, "validate") == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "llmcc: schemas/shared/defs.json:7:11: $id '../engine.schema.json' names schemas/engine.schema.json, "
        "which schemas/engine.schema.json:1:1 names already (one URI, two schemas)"
    )


def test_a_panic_inside_a_guarded_call_is_our_error_and_rust_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(InputError) as caught, panics_as(engine_failed(MODULE), quiet=True):
        panic()
    assert str(caught.value) == (
        f"{MODULE}:1:1: the JSON Schema engine (jsonschema-rs) cannot compile this schema: "
        "A named target lives in its resolver's resource"
    )
    assert is_panic(caught.value.__cause__)  # type: ignore[arg-type]
    assert capfd.readouterr().err == ""  # Rust's panic hook wrote to /dev/null
    print("stderr is back", file=__import__("sys").stderr)
    assert capfd.readouterr().err == "stderr is back\n"


def test_a_panic_reaching_the_error_boundary_is_exit_70_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def panicking(*_: object) -> int:
        panic()
        return 0

    monkeypatch.setattr(validate_command, "run", panicking)
    assert run(mini_repo(tmp_path / "repo"), "validate") == 70
    assert capsys.readouterr().err.splitlines() == [
        "llmcc: internal error: PanicException: A named target lives in its resolver's resource "
        "(run with --debug for the traceback)"
    ]


@pytest.fixture
def no_hang() -> Iterator[None]:
    """A build that waits for a worker that is gone would wait for ever: end it instead (not a time bar)."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError("the build waited for a worker that is gone")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.usefixtures("no_hang")
@pytest.mark.parametrize("raised", ["panic", "exit"])
def test_a_worker_that_meets_a_base_exception_ends_the_build_with_exit_70(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], raised: str
) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=4)  # 11 targets
    real = pipeline.compile_target

    def compile_target(repo: object, target: pipeline.Target, **kw: object) -> object:  # type: ignore[name-defined]
        if target.name == "prod@t01":
            if raised == "panic":
                panic()
            raise SystemExit(3)
        return real(repo, target, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "compile_target", compile_target)
    assert run(root, "compile", "--no-cache", "-j", "4") == 70
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if raised == "panic":
        assert "llmcc: internal error: prod@t01: a native library panicked while compiling it (a bug)" in err
    else:
        assert err.splitlines()[-1] == "llmcc: internal error: a build worker stopped on SystemExit: 3"


def test_guards_pass_other_exceptions_through() -> None:
    with pytest.raises(KeyError), panics_as(engine_failed(MODULE)):
        raise KeyError("x")
    with pytest.raises(LlmccError, match=r"^inner$"), panics_as(engine_failed(MODULE)):
        raise LlmccError("inner")


class _PanickingValidator:
    """A compiled validator that meets a real panic when it validates (none is known in 0.61 that does)."""

    def is_valid(self, instance: object) -> bool:
        panic()
        return True

    def iter_errors(self, instance: object) -> list[object]:
        panic()
        return []


def test_a_panic_while_validating_is_exit_70_never_a_pass() -> None:
    schema = ModuleSchema("engine", MODULE, {}, False, _PanickingValidator(), None)
    message = (
        f"{MODULE}: internal error: the JSON Schema engine (jsonschema-rs) failed validating module 'engine' "
        "against this schema (a bug of the engine; nothing was taken as valid)"
    )
    for check in (schema.check, schema.is_valid):
        with pytest.raises(LlmccError) as caught:
            check({"a": 1})
        assert (str(caught.value), caught.value.exit_code) == (message, 70)


def _interrupt_panic() -> BaseException:
    """A PanicException as PyO3 raises one when a SIGINT lands while the module runs Python code."""
    try:
        panic()
    except BaseException as e:  # noqa: BLE001 - the PanicException class itself
        return type(e)("called `Result::unwrap()` on an `Err` value: PyErr { type: <class 'KeyboardInterrupt'> }")
    raise AssertionError("jsonschema-rs no longer panics on PANICS")


def test_a_panic_wrapping_a_ctrl_c_is_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Attacker: a Ctrl-C inside jsonschema-rs's `import decimal` became exit 70 ("internal error").
    interrupt = _interrupt_panic()
    assert is_panic(interrupt)
    with pytest.raises(KeyboardInterrupt), panics_as(engine_failed(MODULE)):
        raise interrupt

    def interrupted(*_: object) -> int:
        raise interrupt

    monkeypatch.setattr(validate_command, "run", interrupted)
    assert run(mini_repo(tmp_path / "repo"), "validate") == 130
    assert capsys.readouterr().err.splitlines() == ["llmcc: interrupted"]
