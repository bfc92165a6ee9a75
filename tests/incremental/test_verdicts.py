"""Validity verdicts of environments' modules kept in the result cache: reused only for the same inputs.

After a change to one tenant file, its targets are rebuilt from their
environments' merged modules; whether those are valid is read from the cache
(``compiler.incremental.verdicts``), so no full validator is compiled. Every
change that makes a target fail on a clean compile still fails it through the
cache, with the same findings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from compiler.cli import main
from compiler.cli._context import Context
from compiler.cli._repo import open_repository
from compiler.compile.build import BuildRequest
from compiler.errors import InputError
from compiler.incremental.plan import plan_cache
from compiler.incremental.run import CachePlan, build_cached
from compiler.incremental.verdicts import KeptVerdicts
from compiler.load.yaml import load_document
from compiler.sources.worktree import WorkTree
from compiler.validate.schema import ModuleSchema
from compiler.validate.schemafiles import SchemaFiles
from tests.conftest import init_repo
from tests.core._repos import ENGINE_SCHEMA, ENGINE_TEMPLATE, mini_repo

TENANT = "modules:\n  engine:\n    region: {name}\n"  # a key the environment sets: an edit of its module
POLICY = "- name: cool\n  description: temperature at most 0.3\n  rule: config.engine.model.temperature <= 0.3\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "repo")
    mini_repo(repo.path, {"environments/tenants/acme.yaml": TENANT.format(name="acme")})
    (repo.path / ".gitignore").write_text("dist/\nclean/\n.llmcc/\n")
    repo.commit("start")
    assert main(["-q", "-C", str(repo.path), "compile"]) == 0  # the cache filled, verdicts too
    assert main(["-q", "-C", str(repo.path), "validate"]) == 0  # and validate's entries
    return repo.path


def validate_in_process(root: Path) -> tuple[CachePlan, object]:
    """``llmcc validate`` of every target through the cache, in this process: the plan and repository used."""
    ctx = Context(root=root, quiet=True, debug=False)
    repo, source, ids = open_repository(ctx, argparse.Namespace(rev=None), need_secrets=False)
    targets = repo.project.targets()
    plan = plan_cache(root, repo, targets, mode="validate", source=source, identities=ids)
    assert plan is not None
    outcomes = build_cached(BuildRequest(repo=repo, source=source, out_dir=None), targets, plan=plan)
    assert all(not o.diagnostics and o.error is None for o in outcomes)
    return plan, repo


def test_a_tenant_edit_rebuilds_its_targets_without_compiling_a_full_validator(root: Path) -> None:
    (root / "environments/tenants/acme.yaml").write_text(TENANT.format(name="acme-2"))
    plan, repo = validate_in_process(root)
    verdicts = plan.verdicts
    assert isinstance(verdicts, KeptVerdicts)
    assert verdicts.hits == 2  # staging's and prod's engine, for staging@acme and prod@acme
    assert repo.schema("engine")._validator is None  # type: ignore[attr-defined]


def test_a_schema_that_passed_its_checks_is_loaded_without_them_next_time(root: Path) -> None:
    (root / "environments/tenants/acme.yaml").write_text(TENANT.format(name="acme-2"))
    plan, _ = validate_in_process(root)
    assert isinstance(plan.verdicts, KeptVerdicts)
    assert plan.verdicts.schema_hits == 1  # engine's schema: the same bytes as the last run's


def test_a_verdict_entry_saying_anything_but_valid_is_not_taken(root: Path) -> None:
    (root / "environments/tenants/acme.yaml").write_text(TENANT.format(name="acme-2"))
    plan, repo = validate_in_process(root)
    assert isinstance(plan.verdicts, KeptVerdicts)
    from compiler.compile.pipeline import CompileCaches, env_base

    caches = CompileCaches()
    for env in ("staging", "prod"):
        base = env_base(repo, env, caches)  # type: ignore[arg-type]
        key = plan.verdicts.key(base, "engine", repo.schema("engine"))  # type: ignore[attr-defined]
        assert key is not None
        plan.cache.put(key, {"valid": 1} if env == "staging" else {"valid": True, "more": 1})
    digest = repo.schema("engine").digest  # type: ignore[attr-defined]
    plan.cache.put(plan.verdicts._checked_key("schemas/engine.schema.json", digest), {"checked": 1})
    (root / "environments/tenants/acme.yaml").write_text(TENANT.format(name="acme-3"))
    again, repo = validate_in_process(root)
    assert isinstance(again.verdicts, KeptVerdicts)
    assert (again.verdicts.hits, again.verdicts.learned) == (0, 2)  # validated, and the verdicts written again
    assert again.verdicts.schema_hits == 0  # checked again
    assert repo.schema("engine")._validator is not None  # type: ignore[attr-defined]


def test_a_module_whose_patch_and_variables_are_unchanged_is_not_checked_again(root: Path) -> None:
    (root / "environments/tenants/acme.yaml").write_text(TENANT.format(name="acme-2"))
    first, _ = validate_in_process(root)
    assert isinstance(first.verdicts, KeptVerdicts)
    assert first.verdicts.module_learned == 2  # staging@acme's and prod@acme's engine
    (root / "environments/tenants/acme.yaml").write_text("# a comment\n" + TENANT.format(name="acme-2"))
    plan, repo = validate_in_process(root)  # the file changed: its targets are rebuilt
    assert isinstance(plan.verdicts, KeptVerdicts)
    assert (plan.verdicts.module_hits, plan.verdicts.module_learned) == (2, 0)
    assert repo.schema("engine")._edits is None  # type: ignore[attr-defined]  # no edit checked


def test_a_module_verdict_entry_saying_anything_but_valid_is_not_taken(root: Path) -> None:
    (root / "environments/tenants/acme.yaml").write_text(TENANT.format(name="acme-2"))
    plan, repo = validate_in_process(root)
    assert isinstance(plan.verdicts, KeptVerdicts)
    from compiler.compile.pipeline import CompileCaches, env_base, load_stack

    caches = CompileCaches()
    for i, target in enumerate(t for t in repo.project.targets() if t.tenant == "acme"):  # type: ignore[attr-defined]
        base = env_base(repo, target.environment, caches)  # type: ignore[arg-type]
        stack = load_stack(repo, target)  # type: ignore[arg-type]
        key = plan.verdicts.module_key(base, stack, "engine", repo.schema("engine"))  # type: ignore[attr-defined]
        assert key is not None
        plan.cache.put(key, {"valid": 1} if i == 0 else {"valid": True, "more": 1})
    (root / "environments/tenants/acme.yaml").write_text("# a comment\n" + TENANT.format(name="acme-2"))
    again, _ = validate_in_process(root)
    assert isinstance(again.verdicts, KeptVerdicts)
    assert (again.verdicts.module_hits, again.verdicts.module_learned) == (0, 2)


def test_a_tenant_patch_is_told_apart_from_its_tags_and_a_key_spelt_like_the_marker() -> None:
    from compiler.compile.types import LayerDoc
    from compiler.incremental.verdicts import _patch_digest
    from compiler.load.layers import LayerRef

    def patch(text: str) -> str | None:
        doc = load_document(text.encode(), path="environments/tenants/acme.yaml", layer="acme")
        assert isinstance(doc.value, dict)
        layer = LayerDoc(
            ref=LayerRef(name="acme", path=doc.path, secrets=False, required=True),
            document=doc,
            vars=doc.value.get("vars") or {},  # type: ignore[arg-type]
            modules=doc.value.get("modules") or {},  # type: ignore[arg-type]
        )
        return _patch_digest(layer, "engine")

    plain = patch("modules:\n  engine:\n    model: {name: x}\n")
    replaced = patch("modules:\n  engine:\n    model: !override {name: x}\n")
    other = patch("modules:\n  other:\n    model: {name: x}\n")
    assert plain
    assert replaced
    assert plain != replaced
    assert other == patch("modules:\n  other:\n    model: {name: y}\n")  # another module's patch: no part of it
    assert other != patch("vars: {t: 1}\nmodules:\n  other:\n    model: {name: y}\n")  # the variables are
    assert patch('modules:\n  engine:\n    "\\0tag": [override, 1]\n') is None  # not told from a tag: none


def _schema(**model: object) -> str:
    schema = json.loads(json.dumps(ENGINE_SCHEMA))
    schema["properties"]["model"]["properties"].update(model)
    return json.dumps(schema, indent=2)


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({"environments/base.yaml": "vars:\n  model: big\n  temperature: 1.5\n  region: r1\n"}, 1),
        ({"environments/staging.yaml": "vars:\n  region: eu\nmodules:\n  engine:\n    model: {max_tokens: 0}\n"}, 1),
        ({"environments/tenants/acme.yaml": "modules:\n  engine:\n    model: {temperature: 7}\n"}, 1),
        ({"schemas/engine.schema.json": _schema(temperature={"type": "number", "maximum": 0.4})}, 1),
        ({"schemas/engine.schema.json": _schema(name={"type": "string", "pattern": "(?=x)"})}, 2),
        ({"schemas/engine.schema.json": _schema(temperature={"type": "numbr"})}, 2),
        ({"schemas/engine.schema.json": _schema().replace('"description"', '"region"')}, 2),
        ({"policies/cool.yaml": POLICY}, 1),
        ({"environments/tenants/acme.yaml": "vars:\n  temperature: 7\n" + TENANT.format(name="acme-2")}, 1),
        ({"environments/tenants/acme.yaml": TENANT.format(name="acme-2") + "    model: !delete\n"}, 1),
        ({"environments/tenants/acme.yaml": TENANT.format(name="acme-2") + "    model: !override {name: 5}\n"}, 1),
        ({"templates/engine.yaml": ENGINE_TEMPLATE + "extra: 1\n"}, 1),
    ],
    ids=[
        "base-invalid",
        "environment-invalid",
        "tenant-invalid",
        "schema-stricter",
        "schema-not-compiling",
        "schema-not-a-2020-12-schema",
        "schema-with-a-repeated-key",
        "policy",
        "tenant-variable-invalid",
        "tenant-deletes-a-required-key",
        "tenant-replaces-with-an-invalid-value",
        "template-invalid",
    ],
)
def test_a_change_refused_on_a_clean_compile_is_refused_through_the_cache(
    root: Path, files: dict[str, str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "environments/tenants/acme.yaml").write_text(TENANT.format(name="acme-2"))
    assert main(["-q", "-C", str(root), "compile"]) == 0  # tenant targets rebuilt from kept verdicts
    capsys.readouterr()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    cached = main(["-q", "-C", str(root), "compile"]), capsys.readouterr()
    clean = main(["-q", "-C", str(root), "compile", "--no-cache", "-o", "clean"]), capsys.readouterr()
    assert cached[0] == clean[0] == code
    assert cached[1].err == clean[1].err
    assert cached[1].err  # the finding or error is said


class FakeChecked:
    """``CheckedSchemas`` that vouches for every schema (a forged entry would, digest and all)."""

    def __init__(self) -> None:
        self.learned: list[str] = []

    def checked(self, path: str, digest: str) -> bool:
        return True

    def learn_checked(self, path: str, digest: str) -> None:  # pragma: no cover - never asked: all vouched for
        self.learned.append(path)


def test_bytes_that_do_not_parse_are_refused_even_when_said_checked() -> None:
    with pytest.raises(InputError, match=r"^schemas/engine\.schema\.json:1:\d+: invalid JSON"):
        ModuleSchema.load("engine", "schemas/engine.schema.json", b'{"type": ', lazy=True, checked=FakeChecked())


def test_the_digest_of_a_schema_that_may_reference_another_file_covers_every_file(tmp_path: Path) -> None:
    schema = {**ENGINE_SCHEMA, "properties": {"region": {"$ref": "#/$defs/region"}}, "$defs": {"region": {}}}
    data = json.dumps(schema).encode()
    files = tmp_path / "schemas"
    files.mkdir(parents=True)
    (files / "engine.schema.json").write_bytes(data)
    (files / "shared.json").write_text('{"type": "string"}')

    def digest() -> str:
        return ModuleSchema.load(
            "engine", "schemas/engine.schema.json", data, SchemaFiles(WorkTree(tmp_path)), lazy=True
        ).digest

    first = digest()
    (files / "shared.json").write_text('{"type": "integer"}')
    second = digest()
    assert first
    assert second != first
    (files / "shared.json").write_text("{")  # another file that does not load: no digest, nothing kept
    assert digest() == ""
    assert ModuleSchema.load("engine", "schemas/engine.schema.json", data).digest == ""  # only when lazy


def test_no_verdict_key_without_a_schema_digest_or_with_a_sops_layer(root: Path) -> None:
    plan, repo = validate_in_process(root)
    assert isinstance(plan.verdicts, KeptVerdicts)
    from compiler.compile.pipeline import CompileCaches, env_base

    base = env_base(repo, "staging", CompileCaches())  # type: ignore[arg-type]
    eager = ModuleSchema.load(
        "engine", "schemas/engine.schema.json", (root / "schemas/engine.schema.json").read_bytes()
    )
    assert plan.verdicts.key(base, "engine", eager) is None
    sops = SimpleNamespace(ref=SimpleNamespace(secrets=True), document=base.stack.layers[0].document)
    with_sops = SimpleNamespace(stack=SimpleNamespace(layers=[*base.stack.layers, sops], target=base.stack.target))
    assert plan.verdicts.key(with_sops, "engine", repo.schema("engine")) is None  # type: ignore[arg-type, attr-defined]
    layer = base.stack.layers[0]
    elsewhere = load_document(b"vars: {}\n", path=layer.document.path, layer="base")  # not read through the cache
    other = SimpleNamespace(ref=layer.ref, document=elsewhere)
    unread = SimpleNamespace(stack=SimpleNamespace(layers=[other], target=base.stack.target))
    assert plan.verdicts.key(unread, "engine", repo.schema("engine")) is None  # type: ignore[arg-type, attr-defined]
    module_key = plan.verdicts.module_key
    assert module_key(base, base.stack, "engine", eager) is None
    assert module_key(base, with_sops.stack, "engine", repo.schema("engine")) is None  # type: ignore[arg-type, attr-defined]
    assert module_key(unread, unread.stack, "engine", repo.schema("engine")) is None  # type: ignore[arg-type, attr-defined]
