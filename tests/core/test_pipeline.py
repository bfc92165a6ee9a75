"""compile_target end to end on small real repositories: layers, templates, vars, guard, schema."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import provenance
from compiler.compile.pipeline import compile_target, load_stack
from compiler.compile.repository import Repository
from compiler.errors import InputError
from compiler.load.layers import resolve_layers
from compiler.project import Target
from compiler.secrets.identity import load_identities
from compiler.secrets.sources import SopsOpener
from compiler.sources import worktree
from compiler.sources.worktree import WorkTree
from compiler.validate.schema import ModuleSchema, secret_paths
from tests.conftest import DEMO_IDENTITY, copy_example
from tests.core._repos import DEMO_RECIPIENT, ENGINE_SCHEMA, MANIFEST, dedent, mini_repo, open_repo, sops_encrypt

PROD = Target("prod")
PROD_ACME = Target("prod", "acme")


def compiled(root: Path, target: Target = PROD, **kw):
    return compile_target(open_repo(root), target, **kw)


def engine(root: Path, target: Target = PROD):
    return compiled(root, target).modules["engine"]


def decrypting_repo(root: Path) -> Repository:
    ids = load_identities(DEMO_IDENTITY, {}, required=True)
    return Repository(WorkTree(root), open_secrets=SopsOpener(ids, required=True), secrets_opaque=False)


def marker_layers(root: Path) -> None:
    """Every layer of prod@acme sets `region` and appends its name to `fallbacks`."""
    for name in ("base", "staging", "prod", "tenants/acme", "prod/tenants/acme", "dev", "tenants/other"):
        (root / "environments" / f"{name}.yaml").parent.mkdir(parents=True, exist_ok=True)
        (root / "environments" / f"{name}.yaml").write_text(
            dedent(
                f"""
                vars:
                  model: m-{name}
                  temperature: 0.5
                  region: r
                modules:
                  engine:
                    region: {name}
                    fallbacks: !append [{name}]
                """
            )
        )


# --- layer order ----------------------------------------------------------------------------


def test_layer_order_base_extends_chain_root_first_then_both_tenant_files(tmp_path: Path) -> None:
    root = mini_repo(tmp_path)
    marker_layers(root)
    result = compiled(root, PROD_ACME)
    assert [layer.ref.name for layer in result.stack.layers] == [
        "base",
        "staging",
        "prod",
        "tenants/acme",
        "prod/tenants/acme",
    ]
    value = result.modules["engine"]
    assert value["fallbacks"] == ["small", "base", "staging", "prod", "tenants/acme", "prod/tenants/acme"]
    assert value["region"] == "prod/tenants/acme"
    assert value["model"]["name"] == "m-prod/tenants/acme"  # vars follow the same order


def test_each_secrets_file_comes_right_after_its_layer(tmp_path: Path) -> None:
    root = mini_repo(tmp_path)
    refs = resolve_layers(open_repo(root).project, PROD_ACME)
    assert [(r.name, r.path, r.secrets, r.required) for r in refs] == [
        ("base", "environments/base.yaml", False, False),
        ("base (secrets)", "environments/base.secrets.sops.yaml", True, False),
        ("staging", "environments/staging.yaml", False, True),
        ("staging (secrets)", "environments/staging.secrets.sops.yaml", True, False),
        ("prod", "environments/prod.yaml", False, True),
        ("prod (secrets)", "environments/prod.secrets.sops.yaml", True, False),
        ("tenants/acme", "environments/tenants/acme.yaml", False, False),
        ("tenants/acme (secrets)", "environments/tenants/acme.secrets.sops.yaml", True, False),
        ("prod/tenants/acme", "environments/prod/tenants/acme.yaml", False, False),
        ("prod/tenants/acme (secrets)", "environments/prod/tenants/acme.secrets.sops.yaml", True, False),
    ]


def test_secrets_layers_merge_right_after_their_layer(tmp_path: Path, demo_identity: Path) -> None:
    root = mini_repo(tmp_path)
    (root / "environments/tenants").mkdir()
    (root / "environments/tenants/acme.yaml").write_text("vars: {}\n")
    for name in ("base", "staging", "tenants/acme"):
        (root / f"environments/{name}.secrets.sops.yaml").write_text(
            sops_encrypt(f"modules:\n  engine:\n    api_key: key-of-{name}\n", cwd=tmp_path)
        )
    repo = decrypting_repo(root)
    names = [layer.ref.name for layer in load_stack(repo, PROD_ACME).layers]
    assert names == [
        "base",
        "base (secrets)",
        "staging",
        "staging (secrets)",
        "prod",
        "tenants/acme",
        "tenants/acme (secrets)",
    ]
    assert compile_target(repo, PROD_ACME).modules["engine"]["api_key"] == "key-of-tenants/acme"
    assert compile_target(repo, PROD).modules["engine"]["api_key"] == "key-of-staging"
    assert compile_target(repo, Target("dev")).modules["engine"]["api_key"] == "key-of-base"
    result = compile_target(repo, PROD_ACME)
    assert result.ok
    assert result.secrets == {"engine": [("api_key",)]}


def test_an_environment_layer_file_is_required_base_and_tenant_files_are_not(tmp_path: Path) -> None:
    root = mini_repo(tmp_path, {"environments/base.yaml": None, "environments/dev.yaml": None})
    with pytest.raises(InputError) as exc:
        compiled(root, Target("dev"))
    assert str(exc.value) == "environments/dev.yaml: missing layer file for environment 'dev' (see llmcc.yaml)"
    (root / "environments/dev.yaml").write_text("vars: {model: m, temperature: 0.1, region: r}\n")
    assert compiled(root, Target("dev")).ok


# --- templates ------------------------------------------------------------------------------


def test_template_extends_deep_merges_base_first(tmp_path: Path) -> None:
    root = mini_repo(
        tmp_path,
        {
            "templates/_service.yaml": dedent(
                """
                region: "{{ region }}"
                fallbacks: [base-fallback]
                model:
                  name: from-base
                  max_tokens: "{{ max_tokens | default(10) }}"
                """
            ),
            "templates/engine.yaml": dedent(
                """
                extends: _service.yaml
                fallbacks: !append ["child"]
                model:
                  name: "{{ model }}"
                  temperature: "{{ temperature }}"
                """
            ),
        },
    )
    assert engine(root) == {
        "region": "eu-west-1",
        "fallbacks": ["base-fallback", "child"],
        "model": {"name": "big", "temperature": 0.5, "max_tokens": 4000},
    }


def test_template_extends_chains_and_cycles(tmp_path: Path) -> None:
    files = {
        "templates/a.yaml": "extends: b.yaml\ndescription: a\n",
        "templates/b.yaml": "region: from-b\ndescription: b\n",
        "templates/engine.yaml": "extends: a.yaml\nmodel: {name: n}\n",
    }
    root = mini_repo(tmp_path / "chain", files)
    assert engine(root) == {"description": "a", "region": "from-b", "model": {"name": "n", "max_tokens": 4000}}
    cyc = mini_repo(tmp_path / "cycle", {**files, "templates/b.yaml": "extends: engine.yaml\n"})
    with pytest.raises(InputError, match=r"extends cycle engine.yaml -> a.yaml -> b.yaml -> engine.yaml"):
        compiled(cyc)


@pytest.mark.parametrize("parent", ["../../etc/passwd.yaml", "/etc/passwd.yaml", "sub/../../x.yaml"])
def test_template_extends_cannot_leave_the_repository(tmp_path: Path, parent: str) -> None:
    root = mini_repo(tmp_path, {"templates/engine.yaml": f"extends: {parent}\nmodel: {{}}\n"})
    with pytest.raises(InputError, match="path escapes the repository"):
        compiled(root)


def test_a_module_without_a_template_starts_empty(tmp_path: Path) -> None:
    root = mini_repo(tmp_path, {"templates/engine.yaml": None})
    assert engine(root) == {"model": {"max_tokens": 4000}}


# --- variables ------------------------------------------------------------------------------


def test_vars_deep_merge_across_layers_and_tags_apply(tmp_path: Path) -> None:
    root = mini_repo(
        tmp_path,
        {
            "environments/base.yaml": dedent(
                """
                vars:
                  model: big
                  temperature: 0.5
                  region: us
                  limits: {rpm: 10, tpm: 100}
                  extra: [a]
                """
            ),
            "environments/staging.yaml": "vars:\n  limits: {rpm: 20}\n  extra: !append [b]\n",
            "environments/prod.yaml": "vars:\n  temperature: 0.2\n  extra: !prepend [z]\n",
            "templates/engine.yaml": dedent(
                """
                model: {name: "{{ model }}", temperature: "{{ temperature }}"}
                tags:
                  limits: "{{ limits.rpm }}/{{ limits.tpm }}"
                  extra: "{{ extra | join(',') }}"
                """
            ),
        },
    )
    assert engine(root) == {
        "model": {"name": "big", "temperature": 0.2},
        "tags": {"limits": "20/100", "extra": "z,a,b"},
    }
    stack = compiled(root).stack
    assert stack.variables == {
        "model": "big",
        "temperature": 0.2,
        "region": "us",
        "limits": {"rpm": 20, "tpm": 100},
        "extra": ["z", "a", "b"],
    }


def test_an_undefined_template_variable_is_an_input_error_at_the_template_line(tmp_path: Path) -> None:
    root = mini_repo(tmp_path, {"environments/base.yaml": "vars: {model: m, temperature: 0.5}\n"})
    with pytest.raises(InputError) as exc:
        compiled(root, Target("dev"))
    assert str(exc.value) == "templates/engine.yaml:7:1: undefined variable 'region' in '{{ region }}'"


def test_an_empty_layer_changes_nothing(tmp_path: Path) -> None:
    root = mini_repo(tmp_path)
    before = {t: compiled(root, t).modules for t in (PROD, PROD_ACME)}
    (root / "environments/tenants").mkdir()
    (root / "environments/prod/tenants").mkdir(parents=True)
    for text in ("", "# nothing\n", "vars: {}\nmodules: {}\n", "vars:\nmodules:\n", "modules:\n  engine: {}\n"):
        (root / "environments/tenants/acme.yaml").write_text(text)
        (root / "environments/prod/tenants/acme.yaml").write_text(text)
        assert {t: compiled(root, t).modules for t in (PROD, PROD_ACME)} == before


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("modules:\n  nope: {}\n", "environments/prod.yaml:2:3: unknown module 'nope' (no schemas/nope.schema.json)"),
        ("modules:\n  engine: !delete\n", "environments/prod.yaml:2:11: a whole module cannot be deleted"),
        ("settings: {}\n", "environments/prod.yaml:1:1: unknown top-level key 'settings' (expected vars, modules)"),
        ("vars: [a]\n", "environments/prod.yaml:1:1: vars must be a mapping"),
        ("modules: [a]\n", "environments/prod.yaml:1:1: modules must be a mapping"),
        ("- a\n", "environments/prod.yaml:1:1: a layer file must be a mapping with vars: and modules:"),
        (
            "modules:\n  engine:\n    fallbacks: !append {a: 1}\n",
            "environments/prod.yaml:3:16: !append needs a list, not a map",
        ),
        (
            "modules:\n  engine:\n    model: !append [x]\n",
            "environments/prod.yaml:3:12: !append onto a map; it extends lists only",
        ),
        (
            "modules:\n  engine:\n    fallbacks:\n      - !delete\n",
            "environments/prod.yaml:4:9: !delete only removes a key of a map",
        ),
    ],
)
def test_layer_shape_errors_name_file_line(tmp_path: Path, layer: str, message: str) -> None:
    root = mini_repo(tmp_path, {"environments/prod.yaml": layer})
    with pytest.raises(InputError) as exc:
        compiled(root)
    assert str(exc.value) == message


# --- secrets guard --------------------------------------------------------------------------


SECRET = "hunter2-do-not-print"


def guard_messages(result) -> list[str]:
    return [d.format() for d in result.diagnostics]


def test_plaintext_secret_in_a_plain_layer_is_reported_at_its_line_without_the_value(tmp_path: Path) -> None:
    root = mini_repo(tmp_path, {"environments/staging.yaml": f"modules:\n  engine:\n    api_key: {SECRET}\n"})
    result = compiled(root)
    assert guard_messages(result) == [
        "environments/staging.yaml:3:5: engine $.api_key: secret in plaintext: the value of a field marked "
        "x-secret must come from a *.secrets.sops.yaml file (target prod, layer staging)"
    ]
    assert not result.ok
    assert SECRET not in repr(result.diagnostics)


def test_plaintext_secret_is_reported_even_when_a_sops_file_overrides_it(tmp_path: Path, demo_identity: Path) -> None:
    root = mini_repo(
        tmp_path,
        {
            "environments/staging.yaml": f"modules:\n  engine:\n    api_key: !override {SECRET}\n",
            "environments/prod.yaml": "modules:\n  engine:\n    api_key: !delete\n",
        },
    )
    (root / "environments/prod.secrets.sops.yaml").write_text(
        sops_encrypt("modules:\n  engine:\n    api_key: the-real-one\n", cwd=tmp_path)
    )
    for repo in (open_repo(root), decrypting_repo(root)):
        result = compile_target(repo, PROD)
        assert [d.origin.location() for d in result.diagnostics] == ["environments/staging.yaml:3:5"]
        assert "secret in plaintext" in result.diagnostics[0].message
        assert SECRET not in repr(result.diagnostics)


def test_plaintext_secret_in_a_template_is_reported(tmp_path: Path) -> None:
    root = mini_repo(tmp_path, {"templates/engine.yaml": f"model: {{}}\napi_key: {SECRET}\n"})
    assert next(d.format() for d in compiled(root).diagnostics).startswith(
        "templates/engine.yaml:2:1: engine $.api_key: secret in plaintext"
    )


def test_a_secrets_file_that_is_not_encrypted_is_an_error(tmp_path: Path) -> None:
    plain = f"modules:\n  engine:\n    api_key: {SECRET}\n"
    root = mini_repo(tmp_path, {"environments/prod.secrets.sops.yaml": plain})
    result = compiled(root)
    assert [d.format() for d in result.diagnostics] == [
        "environments/prod.secrets.sops.yaml:1:1: not SOPS-encrypted: a *.secrets.sops.yaml file must be "
        "encrypted (llmcc secrets encrypt FILE) (target prod, layer prod (secrets))"
    ]
    assert SECRET not in repr(result.diagnostics)


def test_an_unencrypted_secrets_file_is_an_error_even_without_secret_fields(tmp_path: Path) -> None:
    no_secrets = {
        **ENGINE_SCHEMA,
        "properties": {k: v for k, v in ENGINE_SCHEMA["properties"].items() if k != "api_key"},
    }
    root = mini_repo(
        tmp_path,
        {
            "schemas/aaa.schema.json": {"type": "object"},  # the first module has no secret field
            "templates/aaa.yaml": "{}\n",
            "schemas/engine.schema.json": no_secrets,
            "environments/prod.secrets.sops.yaml": "modules:\n  engine:\n    region: plain\n",
        },
    )
    assert [d.origin.location() for d in compiled(root).diagnostics] == ["environments/prod.secrets.sops.yaml:1:1"]


def test_a_value_put_by_hand_into_a_sops_file_is_plaintext(tmp_path: Path) -> None:
    root = mini_repo(tmp_path)
    text = sops_encrypt("modules:\n  engine:\n    api_key: x\n", cwd=tmp_path)
    enc = text.split("api_key: ", 1)[1].split("\n", 1)[0]
    (root / "environments/prod.secrets.sops.yaml").write_text(text.replace(enc, SECRET))
    result = compiled(root)
    assert [d.origin.location() for d in result.diagnostics] == ["environments/prod.secrets.sops.yaml:3:9"]
    assert "not encrypted: sops cannot decrypt a plaintext value" in result.diagnostics[0].message
    assert (result.diagnostics[0].module, result.diagnostics[0].path) == ("engine", ("api_key",))
    assert SECRET not in repr(result.diagnostics)


def test_a_value_sops_left_unencrypted_is_plaintext(tmp_path: Path) -> None:
    root = mini_repo(tmp_path)
    (root / ".sops.yaml").write_text(f"creation_rules:\n  - age: {DEMO_RECIPIENT}\n    encrypted_regex: ^name$\n")
    plain = "modules:\n  engine:\n    model: {name: x}\n    api_key: " + SECRET + "\n"
    sops = Path(sys.executable).parent / "sops"
    argv = [str(sops), "--disable-version-check", "encrypt", "--filename-override", "environments/x.sops.yaml"]
    proc = subprocess.run(argv, input=plain.encode(), capture_output=True, cwd=root, check=True)
    (root / "environments/prod.secrets.sops.yaml").write_bytes(proc.stdout)
    result = compiled(root)
    assert [d.origin.location() for d in result.diagnostics] == ["environments/prod.secrets.sops.yaml:5:9"]
    assert "sops left this value unencrypted" in result.diagnostics[0].message


def test_without_an_identity_a_sops_value_is_checked_only_for_its_type(tmp_path: Path) -> None:
    schema = {
        **ENGINE_SCHEMA,
        "properties": {
            **ENGINE_SCHEMA["properties"],
            "api_key": {"type": "string", "x-secret": True, "minLength": 100},
        },
    }
    root = mini_repo(tmp_path, {"schemas/engine.schema.json": schema})
    (root / "environments/prod.secrets.sops.yaml").write_text(
        sops_encrypt("modules:\n  engine:\n    api_key: short\n", cwd=tmp_path)
    )
    assert compiled(root).ok  # the ciphertext stands in: its length says nothing
    (root / "environments/prod.secrets.sops.yaml").write_text(
        sops_encrypt("modules:\n  engine:\n    api_key: 12\n", cwd=tmp_path)
    )
    assert [d.message for d in compiled(root).diagnostics] == ['the secret value is not of type "string"']


# --- schema errors: module, JSON path, file:line:col, layer ------------------------------------


def test_schema_error_names_module_path_file_line_and_layer(tmp_path: Path) -> None:
    root = mini_repo(tmp_path, {"environments/prod.yaml": "modules:\n  engine:\n    model:\n      max_tokens: 0\n"})
    [diag] = compiled(root).diagnostics
    assert diag.format() == (
        "environments/prod.yaml:4:7: engine $.model.max_tokens: 0 is less than the minimum of 1 "
        "(target prod, layer prod)"
    )
    assert (diag.module, diag.path, diag.origin.layer) == ("engine", ("model", "max_tokens"), "prod")


def test_schema_error_through_a_template_variable_names_the_variable_line_too(tmp_path: Path) -> None:
    root = mini_repo(tmp_path, {"environments/staging.yaml": "vars:\n  region: eu\n  temperature: 1.5\n"})
    [diag] = compiled(root).diagnostics
    assert diag.format() == (
        "environments/staging.yaml:3:3: engine $.model.temperature: 1.5 is greater than the maximum of 1.0 "
        "(target prod, layer staging)\n"
        "    templates/engine.yaml:3:3: via template '{{ temperature }}'"
    )


def test_all_schema_errors_are_reported_at_once_sorted(tmp_path: Path) -> None:
    root = mini_repo(
        tmp_path,
        {
            "environments/prod.yaml": dedent(
                """
                modules:
                  engine:
                    model:
                      max_tokens: many
                      extra: 1
                    fallbacks: [1, ok, 2]
                """
            ),
            "environments/staging.yaml": "vars:\n  region: 7\n",
        },
    )
    assert [d.format().split(" (target")[0] for d in compiled(root).diagnostics] == [
        'environments/prod.yaml:4:7: engine $.model.max_tokens: "many" is not of type "integer"',
        "environments/prod.yaml:5:7: engine $.model.extra: "
        "Additional properties are not allowed ('extra' was unexpected)",
        'environments/prod.yaml:6:17: engine $.fallbacks[0]: 1 is not of type "string"',
        'environments/prod.yaml:6:24: engine $.fallbacks[2]: 2 is not of type "string"',
        'environments/staging.yaml:2:3: engine $.region: 7 is not of type "string"',
    ]


def test_a_required_field_missing_everywhere(tmp_path: Path) -> None:
    root = mini_repo(
        tmp_path,
        {
            "templates/engine.yaml": None,
            "environments/prod.yaml": "vars: {}\n",
            "llmcc.yaml": MANIFEST + "unpaired: {schemas: [engine]}\n",
        },
    )
    [diag] = compiled(root).diagnostics
    assert diag.message == "'model' is a required property"
    assert diag.path == ()


def test_validate_false_skips_checks(tmp_path: Path) -> None:
    root = mini_repo(tmp_path, {"environments/prod.yaml": "modules:\n  engine:\n    model: {max_tokens: 0}\n"})
    assert compiled(root, validate=False).diagnostics == []


# --- provenance -----------------------------------------------------------------------------


def test_trace_lists_every_line_that_set_a_value_top_first(tmp_path: Path) -> None:
    root = mini_repo(tmp_path)
    marker_layers(root)
    repo = open_repo(root)
    result = compile_target(repo, PROD_ACME)
    trace = provenance.trace(repo, result.stack, "engine", ("region",), shadowed=True)
    assert [(c.kind, c.origin.location(), c.effective) for c in trace] == [
        ("set", "environments/prod/tenants/acme.yaml:7:5", True),
        ("set", "environments/tenants/acme.yaml:7:5", False),
        ("set", "environments/prod.yaml:7:5", False),
        ("set", "environments/staging.yaml:7:5", False),
        ("set", "environments/base.yaml:7:5", False),
        ("template", "templates/engine.yaml:7:1", False),
        # every layer that set the variable, top first (all shadowed here: a layer set the value itself)
        ("variable", "environments/prod/tenants/acme.yaml:4:3", False),
        ("variable", "environments/tenants/acme.yaml:4:3", False),
        ("variable", "environments/prod.yaml:4:3", False),
        ("variable", "environments/staging.yaml:4:3", False),
        ("variable", "environments/base.yaml:4:3", False),
    ]
    appended = provenance.trace(repo, result.stack, "engine", ("fallbacks", 3))
    assert [c.kind for c in appended] == ["append"] * 5 + ["template"]


# --- tenant targets built on their environment equal the full merge ----------------------------


def test_tenant_shortcut_equals_the_full_merge_on_the_example(tmp_path: Path) -> None:
    repo_root = copy_example(tmp_path / "example")
    fast, slow = open_repo(repo_root), open_repo(repo_root)
    for target in fast.project.targets():
        assert compile_target(fast, target).modules == compile_target(slow, target, inherit=False).modules


@pytest.mark.parametrize(
    "staging",
    [
        "modules:\n  engine:\n    model: {name: fixed}\n",
        "modules:\n  engine:\n    model: !override {name: o}\n",
        "modules:\n  engine:\n    model: {name: !delete }\n",
        "modules:\n  engine:\n    region: !delete\n",
        "modules:\n  engine:\n    fallbacks: !append [x]\n",
        "modules:\n  engine:\n    fallbacks: [x]\n",
        "modules:\n  engine:\n    tags: {a: b}\n",
        "modules:\n  engine:\n    tags: !override {a: b}\n",
        "modules:\n  engine:\n    tags: null\n",
        "vars:\n  region: changed\n",
    ],
)
def test_tenant_shortcut_equals_the_full_merge(tmp_path: Path, staging: str) -> None:
    root = mini_repo(
        tmp_path,
        {
            "templates/engine.yaml": dedent(
                """
                model:
                  name: "{{ model }}"
                  temperature: "{{ temperature }}"
                fallbacks: ["{{ model }}", fixed]
                tags: "{{ tags | default({'t': model}) }}"
                region: "{{ region }}"
                """
            ),
            "environments/staging.yaml": staging,
            "environments/tenants/acme.yaml": "vars:\n  model: acme-model\n  region: acme\n  tags: {x: y}\n",
        },
    )
    for target in (Target("staging", "acme"), PROD_ACME):
        assert compiled(root, target).modules == compiled(root, target, inherit=False).modules


# --- module schemas ---------------------------------------------------------------------------


def load_schema(schema: object | bytes) -> ModuleSchema:
    data = schema if isinstance(schema, bytes) else json.dumps(schema).encode()
    return ModuleSchema.load("engine", "schemas/engine.schema.json", data)


def schema_error(schema: object | bytes) -> str:
    with pytest.raises(InputError) as exc:
        load_schema(schema)
    assert "\n" not in str(exc.value)
    return str(exc.value)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            b'{"type": "object",\n "properties": {]}',
            "schemas/engine.schema.json:2:17: invalid JSON: Expecting property name",
        ),
        (b"[]", "schemas/engine.schema.json:1:1: a schema must be a JSON object"),
        (
            b'{"type": "string", "type": "integer"}',
            "schemas/engine.schema.json:1:1: invalid JSON: duplicate key 'type'",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "schemas/engine.schema.json:1:1: invalid JSON: nested too deeply"),
        ({"type": "strin"}, "schemas/engine.schema.json:1:10: invalid JSON Schema at type: "),
        (
            {"type": "string", "pattern": "("},
            "schemas/engine.schema.json:1:31: pattern '(' at pattern is not an ECMA-262 regular expression",
        ),
        (
            b'{"type": "object",\n "properties": {"a": {"pattern": "^(?!x)"}}}',
            "schemas/engine.schema.json:2:34: pattern '^(?!x)' at properties/a/pattern needs lookaround or a "
            "backreference; patterns must run in linear time (no backtracking)",
        ),
        (
            b'{"properties": {\n  "a": {"$ref": "#/$defs/nope"}}}',
            "schemas/engine.schema.json:2:17: $ref '#/$defs/nope' does not resolve: "
            "schemas/engine.schema.json has no '/$defs/nope'",
        ),
        (
            b'{"properties": {\n  "a": {"format": "ipv4-network"}}}',
            "schemas/engine.schema.json:2:19: unknown format 'ipv4-network' at properties/a/format; "
            "llmcc asserts date,",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#"},
            "schemas/engine.schema.json:1:13: $schema must be 'https://json-schema.org/draft/2020-12/schema', "
            "not 'http://json-schema.org/draft-07/schema#'",
        ),
    ],
)
def test_schema_load_errors(schema: object, message: str) -> None:
    assert schema_error(schema).startswith(message)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "file:///etc/passwd"},
        {"$ref": "https://127.0.0.1:9/schema.json"},
        {"$ref": "other.schema.json"},
        {"$id": "https://example.com/engine.json", "$ref": "other.json"},
        {"properties": {"a": {"$ref": "file:///etc/hostname#/x"}}},
        {"$schema": "file:///etc/passwd"},
        {"$schema": "https://127.0.0.1:9/meta.json"},
    ],
)
def test_a_schema_cannot_reach_outside_its_file(schema: object) -> None:
    message = schema_error(schema)
    assert message.startswith("schemas/engine.schema.json:")
    assert any(why in message for why in ("schemas are never fetched", "$schema must be", "no file schemas/other"))


def test_local_refs_and_defs_work() -> None:
    schema = load_schema(
        {"$defs": {"port": {"type": "integer", "maximum": 65535}}, "properties": {"p": {"$ref": "#/$defs/port"}}}
    )
    assert schema.check({"p": 80}) == []
    assert [(f.path, f.message) for f in schema.check({"p": 70000})] == [
        (("p",), "70000 is greater than the maximum of 65535")
    ]


@pytest.mark.parametrize(
    ("sub", "value", "message"),
    [
        ({"type": "integer"}, "x", '"x" is not of type "integer"'),
        ({"enum": ["a", "b"]}, "c", '"c" is not one of "a", "b"'),
        ({"const": "a"}, "b", '"b" is not "a"'),
        ({"exclusiveMaximum": 1}, 1, "1 is greater than or equal to the exclusive maximum of 1"),
        ({"multipleOf": 5}, 7, "7 is not a multiple of 5"),
        ({"minLength": 3}, "ab", '"ab" must have at least 3 characters'),
        ({"maxItems": 1}, [1, 2], "the list must have at most 1 items"),
        ({"pattern": "^v[0-9]+$"}, "x", "\"x\" does not match pattern '^v[0-9]+$'"),
        ({"uniqueItems": True}, [1, 1], "the list has repeated items"),
        ({"not": {"type": "string"}}, "s", '"s" fails not'),
        ({"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, "s", '"s" is not of type "integer"'),
        ({"type": "integer"}, "x" * 100, '"' + "x" * 76 + '... is not of type "integer"'),
    ],
)
def test_schema_messages(sub: dict, value: object, message: str) -> None:
    [finding] = load_schema({"properties": {"v": sub}}).check({"v": value})
    assert finding.path == ("v",)
    assert finding.message == message


def test_schema_messages_never_quote_a_secret() -> None:
    schema = load_schema(
        {
            "properties": {
                "key": {"type": "string", "x-secret": True, "minLength": 99, "pattern": "^sk-"},
                "keys": {"type": "object", "patternProperties": {"^tok_": {"x-secret": True, "enum": ["a"]}}},
            }
        }
    )
    findings = schema.check({"key": "hunter2", "keys": {"tok_x": "hunter3"}})
    assert sorted(f.message for f in findings) == [
        "the secret value does not match pattern '^sk-'",
        'the secret value is not one of "a"',
        "the secret value must have at least 99 characters",
    ]


def test_secret_paths_follow_refs_patterns_and_combinators() -> None:
    schema = {
        "$defs": {"cred": {"type": "object", "properties": {"password": {"x-secret": True}}}},
        "properties": {
            "db": {"$ref": "#/$defs/cred"},
            "tokens": {"patternProperties": {"^tok_": {"x-secret": True}}, "additionalProperties": {"type": "string"}},
            "any": {"anyOf": [{"properties": {"k": {"x-secret": True}}}]},
            "list": {"items": {"$ref": "#/$defs/cred"}},
            "tree": {"properties": {"secret": {"x-secret": True}, "child": {"$ref": "#/properties/tree"}}},
        },
    }
    instance = {
        "db": {"password": "p", "user": "u"},
        "tokens": {"tok_a": "x", "plain": "y"},
        "any": {"k": 1},
        "list": [{"password": "a"}, {"user": "b"}],
        "tree": {"secret": 1, "child": {"secret": 2}},
        "other": 1,
    }
    assert sorted(set(secret_paths(load_schema(schema), instance)), key=str) == sorted(
        [
            ("db", "password"),
            ("tokens", "tok_a"),
            ("any", "k"),
            ("list", 0, "password"),
            ("tree", "secret"),
            ("tree", "child", "secret"),
        ],
        key=str,
    )
    assert list(secret_paths(load_schema({"properties": {"a": {"type": "string"}}}), {"a": "x"})) == []


def test_a_plaintext_secret_under_pattern_properties_is_caught(tmp_path: Path) -> None:
    schema = {
        **ENGINE_SCHEMA,
        "properties": {**ENGINE_SCHEMA["properties"], "tags": {"patternProperties": {"^key_": {"x-secret": True}}}},
    }
    root = mini_repo(
        tmp_path,
        {
            "schemas/engine.schema.json": schema,
            "environments/prod.yaml": f"modules:\n  engine:\n    tags: {{key_a: {SECRET}}}\n",
        },
    )
    result = compiled(root)
    assert [(d.origin.location(), d.path) for d in result.diagnostics] == [
        ("environments/prod.yaml:3:12", ("tags", "key_a"))
    ]
    assert result.secrets == {"engine": [("tags", "key_a")]}


# --- a bad list item is blamed on the line that put that item there ---------------------------


ITEM_SCHEMA = {
    **ENGINE_SCHEMA,
    "properties": {
        **ENGINE_SCHEMA["properties"],
        "rules": {
            "type": "array",
            "items": {"type": "object", "properties": {"to": {"type": "string"}, "match": {"type": "string"}}},
        },
    },
}


@pytest.mark.parametrize(
    ("files", "where"),
    [
        (  # appended by staging, then prod appends a good item: staging is the culprit
            {
                "environments/staging.yaml": "vars: {region: eu}\nmodules:\n  engine:\n    fallbacks: !append [7]\n",
                "environments/prod.yaml": "modules:\n  engine:\n    fallbacks: !append [fine]\n",
            },
            ("environments/staging.yaml:4:25", "staging", ()),
        ),
        (  # prepended on top of the template's item
            {"environments/prod.yaml": "modules:\n  engine:\n    fallbacks: !prepend [good, 7]\n"},
            ("environments/prod.yaml:3:32", "prod", ()),
        ),
        (  # the template item comes from a variable; prod's !append is innocent
            {
                "templates/engine.yaml": 'model: {name: "{{ model }}"}\nfallbacks: ["{{ fb }}", fixed]\n',
                "environments/staging.yaml": "vars:\n  fb: 3\n",
                "environments/prod.yaml": "modules:\n  engine:\n    fallbacks: !append [fine]\n",
            },
            (
                "environments/staging.yaml:2:3",
                "staging",
                ("templates/engine.yaml:2:13: via template '{{ fb }}'",),
            ),
        ),
        (  # the whole list comes from one template expression
            {
                "templates/engine.yaml": 'model: {name: "{{ model }}"}\nfallbacks: "{{ fbs }}"\n',
                "environments/staging.yaml": "vars:\n  fbs: [a, 3]\n",
                "environments/prod.yaml": "modules:\n  engine:\n    fallbacks: !append [fine]\n",
            },
            (
                "environments/staging.yaml:2:3",
                "staging",
                ("templates/engine.yaml:2:1: via template '{{ fbs }}'",),
            ),
        ),
        (  # a field inside an appended map item
            {
                "environments/staging.yaml": dedent(
                    """
                    vars: {region: eu}
                    modules:
                      engine:
                        rules:
                          - {match: a, to: x}
                          - match: b
                            to: 5
                    """
                ),
                "environments/prod.yaml": "modules:\n  engine:\n    rules: !append [{match: c, to: z}]\n",
            },
            ("environments/staging.yaml:7:9", "staging", ()),
        ),
        (  # staging deletes the template's list; prod starts a new one with !append
            {
                "environments/staging.yaml": "vars: {region: eu}\nmodules:\n  engine:\n    fallbacks: !delete\n",
                "environments/prod.yaml": "modules:\n  engine:\n    fallbacks: !append [9]\n",
            },
            ("environments/prod.yaml:3:25", "prod", ()),
        ),
        (  # the list sits inside a map that one template expression renders
            {
                "templates/engine.yaml": 'model: {name: "{{ model }}"}\ntags: x\nrules: "{{ cfg.rules }}"\n',
                "environments/staging.yaml": "vars:\n  cfg: {rules: [{to: a}, {to: 5}]}\n",
                "environments/prod.yaml": "modules:\n  engine:\n    tags: !delete\n",
            },
            (
                "environments/staging.yaml:2:3",
                "staging",
                ("templates/engine.yaml:3:1: via template '{{ cfg.rules }}'",),
            ),
        ),
        (  # staging's list is replaced by prod's !override: prod is the culprit
            {
                "environments/staging.yaml": "vars: {region: eu}\nmodules:\n  engine:\n    fallbacks: [a, b]\n",
                "environments/prod.yaml": "modules:\n  engine:\n    fallbacks: !override [ok, 8]\n",
            },
            ("environments/prod.yaml:3:31", "prod", ()),
        ),
    ],
)
def test_a_bad_list_item_is_blamed_on_its_own_line(
    tmp_path: Path, files: dict, where: tuple[str, str, tuple[str, ...]]
) -> None:
    root = mini_repo(tmp_path, {"schemas/engine.schema.json": ITEM_SCHEMA, **files})
    [diag] = compiled(root).diagnostics
    assert (diag.origin.location(), diag.origin.layer, diag.notes) == where


# --- the tenant shortcut, on generated layers ---------------------------------------------------

GEN_TEMPLATE = dedent(
    """
    model:
      name: "{{ model }}"
      temperature: "{{ temperature }}"
    fallbacks: ["{{ model }}", fixed]
    tags: "{{ tags | default({'t': model}) }}"
    region: "{{ region }}"
    description: "{{ model }} in {{ region }}"
    """
)

WORDS = st.sampled_from(["a", "b", "c"])
LISTS = st.lists(WORDS, max_size=2)


def _yaml(value: object) -> str:
    return json.dumps(value)


# Patches keep each field's type (maps stay maps, lists stay lists), as schema-valid layers do.
FIELD_PATCHES = {
    "model": st.one_of(
        st.fixed_dictionaries(
            {}, optional={"name": WORDS.map(_yaml), "temperature": st.sampled_from(["0.1", "!delete"])}
        ).map(lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"),
        st.just("!override {name: o}"),
    ),
    "fallbacks": st.one_of(
        LISTS.map(_yaml), LISTS.map(lambda v: "!append " + _yaml(v)), LISTS.map(lambda v: "!prepend " + _yaml(v))
    ),
    "tags": st.one_of(st.just("{x: y}"), st.just("!override {z: w}"), st.just("!delete")),
    "region": st.one_of(WORDS.map(_yaml), st.just("!delete")),
    "description": st.one_of(WORDS.map(_yaml), st.just("!override d")),
}
MODULE_PATCHES = st.dictionaries(st.sampled_from(sorted(FIELD_PATCHES)), st.just(None), max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: FIELD_PATCHES[k] for k in keys})
)
VARS = st.fixed_dictionaries(
    {},
    optional={
        "model": WORDS.map(_yaml),
        "region": WORDS.map(_yaml),
        "tags": st.sampled_from(["{p: q}", "!delete", "{r: {s: t}}"]),
        "temperature": st.sampled_from(["0.2", "0.9"]),
    },
)
LAYER = st.tuples(VARS, MODULE_PATCHES).map(
    lambda vm: (
        "vars:\n"
        + "".join(f"  {k}: {v}\n" for k, v in vm[0].items())
        + "modules:\n  engine:\n"
        + "".join(f"    {k}: {v}\n" for k, v in vm[1].items())
    )
)


def outcome(root: Path, target: Target, *, inherit: bool) -> object:
    try:
        return compiled(root, target, inherit=inherit).modules
    except InputError as e:  # e.g. region deleted but used by the template
        return str(e)


@given(staging=LAYER, prod=LAYER, tenant=LAYER, prod_tenant=LAYER)
@settings(max_examples=60, deadline=None)
def test_tenant_shortcut_equals_the_full_merge_on_generated_layers(
    staging: str, prod: str, tenant: str, prod_tenant: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = mini_repo(
            Path(tmp),
            {
                "schemas/engine.schema.json": {"type": "object"},
                "templates/engine.yaml": GEN_TEMPLATE,
                "environments/staging.yaml": staging,
                "environments/prod.yaml": prod,
                "environments/tenants/acme.yaml": tenant,
                "environments/prod/tenants/acme.yaml": prod_tenant,
            },
        )
        for target in (Target("staging", "acme"), PROD_ACME):
            assert outcome(root, target, inherit=True) == outcome(root, target, inherit=False)


# --- the working tree refuses to leave the repository ---------------------------------------


@pytest.mark.parametrize("path", ["../x.yaml", "/etc/passwd", "a/../../x", "a//b", "./a", "a\\b", "a\0b", ""])
def test_worktree_refuses_paths_that_are_not_plain_relative(tmp_path: Path, path: str) -> None:
    tree = WorkTree(tmp_path)
    for op in (tree.read, tree.exists, tree.list_dir):
        with pytest.raises(InputError, match="path escapes the repository or is not a plain relative path"):
            op(path)


def test_worktree_read_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "big.yaml").write_text("x" * 101)
    tree = WorkTree(tmp_path)
    with pytest.raises(InputError, match=r"^missing\.yaml: no such file$"):
        tree.read("missing.yaml")
    with pytest.raises(InputError, match=r"^dir: is a directory$"):
        tree.read("dir")
    monkeypatch.setattr(worktree, "MAX_FILE_BYTES", 100)
    with pytest.raises(InputError, match=r"^big\.yaml: file is 101 bytes; the limit is 100$"):
        tree.read("big.yaml")
    assert tree.list_dir("nope") == []
    assert tree.list_dir("big.yaml") == []
    assert not tree.exists("dir")
    assert tree.exists("big.yaml")


def test_worktree_refuses_symlinks_out_but_follows_links_inside(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "env").mkdir(parents=True)
    (root / "env" / "real.yaml").write_text("a: 1\n")
    (tmp_path / "secret.yaml").write_text("stolen: true\n")
    (root / "env" / "inside.yaml").symlink_to("real.yaml")
    (root / "env" / "out.yaml").symlink_to(tmp_path / "secret.yaml")
    (root / "linked").symlink_to(tmp_path)
    tree = WorkTree(root)
    assert tree.read("env/inside.yaml") == b"a: 1\n"
    for path in ("env/out.yaml", "linked/secret.yaml"):
        with pytest.raises(InputError, match="points outside the repository"):
            tree.read(path)
        with pytest.raises(InputError, match="points outside the repository"):
            tree.exists(path)
    with pytest.raises(InputError, match="points outside the repository"):
        tree.list_dir("linked")
