"""Issue 10 §6: what the bundle holds is what policies, explain, diff, history and json output see.

Each value class is set twice, in a layer (``d_<case>``) and through a template
variable (``t_<case>``), in the second commit of a real git repository; every
consumer must see the same type and the same digits, or fail with the value's
file:line and the reason.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from compiler.bundle.canonical import loads_strict
from compiler.cli import main
from tests.conftest import GitRepo, init_repo

# case: (YAML spelling, the value, a CEL rule on `v` that holds)
FIT: dict[str, tuple[str, object, str]] = {
    "int64_max": ("9223372036854775807", 2**63 - 1, "v == 9223372036854775807 && type(v) == int"),
    "int64_min": ("-9223372036854775808", -(2**63), "v == -9223372036854775807 - 1 && type(v) == int"),
    "beyond_double_int": ("9007199254740993", 2**53 + 1, "v == 9007199254740993 && v != 9007199254740992"),
    "float_one": ("1.0", 1.0, "type(v) == double && v == 1.0"),
    "int_one": ("1", 1, "type(v) == int && v == 1"),
    "negative_zero": ("-0.0", -0.0, "type(v) == double && v == 0.0"),
    "double_max": ("1.7976931348623157e308", 1.7976931348623157e308, "v == 1.7976931348623157e308"),
    "subnormal": ("5e-324", 5e-324, "v > 0.0 && v < 1e-323"),
    "string_float": ('"1.0"', "1.0", 'v == "1.0"'),
    "string_hex": ('"0x10"', "0x10", 'v == "0x10"'),
    "string_exp": ('"1e3"', "1e3", 'v == "1e3"'),
    "yaml_hex": ("0x10", 16, "v == 16 && type(v) == int"),  # YAML 1.2 core schema: an int
}
# ints a bundle holds exactly and CEL's 64-bit int cannot (the library would make a uint or a double)
UNFIT: dict[str, tuple[str, int]] = {
    "int64_max_plus_1": ("9223372036854775808", 2**63),
    "uint64_max_plus_1": ("18446744073709551616", 2**64),
    "int64_min_minus_1": ("-9223372036854775809", -(2**63) - 1),
}
CASES = {**{k: (s, v) for k, (s, v, _) in FIT.items()}, **UNFIT}
KEYS = [f"{kind}_{case}" for case in CASES for kind in ("d", "t")]


def exact(seen: object, want: object) -> bool:
    """Same JSON type and the same JSON text (``1`` is not ``1.0``, ``0.0`` is not ``-0.0``)."""
    return type(seen) is type(want) and json.dumps(seen) == json.dumps(want)


def run(root: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-C", str(root), *argv])
    return code, out.getvalue(), err.getvalue()


def _prod_layer() -> str:
    lines = ["vars:", *(f"  {case}: {spelling}" for case, (spelling, _) in CASES.items()), "modules:", "  m:"]
    return "\n".join([*lines, *(f"    d_{case}: {spelling}" for case, (spelling, _) in CASES.items())]) + "\n"


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every consumer's output, computed once: the repository does not change between the tests."""
    repo = init_repo(tmp_path_factory.mktemp("values") / "repo")
    repo.write("llmcc.yaml", "project: values\nenvironments:\n  dev: {}\n  prod: {}\n")
    repo.write("schemas/m.schema.json", '{"type": "object"}')
    repo.write("templates/m.yaml", "".join(f't_{case}: "{{{{ {case} }}}}"\n' for case in CASES))
    repo.write("environments/base.yaml", "vars:\n" + "".join(f"  {case}: 0\n" for case in CASES))
    repo.write("environments/dev.yaml", "{}\n")
    repo.write("environments/prod.yaml", "{}\n")
    repo.commit("zeros")
    repo.write("environments/prod.yaml", _prod_layer())
    rules = [
        (f"{k}-{case}", re.sub(r"\bv\b", f"config.m.{k}_{case}", r)) for case, (*_, r) in FIT.items() for k in "dt"
    ]
    rules += [(f"{k}-{case}", f"config.m.{k}_{case} != 0") for case in UNFIT for k in "dt"]
    repo.write("policies/values.yaml", "".join(f"- name: {n}\n  rule: '{r}'\n" for n, r in rules))
    repo.commit("values")
    out: dict[str, Any] = {"repo": repo}
    out["compile"] = run(repo.path, "compile", "-t", "prod", "--out", "dist")
    repo.write("policies/values.yaml", "[]\n")  # a target that fails its policies gets no bundle
    out["bundle"] = run(repo.path, "compile", "-t", "prod", "--out", "dist")
    out["bundle_bytes"] = (repo.path / "dist" / "prod.bundle.json").read_bytes()
    repo.git("checkout", "--", "policies/values.yaml")
    out["validate"] = run(repo.path, "validate", "-t", "prod", "--format", "json")
    out["explain"] = run(repo.path, "explain", "prod", "m", "--format", "json")
    out["diff"] = run(repo.path, "diff", "HEAD~1", "HEAD", "-t", "prod", "--format", "json")
    out["diff_text"] = run(repo.path, "diff", "HEAD~1", "HEAD", "-t", "prod")
    return out


def test_the_repository_compiles_and_only_unfit_ints_fail_policies(seen: dict[str, Any]) -> None:
    assert seen["compile"][0] == 1  # the policies on the six unfit values fail
    assert seen["bundle"][0] == 0, seen["bundle"][2]
    code, out, _ = seen["validate"]
    assert code == 1
    failed = sorted(d["rule"] for d in json.loads(out)["diagnostics"])
    assert failed == sorted(f"{kind}-{case}" for case in UNFIT for kind in "dt")


@pytest.mark.parametrize("key", KEYS)
def test_bundle(seen: dict[str, Any], key: str) -> None:
    want = CASES[key[2:]][1]
    data = seen["bundle_bytes"]
    bundle = loads_strict(data)
    assert exact(bundle["modules"]["m"][key], want)  # type: ignore[index,call-overload]
    assert f'"{key}":{json.dumps(want)}'.encode() in data


@pytest.mark.parametrize("key", KEYS)
def test_explain(seen: dict[str, Any], key: str) -> None:
    want = CASES[key[2:]][1]
    code, out, err = seen["explain"]
    assert code == 0, err
    assert exact(json.loads(out)["value"][key], want)
    code, out, err = run(seen["repo"].path, "explain", "prod", f"m.{key}")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"prod m $.{key} = {json.dumps(want)}"


@pytest.mark.parametrize("key", KEYS)
def test_diff(seen: dict[str, Any], key: str) -> None:
    want = CASES[key[2:]][1]
    code, out, err = seen["diff"]
    assert code == 0, err
    (target,) = json.loads(out)["targets"]
    (change,) = [c for c in target["changes"] if c["path"] == f"$.{key}"]
    assert (change["kind"], change["old"]) == ("added", None) if key[0] == "d" else ("changed", 0)
    assert exact(change["new"], want)
    text = seen["diff_text"][1]
    shown = f"  + $.{key}: {json.dumps(want)}" if key[0] == "d" else f"  ~ $.{key}: 0 -> {json.dumps(want)}"
    assert shown in text.splitlines()


@pytest.mark.parametrize("key", KEYS)
def test_history(seen: dict[str, Any], key: str) -> None:
    want = CASES[key[2:]][1]
    code, out, err = run(seen["repo"].path, "history", "prod", f"m.{key}", "--format", "json")
    assert code == 0, err
    newest = json.loads(out)["changes"][0]
    assert exact(newest["new"], want)


@pytest.mark.parametrize("key", KEYS)
def test_policy(seen: dict[str, Any], key: str) -> None:
    case = key[2:]
    diags = {d["rule"]: d for d in json.loads(seen["validate"][1])["diagnostics"]}
    name = f"{key[0]}-{case}"
    if case in FIT:
        assert name not in diags  # the rule saw the value with its type and every digit
        return
    d = diags[name]
    assert d["severity"] == "error"
    assert d["message"] == (
        f'policy {name} could not be evaluated: config["m"].{key} is {CASES[case][1]}, beyond CEL\'s int '
        "(64-bit signed, -9223372036854775808 to 9223372036854775807): rules cannot read it unchanged"
    )
    line = 2 + list(CASES).index(case) + (len(CASES) + 2 if key[0] == "d" else 0)
    assert d["notes"][0].startswith(f"environments/prod.yaml:{line}:")


BAD = {
    "1e400": "1e400 is beyond the range of a double (about ±1.8e308): it would become infinity",
    "-1e400": "-1e400 is beyond the range of a double (about ±1.8e308): it would become infinity",
    "!!float 1e400": "1e400 is beyond the range of a double (about ±1.8e308): it would become infinity",
    "1e-400": "1e-400 is too small for a double (under about 4.9e-324): it would become 0",
    "-2.5E-999": "-2.5E-999 is too small for a double (under about 4.9e-324): it would become 0",
    ".nan": ".nan is not a JSON number (no NaN or infinity in JSON)",
    ".inf": ".inf is not a JSON number (no NaN or infinity in JSON)",
    "!override -.Inf": "-.Inf is not a JSON number (no NaN or infinity in JSON)",
}


@pytest.fixture
def committed(git_repo: GitRepo) -> GitRepo:
    git_repo.write("llmcc.yaml", "project: values\nenvironments:\n  prod: {}\n")
    git_repo.write("schemas/m.schema.json", '{"type": "object"}')
    git_repo.write("templates/m.yaml", 'x: 0\ny: "{{ y }}"\n')
    git_repo.write("environments/prod.yaml", "vars:\n  y: 1\n")
    git_repo.commit("good")
    return git_repo


@pytest.mark.parametrize("spelling", BAD)
@pytest.mark.parametrize(
    "argv",
    [
        ["compile", "--out", "dist"],
        ["validate"],
        ["validate", "--format", "json"],
        ["explain", "prod", "m.x"],
        ["diff", "HEAD"],
        ["history", "prod", "m.x"],
    ],
)
def test_a_number_json_cannot_hold_is_an_error_at_its_line(committed: GitRepo, spelling: str, argv: list[str]) -> None:
    committed.write("environments/prod.yaml", f"vars:\n  y: 1\nmodules:\n  m:\n    x: {spelling}\n")
    where = f"environments/prod.yaml:5:8: {BAD[spelling]}"
    if argv[0] == "history":  # a commit that does not load is skipped, and says why
        sha = committed.commit("bad")
        code, out, err = run(committed.path, *argv)
        assert (code, err) == (0, "")
        assert f"skipped {sha[:7]} (bad): does not compile: {where}" in out
        return
    code, out, err = run(committed.path, *argv)
    assert code == 2
    if argv[-1] == "json":
        (diag,) = json.loads(out)["diagnostics"]
        assert (diag["file"], diag["line"], diag["column"], diag["message"]) == (
            "environments/prod.yaml",
            5,
            8,
            BAD[spelling],
        )
    else:
        assert where in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        ("{{ 1e308 * 10 }}", "inf is not a JSON number in '{{ 1e308 * 10 }}'"),
        ("{{ y * 1e400 }}", "inf is not a JSON number in '{{ y * 1e400 }}'"),
        ("{{ 1e400 }}", "inf is not a JSON number in '{{ 1e400 }}'"),  # was NameError: name 'inf', exit 70
        ("{{ 'nan' | float }}", "nan is not a JSON number in \"{{ 'nan' | float }}\""),  # was exit 70 too
    ],
)
def test_a_template_that_computes_nan_or_infinity_fails_at_its_line(
    committed: GitRepo, expression: str, shown: str
) -> None:
    committed.write("templates/m.yaml", f'x: 0\ny: "{{{{ y }}}}"\nz: "{expression}"\n')
    code, _, err = run(committed.path, "compile", "--out", "dist")
    assert (code, err) == (2, f"llmcc: templates/m.yaml:3:1: ValueError: {shown}\n")
    assert not (committed.path / "dist" / "prod.bundle.json").exists()


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        ("{{ {1: 'a'} }}", "mapping keys must be strings, not int 1"),  # was the key "1"
        ("{{ {'1': 'a', 1: 'b'} }}", "mapping keys must be strings, not int 1"),  # was one key: a value lost
        ("{{ {true: 'a'} }}", "mapping keys must be strings, not bool True"),  # was the key "True"
        ("{{ {'k': {none: 1} } }}", "mapping keys must be strings, not NoneType None"),  # was the key "None"
        (
            "{{ [1, 2] | map('string') }}",
            "a generator is not a JSON value (add | list)",
        ),  # was "<generator object ...>"
        ("{{ range(3) }}", "a range is not a JSON value (add | list)"),  # was the string "range(0, 3)"
    ],
)
def test_a_template_value_json_cannot_hold_fails_at_its_line(committed: GitRepo, expression: str, shown: str) -> None:
    """A Jinja expression keeps its type: one that is no JSON value is an error, never its Python str()."""
    committed.write("templates/m.yaml", f'x: 0\ny: "{{{{ y }}}}"\nz: "{expression}"\n')
    code, _, err = run(committed.path, "compile", "--out", "dist")
    assert (code, err) == (2, f"llmcc: templates/m.yaml:3:1: ValueError: {shown} in {expression!r}\n")
