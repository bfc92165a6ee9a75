"""When re-rendering from a previous result gives up (``compiler.incremental.carry``, issue 14 §2).

Each case is a variable-only change after ``warm`` (a whole record kept for every
target). ``plant_template`` changes the kept parse of the template first, so a target
that is compiled shows ``planted`` and one that is carried does not: the tests say
which happened, and compare with ``compile --no-cache`` where both must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.compile.pipeline import load_stack
from compiler.incremental.carry import _slot_ok, layer_digests
from compiler.project import Target
from tests.core._repos import BASE, ENGINE_TEMPLATE, mini_repo, open_repo
from tests.incremental.test_carry import (  # _cache_on: the autouse fixture that turns the cache on
    _cache_on,  # noqa: F401
    bundles,
    entries,
    plant_template,
    records,
    rewrite,
    run,
    same_as_clean,
    warm,
)
from tests.secrets._secrets_support import new_canary


def change(root: Path, old: str, new: str, path: str = "environments/base.yaml") -> None:
    f = root / path
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new))


def compiled(root: Path) -> dict[str, bool]:
    """Each bundle of dist/: whether its target was compiled (it shows the planted parse)."""
    return {name: b"planted" in data for name, data in bundles(root, "dist").items()}


TARGETS = 5  # dev, staging, prod and acme in staging and prod


def test_a_carried_change_does_not_compile(tmp_path: Path) -> None:
    # the contrast for every test below: the same kind of change, carried
    root = mini_repo(tmp_path / "repo")
    warm(root)
    plant_template(root)
    change(root, "region: r-warm", "region: r-next")
    assert run(root, "compile") == 0
    assert len(compiled(root)) == TARGETS
    assert not any(compiled(root).values())


@pytest.mark.parametrize(
    "forge",
    [
        "vars-not-digests",  # a variable's fingerprint not a string
        "vars-not-a-map",
        "closed-not-names",
        "columns-not-three",
        "columns-of-different-lengths",
        "a-start-not-a-number",
        "two-rows-at-one-start",  # two expressions said to sit in one slot
    ],
)
def test_a_record_of_the_wrong_shape_is_not_carried_from(tmp_path: Path, forge: str) -> None:
    root = mini_repo(tmp_path / "repo")
    warm(root)
    for r in records(root):
        record = json.loads(r.read_bytes().partition(b"\n")[2])
        index, starts, ends = record["slots"]["engine"]
        if forge == "vars-not-digests":
            record["vars"]["region"] = 5
        if forge == "vars-not-a-map":
            record["vars"] = list(record["vars"].values())
        if forge == "closed-not-names":
            record["closed"] = [1]
        if forge == "columns-not-three":
            record["slots"]["engine"] = [index, starts]
        if forge == "columns-of-different-lengths":
            record["slots"]["engine"] = [index, starts, ends[:-1]]
        if forge == "a-start-not-a-number":
            record["slots"]["engine"] = [index, [str(s) for s in starts], ends]
        if forge == "two-rows-at-one-start":
            record["slots"]["engine"] = [index, [starts[0], *starts[:-1]], [ends[0], *ends[:-1]]]
        rewrite(r, json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
    plant_template(root)
    change(root, "region: r-warm", "region: r-next")
    assert run(root, "compile") == 0
    assert len(compiled(root)) == TARGETS
    assert all(compiled(root).values())


def test_a_finding_in_the_changed_layer_is_reported_as_a_compile_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = mini_repo(tmp_path / "repo")
    warm(root)
    capsys.readouterr()
    change(root, "region: r-warm", "region: \"r-{{ '{{' }}x\"")  # literal Jinja in a layer: a finding
    cached_rc = run(root, "compile")
    cached = capsys.readouterr().err
    assert run(root, "compile", "--no-cache", "-o", "clean") == cached_rc
    assert capsys.readouterr().err == cached
    assert "environments/base.yaml" in cached


def test_a_render_error_is_reported_as_a_compile_reports_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = mini_repo(tmp_path / "repo")
    warm(root)
    capsys.readouterr()
    change(root, "  region: r-warm\n", "")  # the template reads a variable no layer has now
    change(root, "region: eu-west-1", "model: mid", "environments/staging.yaml")
    assert run(root, "compile") == 2
    cached = capsys.readouterr().err
    assert run(root, "compile", "--no-cache", "-o", "clean") == 2
    assert capsys.readouterr().err == cached
    assert "region" in cached


def test_a_variable_a_layer_hides_is_not_rendered_where_it_is_hidden(tmp_path: Path) -> None:
    # prod sets model.max_tokens itself: the new variable shows in every target but prod, and prod is
    # still carried (its slot for max_tokens is not rendered), not compiled
    root = mini_repo(tmp_path / "repo")
    warm(root)
    plant_template(root)
    change(root, "region: r-warm\n", "region: r-warm\n  max_tokens: 2000\n")
    assert run(root, "compile") == 0
    assert not any(compiled(root).values())
    out = bundles(root, "dist")
    assert b'"max_tokens":4000' in out["prod.bundle.json"]
    assert b'"max_tokens":2000' in out["staging.bundle.json"]
    (root / "templates/engine.yaml").write_text(ENGINE_TEMPLATE)  # the kept parse told apart from the file
    assert run(root, "compile", "--no-cache", "-o", "clean") == 0
    assert out == bundles(root, "clean")


@pytest.mark.parametrize(
    ("files", "planted", "target"),
    [
        # a template that extends another: a module of a target no record can carry
        (
            {
                "templates/_engine.yaml": "fallbacks: [small]\nregion: '{{ region }}'\n",
                "templates/engine.yaml": "extends: _engine.yaml\nmodel:\n  name: '{{ model }}'\n",
            },
            "templates/_engine.yaml",
            "dev",  # staging and acme set their own region: unchanged, a hit
        ),
        # a layer appends to the list the changed scalar is in
        (
            {
                "templates/engine.yaml": ENGINE_TEMPLATE.replace("  - small\n", "  - small\n  - '{{ region }}'\n"),
                "environments/staging.yaml": "vars:\n  region: eu-west-1\nmodules:\n  engine:\n"
                "    fallbacks: !append [extra]\n",
            },
            "templates/engine.yaml",
            "dev",
        ),
        # a layer merges a map into the value the changed variable renders
        (
            {
                "templates/engine.yaml": ENGINE_TEMPLATE + "tags: '{{ labels }}'\n",
                "environments/base.yaml": "vars:\n  model: big\n  temperature: 0.5\n  region: us-east-1\n"
                "  labels: {a: x}\n",
                "environments/staging.yaml": "vars:\n  region: eu-west-1\nmodules:\n  engine:\n    tags: {b: y}\n",
            },
            "templates/engine.yaml",
            "staging",  # dev, which no layer merges into, is carried
        ),
    ],
)
def test_what_a_layer_or_a_template_makes_complex_is_compiled(
    tmp_path: Path, files: dict[str, str], planted: str, target: str
) -> None:
    root = mini_repo(tmp_path / "repo", files)
    warm(root)
    closed = {json.dumps(json.loads(r.read_bytes().partition(b"\n")[2])["closed"]) for r in records(root)}
    assert '["engine"]' in closed  # the module of some target said not carryable
    for p in entries(root, b'{"scheme":"document/'):  # the kept parse of the template with fallbacks
        body = p.read_bytes().partition(b"\n")[2]
        if f'"path":"{planted}"'.encode() in body:
            assert b'"fallbacks":["small"' in body
            rewrite(p, body.replace(b'"fallbacks":["small"', b'"fallbacks":["planted"'))
    change(root, "region: r-warm", "region: r-other")
    if "labels" in files.get("environments/base.yaml", ""):
        change(root, "labels: {a: x}", "labels: {a: z}")
    assert run(root, "compile") == 0
    assert compiled(root)[f"{target}.bundle.json"]  # compiled, not carried


def test_a_changed_scalar_inside_a_list_no_layer_reaches_is_carried(tmp_path: Path) -> None:
    template = ENGINE_TEMPLATE.replace("  - small\n", "  - small\n  - 'r-{{ region }}'\n")
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": template})
    warm(root)
    change(root, "region: r-warm", 'region: r-\u2713-"q"')  # escaped and non-ASCII in the list item
    out = same_as_clean(root)
    assert '"fallbacks":["small","r-r-\u2713-\\"q\\""]'.encode() in out["dev.bundle.json"]


def test_a_repository_with_policies_keeps_no_carry_entries(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "repo", {"policies/ok.yaml": "- name: always\n  rule: 'true'\n"})
    same_as_clean(root)
    assert not entries(root, b'{"stub":true}')
    change(root, "region: us-east-1", "region: r-2")
    same_as_clean(root)
    assert not records(root)
    assert not entries(root, b'{"stub":true}')


def test_a_layer_whose_modules_cannot_be_written_exactly_keeps_no_carry_entry(tmp_path: Path) -> None:
    # a key spelt like the digest's marker for a merge tag: the text would not tell them apart
    staging = 'vars:\n  region: eu-west-1\nmodules:\n  engine:\n    tags: {"\\0tag": x}\n'
    root = mini_repo(tmp_path / "repo", {"environments/staging.yaml": staging})
    repo = open_repo(root)
    assert layer_digests(load_stack(repo, Target(environment="staging", tenant=None))) is None
    assert layer_digests(load_stack(repo, Target(environment="dev", tenant=None))) is not None
    same_as_clean(root)
    assert len(entries(root, b'{"stub":true}')) == 1  # dev's; staging, prod and acme's read staging.yaml


TEXT = '{"a":{"k":1,"name":"x\u2713y","list":[1,[2]]}}'
DEEP = '{"k":' + "[" * 100_000 + "]" * 100_000 + "}"


@pytest.mark.parametrize(
    ("text", "start", "end", "key", "ok"),
    [
        (TEXT, 19, 24, "name", True),  # '"x\u2713y"', in characters
        (TEXT, 10, 11, "k", True),
        (TEXT, 33, 34, 0, True),  # list items
        (TEXT, 35, 38, 1, True),
        (TEXT, 5, 40, "a", True),
        (TEXT, 0, 24, "name", False),  # the whole text is no member
        (TEXT, 5, 41, "a", False),  # the end is the text's end
        (TEXT, 19, 24, "other", False),  # another member's name before it
        (TEXT, 20, 24, "name", False),  # not where the value starts
        (TEXT, 19, 23, "name", False),  # ends inside the value
        (TEXT, 19, 25, "name", False),  # ends after it
        (TEXT, 35, 38, "list", False),  # an item said to be a member
        (TEXT, 25, 31, "list", False),  # a member's name, not its value
        (TEXT, 34, 35, 0, False),  # a comma
        ('[x"k":1]', 6, 7, "k", False),  # the name not at a member's start
        ('{"k":@,"j":1}', 5, 6, "k", False),  # not JSON
        ('{"k":1 ,"j":1}', 5, 6, "k", False),  # not followed by a separator
        (DEEP, 5, len(DEEP) - 1, "k", False),  # nested past json's limit: RecursionError, not exit 70 (attacker F1)
    ],
)
def test_a_slot_is_one_value_where_the_record_says(text: str, start: int, end: int, key: str | int, ok: bool) -> None:
    assert _slot_ok(text, start, end, key) is ok


VAULT_SCHEMA = {
    "type": "object",
    "properties": {
        "creds": {
            "type": "object",
            "properties": {"user": {"type": "string"}, "token": {"type": "string", "x-secret": True}},
        },
        "owner": {"type": "string"},
    },
}


@pytest.mark.parametrize(
    "layer",
    [
        None,  # no layer reaches the field
        "creds:\n      user: p\n",  # merged into: not carried
        "creds: !override\n      user: p\n",  # replaced: the scalar is not re-rendered, but still checked
    ],
)
def test_a_map_variable_rendered_into_a_secret_field_is_refused_when_carried_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layer: str | None
) -> None:
    # secrets_guard.check_rendered: a template expression renders a map holding an x-secret value,
    # "secret in plaintext" at the expression's line -- even where a layer sets that field after it
    files = {
        "schemas/vault.schema.json": json.dumps(VAULT_SCHEMA),
        "templates/vault.yaml": 'creds: "{{ creds }}"\nowner: "{{ model }}"\n',
        "environments/base.yaml": BASE + "  creds:\n    user: u\n",
    }
    if layer is not None:
        files["environments/prod.yaml"] = "modules:\n  vault:\n    " + layer
    root = mini_repo(tmp_path / "repo", files)
    warm(root)
    capsys.readouterr()
    secret = new_canary()
    change(root, "    user: u\n", f"    user: u\n    token: {secret}\n")
    assert run(root, "compile") == 1
    carried = capsys.readouterr().err
    assert run(root, "compile", "--no-cache", "-o", "clean") == 1
    assert carried == capsys.readouterr().err
    assert "templates/vault.yaml:1" in carried
    assert "secret in plaintext" in carried
    assert secret not in carried
    change(root, f"    token: {secret}\n", "")  # the test's own plaintext input; the sweep checks the rest
