"""Issue 10 §2-§3: one schema engine decides and explains; ``$ref`` between files under ``schemas/``.

Every case starts from ``llmcc init``: the scaffolded repository plus a module
or two, checked through ``main`` as a user runs it.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.compile.repository import Repository
from compiler.errors import InputError
from compiler.policy.secretmeta import rotate_every
from compiler.sources.gitrev import GitRevTree
from compiler.sources.worktree import WorkTree
from compiler.validate.schema import FORMATS, ModuleSchema
from compiler.validate.schemafiles import locate, refuse_retrieval
from compiler.validate.secretwalk import schema_has_secrets, secret_paths
from tests.conftest import GitRepo, init_repo, replace_placeholder
from tests.policy._support import issue6_commands

__all__ = ["issue6_commands"]
pytestmark = pytest.mark.usefixtures("issue6_commands")

META_SCHEMA = """\
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "owner_email": {"type": "string", "format": "email"},
    "released_at": {"type": "string", "format": "date-time"},
    "team": {"type": "string", "pattern": "^\\\\p{Lu}[a-z]+$"},
    "matcher": {"type": "string", "format": "regex"}
  }
}
"""


@pytest.fixture
def scaffold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> GitRepo:
    """A repository made by ``llmcc init`` and committed (keys outside it, under a temporary home)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    dest = tmp_path / "conf"
    assert main(["init", str(dest)]) == 0
    replace_placeholder(dest, tmp_path / "config-home/llmcc/keys/conf/age.key")
    capsys.readouterr()
    repo = init_repo(dest)
    repo.commit("llmcc init")
    return repo


def validate(repo: GitRepo, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["-C", str(repo.path), "validate", "--target", "dev", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "internal error" not in out + err
    return code, out, err


def errors(err: str) -> list[str]:
    """The diagnostic lines of a text report (without the summary line)."""
    return [line for line in err.splitlines() if not line.startswith("llmcc: validate ")]


def with_meta(repo: GitRepo, values: dict[str, str]) -> None:
    repo.write("schemas/meta.schema.json", META_SCHEMA)
    repo.write("templates/meta.yaml", "".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()))


# --- §2: one engine decides validity and writes the messages ---------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # was: internal error: bad escape \p (exit 70)
        ({"team": "Platform", "owner_email": "bad"}, ['$.owner_email: "bad" is not a valid email']),
        ({"team": "Élan"}, []),
        ({"team": "platform"}, ["$.team: \"platform\" does not match pattern '^\\\\p{Lu}[a-z]+$'"]),
        # was: reported alone, gone next to a bad email
        ({"released_at": "yesterday"}, ['$.released_at: "yesterday" is not a valid date-time']),
        (
            {"released_at": "yesterday", "owner_email": "bad"},
            ['$.owner_email: "bad" is not a valid email', '$.released_at: "yesterday" is not a valid date-time'],
        ),
        # was: valid alone, "invalid regex" next to another error
        ({"matcher": "ENV VERSION=(?<value>.*?)$"}, []),
        (
            {"matcher": "ENV VERSION=(?<value>.*?)$", "owner_email": "bad"},
            ['$.owner_email: "bad" is not a valid email'],
        ),
        ({"matcher": "(unclosed"}, ['$.matcher: "(unclosed" is not a valid regex']),
        # an address, not a display name (RFC 5321 Mailbox)
        ({"owner_email": "Ops <ops@example.com>"}, ['$.owner_email: "Ops <ops@example.com>" is not a valid email']),
        ({"owner_email": "ops@example.com", "released_at": "2026-11-29T12:00:00Z"}, []),
    ],
)
def test_the_errors_shown_are_the_errors_that_decided(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str], values: dict[str, str], expected: list[str]
) -> None:
    with_meta(scaffold, values)
    code, _, err = validate(scaffold, capsys)
    shown = sorted(line.split(" meta ", 1)[1].removesuffix(" (target dev)") for line in errors(err))
    assert (code, shown) == (1 if expected else 0, expected), err


def test_a_schema_error_in_json_output_names_the_format(scaffold: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    with_meta(scaffold, {"released_at": "29/11/2026"})
    code, out, _ = validate(scaffold, capsys, "--format", "json")
    [diag] = json.loads(out)["diagnostics"]
    assert (code, diag["message"]) == (1, '"29/11/2026" is not a valid date-time')


@pytest.mark.parametrize(
    ("pattern", "line"),
    [
        ('"^(?=.*[0-9])[a-z0-9]+$"', "lookaround"),
        ('"^(a)\\\\1$"', "backreference"),
    ],
)
def test_a_pattern_that_needs_backtracking_is_refused_at_its_line(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str], pattern: str, line: str
) -> None:
    scaffold.write(
        "schemas/meta.schema.json",
        '{\n  "type": "object",\n  "properties": {\n    "team": {"type": "string", "pattern": '
        + pattern
        + "}\n  }\n}\n",
    )
    scaffold.write("templates/meta.yaml", "team: abc\n")
    code, _, err = validate(scaffold, capsys)
    assert code == 2
    assert err.splitlines()[0].startswith("llmcc: schemas/meta.schema.json:4:43: pattern ")
    assert "needs lookaround or a backreference; patterns must run in linear time" in err


def test_a_catastrophic_pattern_is_matched_in_linear_time(scaffold: GitRepo) -> None:
    """``^(a+)+$`` backtracks exponentially in Python's ``re``; the engine's regex runs in linear time."""
    scaffold.write(
        "schemas/meta.schema.json",
        json.dumps(
            {
                "type": "object",
                "properties": {"team": {"type": "string", "pattern": "^(a+)+$"}},
                # the secret walk matches keys against patternProperties in the same engine
                "patternProperties": {"^(a+)+$": {"x-secret": True}},
            }
        ),
    )
    scaffold.write("templates/meta.yaml", f"team: {'a' * 50_000}!\n{'a' * 40}!: x\n")
    # A subprocess, so that a regression hangs one command (killed), not the suite.
    proc = subprocess.run(
        [sys.executable, "-m", "compiler", "-C", str(scaffold.path), "validate", "--target", "dev"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "meta $.team: " in proc.stderr
    assert "does not match pattern '^(a+)+$'" in proc.stderr


def test_an_unknown_format_is_an_error_at_its_line(scaffold: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    scaffold.write("schemas/meta.schema.json", '{\n  "properties": {\n    "net": {"format": "ipv4-network"}\n  }\n}\n')
    scaffold.write("templates/meta.yaml", "net: 10.0.0.0/8\n")
    code, _, err = validate(scaffold, capsys)
    assert code == 2
    assert err.startswith(
        "llmcc: schemas/meta.schema.json:3:23: unknown format 'ipv4-network' at properties/net/format"
    )


# --- §3: $ref between files under schemas/ ----------------------------------------------------

ROUTER_SCHEMA = """\
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "primary": {"$ref": "%s"},
    "region": {"$ref": "https://schemas.example.com/common.json#/$defs/region"}
  }
}
"""
DEFS = '{"$defs": {"model_name": {"type": "string"}}}\n'
COMMON = """\
{
  "$id": "https://schemas.example.com/common.json",
  "patternProperties": {"^\\\\p{Lu}": {"type": "string"}},
  "$defs": {
    "region": {"$ref": "regions.json"}
  }
}
"""
REGIONS = '{"$id": "https://schemas.example.com/regions.json", "enum": ["eu", "us"]}\n'


def with_router(repo: GitRepo, ref: str = "shared/defs.json#/$defs/model_name", primary: object = "gpt-4o") -> None:
    repo.write("schemas/router.schema.json", ROUTER_SCHEMA % ref)
    # a second module on the same shared files: they are read and checked once
    repo.write(
        "schemas/backup.schema.json", '{"properties": {"model": {"$ref": "shared/defs.json#/$defs/model_name"}}}'
    )
    repo.write("templates/backup.yaml", "model: small\n")
    repo.write("schemas/shared/defs.json", DEFS)
    repo.write("schemas/shared/common.json", COMMON)
    repo.write("schemas/shared/regions.json", REGIONS)
    repo.write("templates/router.yaml", f"primary: {json.dumps(primary)}\nregion: eu\n")


def test_relative_and_id_references_between_files_resolve(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    with_router(scaffold)
    assert validate(scaffold, capsys)[0] == 0
    with_router(scaffold, primary=5)
    scaffold.write("environments/dev.yaml", "modules:\n  router:\n    region: mars\n")
    code, _, err = validate(scaffold, capsys)
    assert (code, errors(err)) == (
        1,
        [
            'environments/dev.yaml:3:5: router $.region: "mars" is not one of "eu", "us" (target dev, layer dev)',
            'templates/router.yaml:1:1: router $.primary: 5 is not of type "string" (target dev)',
        ],
    )


UNRESOLVED = (
    "schemas/router.schema.json:5:25: $ref 'shared/defs.json#/$defs/model_nam' does not resolve: "
    "schemas/shared/defs.json has no '/$defs/model_nam'"
)


def test_a_reference_that_does_not_resolve_is_an_input_error_at_its_line(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    with_router(scaffold, ref="shared/defs.json#/$defs/model_nam")
    code, _, err = validate(scaffold, capsys)
    assert (code, err.splitlines()[0]) == (2, f"llmcc: {UNRESOLVED}")
    code, out, _ = validate(scaffold, capsys, "--format", "json")
    [diag] = json.loads(out)["diagnostics"]
    assert code == 2
    assert (diag["file"], diag["line"], diag["column"]) == ("schemas/router.schema.json", 5, 25)
    assert diag["message"] == UNRESOLVED.split(": ", 1)[1]
    code, out, _ = validate(scaffold, capsys, "--format", "github")
    assert code == 2
    assert out.startswith("::error file=schemas/router.schema.json,line=5,col=25,")


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("shared/nope.json#/$defs/x", "no file schemas/shared/nope.json"),
        ("shared/defs.yaml", "no file schemas/shared/defs.yaml (schema files end in .json)"),
        ("../../etc/passwd", "etc/passwd is outside schemas/"),
        ("file:///etc/passwd", "no file under schemas/ has $id 'file:///etc/passwd', and schemas are never fetched"),
        (
            "https://127.0.0.1:9/defs.json",
            "no file under schemas/ has $id 'https://127.0.0.1:9/defs.json', and schemas are never fetched",
        ),
    ],
)
def test_a_reference_outside_the_schema_files_is_never_fetched(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str], ref: str, why: str
) -> None:
    with_router(scaffold, ref=ref)
    code, _, err = validate(scaffold, capsys)
    assert (code, err.splitlines()[0]) == (
        2,
        f"llmcc: schemas/router.schema.json:5:25: $ref {ref!r} does not resolve: {why}",
    )


def test_a_fault_in_a_referenced_file_is_reported_at_that_file(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    with_router(scaffold)
    scaffold.write("schemas/shared/common.json", COMMON.replace('"regions.json"', '"regions.json#/nope"'))
    code, _, err = validate(scaffold, capsys)
    assert (code, err.splitlines()[0]) == (
        2,
        "llmcc: schemas/shared/common.json:5:24: $ref 'regions.json#/nope' does not resolve: "
        "schemas/shared/regions.json has no '/nope'",
    )
    scaffold.write("schemas/shared/common.json", COMMON)
    scaffold.write("schemas/shared/regions.json", REGIONS.replace('"enum"', '\n  "pattern": "(?<=x)y",\n  "enum"'))
    code, _, err = validate(scaffold, capsys)
    assert code == 2
    assert err.startswith("llmcc: schemas/shared/regions.json:2:14: pattern '(?<=x)y' at pattern needs lookaround")
    scaffold.write("schemas/shared/regions.json", REGIONS.replace('"enum"', '\n "minLength": -1, "enum"'))
    code, _, err = validate(scaffold, capsys)
    assert code == 2
    assert err.startswith("llmcc: schemas/shared/regions.json:2:15: invalid JSON Schema at minLength: ")
    scaffold.write("schemas/shared/regions.json", REGIONS.replace('"enum"', '\n "minLength": , "enum"'))
    code, _, err = validate(scaffold, capsys)
    assert code == 2
    assert err.startswith("llmcc: schemas/shared/regions.json:2:15: invalid JSON: Expecting value")
    scaffold.write("schemas/shared/regions.json", REGIONS)
    scaffold.write("schemas/shared/z-copy.json", "{\n  " + COMMON.split("\n", 2)[1] + '\n  "type": "string"}\n')
    code, _, err = validate(scaffold, capsys)
    assert (code, err.splitlines()[0]) == (
        2,
        "llmcc: schemas/shared/z-copy.json:2:12: $id 'https://schemas.example.com/common.json' is already the "
        "$id of schemas/shared/common.json",
    )


# --- siblings: a secret field reached through a $ref to another file --------------------------

SECRET_DEFS = '{"$defs": {"api_key": {"type": "string", "x-secret": true, "x-rotate-every": "30d"}}}\n'
TOKEN_SCHEMA = """\
{
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "token": {"$ref": "shared/defs.json#/$defs/api_key"}
  }
}
"""


def with_token(repo: GitRepo, defs: str = SECRET_DEFS) -> None:
    repo.write("schemas/shared/defs.json", defs)
    repo.write("schemas/router.schema.json", TOKEN_SCHEMA)
    repo.write("templates/router.yaml", "name: r\n")


def identity(tmp_path: Path) -> str:
    return str(tmp_path / "config-home" / "llmcc" / "keys" / "conf" / "age.key")


def test_a_secret_field_reached_through_a_reference_is_secret_everywhere(
    scaffold: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_token(scaffold)
    dev = (scaffold.path / "environments/dev.yaml").read_text(encoding="utf-8")
    scaffold.write("environments/dev.yaml", dev + "modules:\n  router:\n    token: plain-token-value\n")
    code, _, err = validate(scaffold, capsys)
    assert code == 1
    assert "router $.token: secret in plaintext" in err
    assert "plain-token-value" not in err
    assert main(["-C", str(scaffold.path), "hook", "secrets-guard", str(scaffold.path / "environments/dev.yaml")]) == 1
    assert "router $.token: secret in plaintext" in capsys.readouterr().err
    scaffold.write("environments/dev.yaml", dev)

    # `secrets rotate` knows the field is secret, and the bundle seals it.
    canary = f"canary-{uuid.uuid4()}"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(canary.encode())))
    key = identity(tmp_path)
    rotate = ["secrets", "rotate", "router.token", "--target", "prod", "--value-from-stdin", "--identity", key]
    assert main(["-C", str(scaffold.path), *rotate]) == 0
    capsys.readouterr()
    assert main(["-C", str(scaffold.path), "compile", "--target", "prod", "--identity", key]) == 0
    capsys.readouterr()
    bundle = json.loads((scaffold.path / "dist" / "prod.bundle.json").read_text(encoding="utf-8"))
    assert bundle["modules"]["router"]["token"].startswith("ENC[")
    scaffold.commit("router token")

    assert main(["-C", str(scaffold.path), "explain", "prod", "router.token", "--identity", key]) == 0
    assert capsys.readouterr().out.startswith("prod router $.token = <secret>\n")
    assert main(["-C", str(scaffold.path), "diff", "HEAD~1", "HEAD", "--identity", key]) == 0
    # a new module prints in full (issue 13 §3), its secret masked
    assert '  + $:\n    + {\n    +   "name": "r",\n    +   "token": "<secret>"\n    + }\n' in capsys.readouterr().out

    # policies see its rotation period through the reference too
    repo = Repository(WorkTree(scaffold.path))
    assert rotate_every(repo.schema("router"), ("token",)) == "30d"


def test_diff_compiles_each_revision_against_its_own_referenced_files(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only defs.json changes between the revisions: a schema cached by its own blob id would be stale."""
    with_token(scaffold, defs='{"$defs": {"api_key": {"type": "string"}}}\n')
    dev = (scaffold.path / "environments/dev.yaml").read_text(encoding="utf-8")
    scaffold.write("environments/dev.yaml", dev + "modules:\n  router:\n    token: token-before\n")
    scaffold.commit("a plain token")
    with_token(scaffold)
    scaffold.write("environments/dev.yaml", dev + "modules:\n  router:\n    token: token-after\n")
    scaffold.commit("the token becomes a secret")
    assert main(["-C", str(scaffold.path), "diff", "HEAD~1", "HEAD", "--target", "dev"]) == 0
    out = capsys.readouterr().out
    assert "token-after" not in out
    assert "$.token: <secret changed>" in out


# --- the engine's messages, the pointer locator, the file listing -----------------------------


def module_schema(schema: object) -> ModuleSchema:
    return ModuleSchema.load("m", "schemas/m.schema.json", json.dumps(schema).encode())


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        ({"oneOf": [{"type": "string"}, {"minLength": 1}]}, "x", ['$.v: "x" matches more than one schema of oneOf']),
        ({"oneOf": [{"type": "integer"}, {"type": "boolean"}]}, "x", ['$.v: "x" is not of type "integer"']),
        ({"contains": {"type": "integer"}}, ["a"], ["$.v: the list has no item that matches contains"]),
        (False, 1, ["$.v: 1 is not allowed here (false schema)"]),
        ({"propertyNames": {"maxLength": 2}}, {"abc": 1}, ['$.v: property name "abc" must have at most 2 characters']),
        (
            {"properties": {"a": {}}, "unevaluatedProperties": False},
            {"a": 1, "b": 2},
            ["$.v.b: Unevaluated properties are not allowed ('b' was unexpected)"],
        ),
        (
            {"additionalProperties": False, "patternProperties": {"^x": {}}},
            {"xa": 1, "b": 2, "c": 3},
            [
                "$.v.b: Additional properties are not allowed ('b' was unexpected)",
                "$.v.c: Additional properties are not allowed ('c' was unexpected)",
            ],
        ),
        ({"required": ["a"]}, {}, ["$.v: 'a' is a required property"]),
        ({"minProperties": 2}, {"a": 1}, ["$.v: the map must have at least 2 properties"]),
        ({"minimum": 0}, -1, ["$.v: -1 is less than the minimum of 0"]),
        ({"format": "uuid"}, "nope", ['$.v: "nope" is not a valid uuid']),
        ({"contentEncoding": "base64"}, "x", []),  # an annotation in 2020-12
        ({"dependentRequired": {"a": ["b"]}}, {"a": 1}, ["$.v: 'b' is a required property"]),
    ],
)
def test_messages_come_from_the_failing_keyword(schema: object, value: object, expected: list[str]) -> None:
    found = module_schema({"properties": {"v": schema}}).check({"v": value})
    assert ["$." + ".".join(map(str, f.path)) + ": " + f.message for f in found] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"pattern": "\\\\w{1000}{1000}"}',
            "schemas/m.schema.json:1:13: pattern '\\\\w{1000}{1000}' at pattern compiles to a matcher over the size "
            "limit of the linear-time engine",
        ),
        (
            '{\n "properties": {"a": {"$id": "http://[bad"}}}',
            "schemas/m.schema.json:2:30: $id 'http://[bad' is not a URI reference",
        ),
        ('{"type": 1}', "schemas/m.schema.json:1:10: invalid JSON Schema at type: "),
    ],
)
def test_a_schema_that_cannot_compile_is_an_input_error_at_its_line(text: str, message: str) -> None:
    with pytest.raises(InputError) as exc:
        ModuleSchema.load("m", "schemas/m.schema.json", text.encode())
    assert str(exc.value).startswith(message)


def test_the_retriever_never_fetches() -> None:
    with pytest.raises(ValueError, match="schemas are never fetched"):
        refuse_retrieval("https://example.com/x.json")


def test_the_secret_walks_follow_ids_conditionals_and_tuples() -> None:
    schema = module_schema(
        {
            "$defs": {"key": {"$id": "https://example.com/key.json", "$ref": "#/$defs/inner", "$defs": {"inner": {}}}},
            "properties": {
                "creds": {
                    "$id": "https://example.com/creds.json",
                    "$defs": {"k": {"x-secret": True, "x-rotate-every": "1w"}},
                    "properties": {"k": {"$ref": "#/$defs/k"}},
                },
                "pair": {"prefixItems": [{"type": "string"}, {"x-secret": True}], "items": {"x-secret": True}},
                "cond": {"if": {"required": ["mode"]}, "then": {"properties": {"pw": {"x-secret": True}}}},
                "skip": {"$ref": "#/$defs/key"},
            },
        }
    )
    instance = {"creds": {"k": "a"}, "pair": ["x", "y", "z"], "cond": {"mode": 1, "pw": "p"}, "skip": {"a": 1}}
    assert sorted(secret_paths(schema, instance)) == [("cond", "pw"), ("creds", "k"), ("pair", 1), ("pair", 2)]
    assert rotate_every(schema, ("creds", "k")) == "1w"
    assert rotate_every(schema, ("skip", "a")) is None


def test_an_empty_key_stays_in_the_path() -> None:
    """jsonschema-rs leaves empty-string keys out of its error paths; the findings put them back."""
    schema = module_schema({"additionalProperties": {"additionalProperties": {"type": "integer"}}})
    found = schema.check({"labels": {"": "x", "a": {"": 1}, "b": [""]}, "": {"": "y"}})
    assert [(f.path, f.message) for f in found] == [
        (("", ""), '"y" is not of type "integer"'),
        (("labels", ""), '"x" is not of type "integer"'),
        (("labels", "a"), 'the map is not of type "integer"'),
        (("labels", "b"), 'the list is not of type "integer"'),
    ]


def test_pattern_properties_match_in_the_engines_dialect() -> None:
    schema = module_schema({"patternProperties": {"^\\p{Lu}": {"x-secret": True}, "^(a+)+$": {"x-secret": True}}})
    long_key = "a" * 40 + "!"
    assert sorted(secret_paths(schema, {"Token": "x", "token": "y", long_key: "z", "aaa": "w"})) == [
        ("Token",),
        ("aaa",),
    ]


@pytest.mark.parametrize(
    ("pointer", "where"),
    [
        ((), (1, 1)),
        (("a",), (2, 8)),
        (("a", 1), (2, 12)),
        (("a", 2, 'k"ey'), (4, 15)),
        (("b",), (5, 8)),
        (("nope", "x"), (1, 1)),
        (("a", 7), (2, 8)),
        (("b", "x"), (5, 8)),
    ],
)
def test_locate_finds_the_line_of_a_pointer(pointer: tuple, where: tuple[int, int]) -> None:
    text = '{\n  "a": [1, "x",\n    {"z": {"q": []},\n     "k\\"ey": true}],\n  "b": 2\n}'
    assert locate(text, pointer) == where


def test_list_tree_walks_subdirectories_in_both_trees(git_repo: GitRepo) -> None:
    root = git_repo.path / "conf"
    for rel in ("schemas/a.schema.json", "schemas/shared/defs.json", "schemas/shared/deep/x.json", "other/y.json"):
        git_repo.write(f"conf/{rel}", "{}")
    rev = git_repo.commit("files")
    expected = ["schemas/a.schema.json", "schemas/shared/deep/x.json", "schemas/shared/defs.json"]
    assert WorkTree(root).list_tree("schemas") == expected
    assert GitRevTree(root, rev).list_tree("schemas") == expected
    assert WorkTree(root).list_tree("missing") == GitRevTree(root, rev).list_tree("missing") == []


def test_history_visits_a_commit_that_changed_only_a_referenced_file(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    with_token(scaffold, defs='{"$defs": {"api_key": {"type": "string"}}}\n')
    dev = (scaffold.path / "environments/dev.yaml").read_text(encoding="utf-8")
    scaffold.write("environments/dev.yaml", dev + "modules:\n  router:\n    token: tok-1\n")
    scaffold.commit("a plain token")
    with_token(scaffold)
    scaffold.commit("the token becomes a secret")
    assert main(["-C", str(scaffold.path), "history", "dev", "router.token"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "dev router $.token: 2 changes in 3 commits that touched its files"
    assert "the token becomes a secret\n    <secret changed>\n" in out


def test_every_format_the_readme_lists_is_asserted() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    listed = readme.split("**Formats asserted**: ", 1)[1].split(". Any other", 1)[0]
    listed = re.sub(r"\s*\([^)]*\)", "", listed)  # "(an address, not ...)"
    assert tuple(f.strip().strip("`") for f in listed.split(",")) == FORMATS
    for name in FORMATS:
        schema = module_schema({"properties": {"v": {"format": name}}})
        assert [f.message for f in schema.check({"v": "\x00 {( not a value of any format"})] == [
            '"\\u0000 {( not a value of any format" is not a valid ' + name
        ], name


# --- fail closed: every x-secret is followed by the secret walk or refused at its line --------
# Values planted in plaintext templates are "plaintext-<uuid>", not canaries: the sweep would
# count the template itself. Each test asserts they reach neither the output nor dist/.


@pytest.mark.parametrize(
    ("where", "keyword"),
    [
        ({"not": {"required": ["zz"], "properties": {"token": {"x-secret": True}}}}, "not"),
        ({"unevaluatedProperties": {"x-secret": True}}, "unevaluatedProperties"),
        ({"propertyNames": {"x-secret": True}}, "propertyNames"),
        ({"properties": {"token": {"contains": {"x-secret": True}}}}, "contains"),
        ({"properties": {"token": {"unevaluatedItems": {"x-secret": True}}}}, "unevaluatedItems"),
        ({"properties": {"token": {"x-vendor": {"x-secret": True}}}}, "x-vendor"),
        ({"properties": {"token": {"x-secret": "true"}}}, "x-secret"),
    ],
)
def test_a_secret_mark_the_walk_cannot_follow_is_refused_at_its_line(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str], where: dict[str, object], keyword: str
) -> None:
    canary = f"plaintext-{uuid.uuid4()}"
    scaffold.write("schemas/router.schema.json", json.dumps({"type": "object", **where}, indent=2) + "\n")
    scaffold.write("templates/router.yaml", f"token: {canary}\nname: r\n")
    code = main(["-C", str(scaffold.path), "compile", "--target", "dev"])
    out, err = capsys.readouterr()
    assert code == 2
    assert re.search(rf"schemas/router\.schema\.json:\d+:\d+: .*{re.escape(keyword)}", err), err
    assert canary not in out + err
    assert not (scaffold.path / "dist" / "dev.bundle.json").exists()


def test_a_secret_under_dependent_schemas_is_sealed(
    scaffold: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = {"type": "object", "dependentSchemas": {"name": {"properties": {"token": {"x-secret": True}}}}}
    scaffold.write("schemas/router.schema.json", json.dumps(schema, indent=2) + "\n")
    canary = f"plaintext-{uuid.uuid4()}"
    scaffold.write("templates/router.yaml", f"name: r\ntoken: {canary}\n")
    assert main(["-C", str(scaffold.path), "compile", "--target", "dev"]) in (1, 2)
    out, err = capsys.readouterr()
    assert "router $.token: secret in plaintext" in err
    assert canary not in out + err
    assert not (scaffold.path / "dist" / "dev.bundle.json").exists()


def test_a_secret_in_a_referenced_file_under_not_is_refused_there(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    with_token(scaffold, defs='{"$defs": {"api_key": {"not": {"x-secret": true}}}}\n')
    assert main(["-C", str(scaffold.path), "compile", "--target", "dev"]) == 2
    assert "schemas/shared/defs.json:1:" in capsys.readouterr().err


def test_the_secret_walk_stops_at_reference_cycles_and_refuses_what_is_too_deep() -> None:
    schema = module_schema({"$ref": "#", "properties": {"s": {"x-secret": True}}})
    assert set(secret_paths(schema, {"s": "x"})) == {("s",)}
    node = {"properties": {"child": {"$ref": "#/$defs/node"}, "pw": {"x-secret": True}}}
    schema = module_schema({"$defs": {"node": node}, "$ref": "#/$defs/node"})
    value: dict[str, object] = {"pw": "x"}
    for _ in range(40):  # deeper than the old walk's silent cut-off at 64 subschemas
        value = {"child": value}
    assert list(secret_paths(schema, value)) == [("child",) * 40 + ("pw",)]
    for _ in range(100):
        value = {"child": value}
    with pytest.raises(
        InputError, match=r"^schemas/m\.schema\.json: the secret walk is 256 subschemas deep at \$\.child"
    ):
        list(secret_paths(schema, value))


def test_a_reference_cycle_between_files_keeps_its_secret(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    scaffold.write("schemas/shared/a.json", '{"$ref": "b.json", "properties": {"token": {"x-secret": true}}}\n')
    scaffold.write("schemas/shared/b.json", '{"$ref": "a.json"}\n')
    scaffold.write("schemas/router.schema.json", '{"$ref": "shared/a.json"}\n')
    canary = f"plaintext-{uuid.uuid4()}"
    scaffold.write("templates/router.yaml", f"token: {canary}\n")
    assert main(["-C", str(scaffold.path), "compile", "--target", "dev"]) == 1
    out, err = capsys.readouterr()
    assert "router $.token: secret in plaintext" in err
    assert canary not in out + err


def test_a_secret_reached_through_a_dynamic_reference_is_sealed(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """The generic tree's ``$dynamicRef`` lands on the module's ``$dynamicAnchor``, whose ``pw`` is secret."""
    tree = {
        "$id": "https://example.com/tree",
        "$dynamicAnchor": "node",
        "properties": {"children": {"type": "array", "items": {"$dynamicRef": "#node"}}},
    }
    scaffold.write("schemas/shared/tree.json", json.dumps(tree, indent=2) + "\n")
    router = {"$dynamicAnchor": "node", "$ref": "https://example.com/tree", "properties": {"pw": {"x-secret": True}}}
    scaffold.write("schemas/router.schema.json", json.dumps(router, indent=2) + "\n")
    canary = f"plaintext-{uuid.uuid4()}"
    scaffold.write("templates/router.yaml", f"children:\n  - children:\n      - pw: {canary}\n")
    assert main(["-C", str(scaffold.path), "compile", "--target", "dev"]) == 1
    out, err = capsys.readouterr()
    assert "router $.children[0].children[0].pw: secret in plaintext" in err
    assert canary not in out + err
    assert not (scaffold.path / "dist" / "dev.bundle.json").exists()


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"unevaluatedProperties": {"$ref": "#/$defs/s"}, "$defs": {"s": {"x-secret": True}}}, "unevaluatedProperties"),
        ({"properties": {"token": {"not": {"not": {"$ref": "shared/s.json"}}}}}, "not"),
        (
            {"properties": {"token": {"contains": {"$ref": "#/$defs/r"}}}, "$defs": {"r": {"$ref": "shared/s.json"}}},
            "contains",
        ),
    ],
)
def test_a_reference_to_a_secret_the_walk_cannot_follow_is_refused_at_its_line(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str], schema: dict[str, object], keyword: str
) -> None:
    scaffold.write("schemas/shared/s.json", '{"x-secret": true}\n')
    scaffold.write("schemas/router.schema.json", json.dumps({"type": "object", **schema}, indent=2) + "\n")
    canary = f"plaintext-{uuid.uuid4()}"
    scaffold.write("templates/router.yaml", f"token: [{canary}]\n")
    assert main(["-C", str(scaffold.path), "compile", "--target", "dev"]) == 2
    out, err = capsys.readouterr()
    assert re.search(rf"schemas/router\.schema\.json:\d+:\d+: \$ref .* under {keyword!r}", err), err
    assert canary not in out + err
    assert not (scaffold.path / "dist" / "dev.bundle.json").exists()


def test_an_id_that_is_another_files_path_is_refused_at_its_line(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """``shared/other.json`` saying ``"$id": "defs.json"`` would shadow ``shared/defs.json`` for every ``$ref``."""
    with_router(scaffold)
    scaffold.write(
        "schemas/shared/other.json", '{\n  "$id": "defs.json",\n  "$defs": {"model_name": {"x-secret": true}}\n}\n'
    )
    code, _, err = validate(scaffold, capsys)
    assert code == 2
    assert "schemas/shared/other.json:2:10: $id 'defs.json' is already the path of schemas/shared/defs.json" in err


@pytest.mark.parametrize("output", ["text", "json", "github"])
def test_a_value_inside_a_secret_map_is_never_quoted(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    inner = {"user": {"type": "string", "maxLength": 3, "format": "email"}, "pw": {"enum": ["a"]}, "c": {"const": "z"}}
    creds = {"x-secret": True, "type": "object", "properties": {**inner, "k": {"pattern": "^[a-z]+$"}}}
    scaffold.write("schemas/router.schema.json", json.dumps({"properties": {"creds": creds}}, indent=2) + "\n")
    canary = f"plaintext-{uuid.uuid4()}"
    values = "".join(f"  {k}: {canary.upper()}-{k}\n" for k in ("user", "pw", "c", "k"))
    scaffold.write("templates/router.yaml", "creds:\n" + values)
    code, out, err = validate(scaffold, capsys, "--format", output)
    assert code == 1
    assert canary.upper() not in out + err
    assert "the secret value must have at most 3 characters" in out + err


def test_schema_files_with_unicode_names_are_referenced_percent_encoded(
    scaffold: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    scaffold.write("schemas/shäred/dëfs é.json", SECRET_DEFS)
    schema = '{\n  "properties": {\n    "token": {"$ref": "%s#/$defs/api_key"}\n  }\n}\n'
    scaffold.write("schemas/router.schema.json", schema % "sh%C3%A4red/d%C3%ABfs%20%C3%A9.json")
    canary = f"plaintext-{uuid.uuid4()}"
    scaffold.write("templates/router.yaml", f"token: {canary}\n")
    code, out, err = validate(scaffold, capsys)
    assert code == 1
    assert "router $.token: secret in plaintext" in err
    assert canary not in out + err
    scaffold.write("schemas/router.schema.json", schema % "shäred/dëfs é.json")
    code, _, err = validate(scaffold, capsys)
    assert code == 2
    assert "schemas/router.schema.json:3:23: $ref 'shäred/dëfs é.json#/$defs/api_key' is not a URI reference" in err


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"properties": {"a": {"type": "string"}}}', False),
        ('{"properties": {"a": {"x-secret": true}}}', True),
        # an escape spells the key without its text: the verdict is taken from the document, not the text
        ('{"properties": {"a": {"x\\u002dsecret": true}}}', True),
        ('{"properties": {"a": {"\\u0024ref": "#/$defs/s"}}, "$defs": {"s": {"x-secret": true}}}', True),
        ('{"properties": {"a": {"$ref": "#/$defs/s"}}, "$defs": {"s": {"type": "string"}}}', True),
    ],
)
def test_the_secret_verdict_taken_from_the_text_never_misses_a_mark(text: str, secret: bool) -> None:
    """``note_text`` says "no secret" only for a text in which no mark or reference can be written (issue 14 §2)."""
    schema = ModuleSchema.load("m", "schemas/m.schema.json", text.encode())
    assert schema_has_secrets(schema) is secret
    assert bool(list(secret_paths(schema, {"a": "v"}))) is (secret and "string" not in text)
