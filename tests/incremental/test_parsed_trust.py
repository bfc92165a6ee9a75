"""What the parsed/rendered tier of the result cache must never keep, and results it must not change."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.incremental.store import CACHE_DIR
from tests.core._repos import ENGINE_SCHEMA, ENGINE_TEMPLATE, mini_repo
from tests.secrets._secrets_support import new_canary

BASE = "vars:\n  model: big\n  temperature: 0.5\n  region: us-east-1\n"
# A made-up key of the Anthropic format (compiler.validate.credentials): what validate refuses in any file.
CREDENTIAL = "sk-ant-api03-" + "Q7" * 20


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMCC_NO_CACHE", raising=False)


@pytest.fixture(autouse=True)
def _no_plaintext_left(tmp_path: Path) -> Iterator[None]:
    """The tests here commit canaries in plaintext files on purpose; after each, those working-tree
    files go (the canary stays only in git's compressed objects), so the suite's canary sweep still
    finds any copy llmcc made -- in .llmcc/cache, dist/ or output (tests/conftest.py)."""
    yield
    for path in tmp_path.rglob("*"):
        parts = path.relative_to(tmp_path).parts
        if ".git" in parts or ".llmcc" in parts or not path.is_file() or path.is_symlink():
            continue
        if b"canary-" in path.read_bytes():
            path.unlink()


def run(root: Path, *argv: str) -> int:
    return main(["-q", "-C", str(root), *argv])


def cached_bytes(root: Path, *schemes: str) -> bytes:
    """The cache's entries of the parsed tier (``document/``, ``rendered/``), or of ``schemes``."""
    heads = tuple(f'{{"scheme":"{s}/'.encode() for s in schemes or ("document", "rendered"))
    bodies = (p.read_bytes().partition(b"\n")[2] for p in (root / CACHE_DIR).rglob("*.json"))
    return b"".join(body for body in bodies if body.startswith(heads))


def description(root: Path, out: str) -> object:
    return json.loads((root / out / "dev.bundle.json").read_bytes())["modules"]["engine"]["description"]


def test_a_changed_key_order_of_a_map_variable_renders_again(tmp_path: Path) -> None:
    # The scalar's cache key fingerprinted the map as canonical JSON (keys sorted), but Jinja
    # shows the order: the kept value was stale, not what --no-cache gives.
    tpl = ENGINE_TEMPLATE + 'description: "d={{ d }}"\n'
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": tpl})
    base = root / "environments/base.yaml"
    base.write_text(BASE + "  d: {a: 1, b: 2}\n")
    assert run(root, "compile") == 0
    assert description(root, "dist") == "d={'a': 1, 'b': 2}"
    base.write_text(BASE + "  d: {b: 2, a: 1}\n")
    assert run(root, "compile") == 0
    assert run(root, "compile", "--no-cache", "-o", "clean") == 0
    assert description(root, "clean") == "d={'b': 2, 'a': 1}"
    assert description(root, "dist") == description(root, "clean")


def test_a_credential_in_a_plain_layer_or_template_is_kept_nowhere_in_the_cache(tmp_path: Path) -> None:
    # compile does not refuse a credential in a plain file (validate does): neither the parsed
    # layer, nor the template, nor the scalar that renders it may put it in .llmcc/cache.
    tpl = ENGINE_TEMPLATE + 'description: "{{ token }}"\ntags: {note: \'sk-ant-admin01-' + "Z9" * 20 + "'}\n"
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": tpl})
    (root / "environments/base.yaml").write_text(BASE + f"  token: {CREDENTIAL}\n")
    (root / "environments/dev.yaml").write_text("vars:\n  model: tiny-kept\n")
    assert run(root, "compile") == 0
    every = cached_bytes(root)
    assert b"sk-ant-" not in every
    assert b"tiny-" in every  # the rest is kept


def test_what_a_template_setting_an_x_secret_field_renders_is_not_kept(tmp_path: Path) -> None:
    # The secrets guard refuses the template; the scalar it rendered into the secret field was
    # still written to the rendered tier, with the variable's value in its key.
    secret = new_canary()
    tpl = ENGINE_TEMPLATE + 'api_key: "{{ key }}"\n'
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": tpl})
    (root / "environments/base.yaml").write_text(BASE + f"  key: {secret}\n")
    assert run(root, "compile") == 1
    rendered = cached_bytes(root, "rendered")
    assert rendered.startswith(b'{"scheme":"rendered/')  # the entry is written, without that template's values
    assert secret.encode() not in rendered


def whole_cache(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (root / CACHE_DIR).rglob("*") if p.is_file())


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_layer_defining_what_a_template_renders_into_an_x_secret_field_is_not_kept(
    tmp_path: Path, jobs: str
) -> None:
    # The template was not kept, but the plain layer whose variable it rendered into the secret
    # field was: its parsed copy, canary and all, stayed in .llmcc/cache.
    secret = new_canary()
    tpl = ENGINE_TEMPLATE + 'api_key: "{{ key }}"\n'
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": tpl})
    (root / "environments/base.yaml").write_text(BASE + f"  key: {secret}\n")
    assert run(root, "compile", "-j", jobs) == 1
    assert run(root, "validate", "-j", jobs) == 1
    assert secret.encode() not in whole_cache(root)
    # a layer defining only variables that template does not read is kept
    (root / "environments/dev.yaml").write_text("vars:\n  unread: tiny-kept\n")
    assert run(root, "compile", "-j", jobs) == 1
    assert b"tiny-kept" in cached_bytes(root, "document")


def test_a_kept_layer_is_dropped_when_a_template_starts_rendering_its_variable_into_an_x_secret_field(
    tmp_path: Path,
) -> None:
    secret = new_canary()
    root = mini_repo(tmp_path / "repo")
    (root / "environments/base.yaml").write_text(BASE + f"  key: {secret}\n")
    assert run(root, "compile") == 0
    assert secret.encode() in cached_bytes(root, "document")  # read by no secret field yet: kept
    (root / "templates/engine.yaml").write_text(ENGINE_TEMPLATE + 'api_key: "{{ key }}"\n')
    assert run(root, "compile") == 1  # the layer's parse is a hit: its entry is deleted
    assert secret.encode() not in whole_cache(root)


def test_a_parsed_file_is_dropped_when_a_schema_newly_marks_a_field_it_sets_x_secret(tmp_path: Path) -> None:
    secret = new_canary()
    root = mini_repo(tmp_path / "repo")
    (root / "environments/dev.yaml").write_text(f"modules:\n  engine:\n    description: {secret}\n")
    assert run(root, "compile") == 0
    assert secret.encode() in cached_bytes(root)  # not a secret yet: kept
    schema = json.loads(json.dumps(ENGINE_SCHEMA))
    schema["properties"]["description"]["x-secret"] = True
    (root / "schemas/engine.schema.json").write_text(json.dumps(schema))
    assert run(root, "compile") == 1  # now a plaintext secret: refused ...
    assert secret.encode() not in cached_bytes(root)  # ... and the kept copy is gone
    # The first run's result (the value when no schema called it a secret) stays in the result cache
    # until evicted, as it stays in that run's dist/ and in git history: not this test's subject.
    shutil.rmtree(root / CACHE_DIR)


# --- what the rendered tier may not decide: the names a key reads, a scalar's type ---------------


def _plant(root: Path, body: dict[str, object]) -> None:
    """Write the rendered tier's entry through the store's own API: the digest is right."""
    from compiler.incremental.parsed import RenderedScalars
    from compiler.incremental.store import ResultCache

    ResultCache(root / CACHE_DIR).put_bytes(RenderedScalars.key(), json.dumps(body).encode())


def _both(root: Path) -> tuple[object, object]:
    assert run(root, "compile") == 0
    assert run(root, "compile", "--no-cache", "-o", "clean") == 0
    return description(root, "dist"), description(root, "clean")


@pytest.mark.parametrize("scheme", ["rendered/1", "rendered/2"])
def test_a_kept_expression_claiming_fewer_names_does_not_serve_a_stale_value(tmp_path: Path, scheme: str) -> None:
    # The entry said `{{ a ~ b }}` reads only `a`: its key left `b` out, and after `b` changed the
    # old value was served. The names now come from the source, whatever the entry lists.
    from compiler.render.jinja import Renderer

    source = "{{ a ~ b }}"
    tpl = ENGINE_TEMPLATE + f'description: "{source}"\n'
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": tpl})
    base = root / "environments/base.yaml"
    base.write_text(BASE + "  a: x\n  b: old\n")
    assert run(root, "compile") == 0
    stale = [[source, [Renderer({"a": "x"}, {}).fingerprint("a")], "xold"]]
    exprs = [[source, False, ["a"]]] if scheme == "rendered/1" else [source]
    _plant(root, {"scheme": scheme, "values": stale, "exprs": exprs})
    base.write_text(BASE + "  a: x\n  b: new\n")
    assert _both(root) == ("xnew", "xnew")


def test_a_kept_expression_claiming_another_type_renders_as_without_the_cache(tmp_path: Path) -> None:
    # `{{ n + 1 }}` keeps its type (an integer); the entry claimed it renders text ("2"), and the
    # claim was taken: the schema refused the string. The type now comes from Jinja's compile.
    source = "{{ n + 1 }}"
    tpl = ENGINE_TEMPLATE.replace('"{{ max_tokens | default(1000) }}"', f'"{source}"')
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": tpl})
    (root / "environments/base.yaml").write_text(BASE + "  n: 1\n")
    for scheme, exprs in (("rendered/1", [[source, False, ["n"]]]), ("rendered/2", [source])):
        _plant(root, {"scheme": scheme, "values": [], "exprs": exprs})
        assert run(root, "compile") == 0
        assert run(root, "compile", "--no-cache", "-o", "clean") == 0
        for out in ("dist", "clean"):
            assert (
                json.loads((root / out / "dev.bundle.json").read_bytes())["modules"]["engine"]["model"]["max_tokens"]
                == 2
            )


def test_a_scalar_the_key_tokenizer_does_not_follow_is_compiled_each_run(tmp_path: Path) -> None:
    # A raw block: its key reads the names Jinja's parse finds as well, and no run takes it as known.
    source = "{% raw %}{{ x }}{% endraw %}{{ b }}"
    tpl = ENGINE_TEMPLATE + f'description: "{source}"\n'
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": tpl})
    base = root / "environments/base.yaml"
    base.write_text(BASE + "  b: one\n")
    assert run(root, "compile") == 0
    assert source.encode() not in cached_bytes(root, "rendered").partition(b'"exprs":')[2]
    base.write_text(BASE + "  b: two\n")
    assert _both(root) == ("{{ x }}two", "{{ x }}two")


def test_explain_names_the_variables_a_known_scalar_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The key reads every identifier of the source (here `upper`, `x`); explain shows what Jinja reads.
    tpl = ENGINE_TEMPLATE + 'description: "{% for x in items %}{{ x | upper }}{% endfor %}"\n'
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": tpl})
    (root / "environments/base.yaml").write_text(BASE + "  items: [a, b]\n  upper: 1\n")
    outs = []
    for _ in range(2):  # cold, then the scalar known from the cache
        capsys.readouterr()
        assert main(["-C", str(root), "explain", "dev", "engine.description"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    assert "items" in outs[0]
    assert "upper" not in outs[0].replace("x | upper", "")


@pytest.mark.parametrize("scheme", ["rendered/1", "rendered/2"])
def test_a_planted_expression_naming_fewer_variables_is_rendered_for_the_new_value(tmp_path: Path, scheme: str) -> None:
    # Below the CLI (which plans templates before it loads the tier): a template planned after
    # the entry loaded took the names it listed, so `b` was not in the key and "xold" was served.
    import uuid

    from compiler.incremental.parsed import RenderedScalars
    from compiler.incremental.store import ResultCache
    from compiler.load.yaml import load_document
    from compiler.render.jinja import Renderer, plan_template

    source = f"{{{{ a ~ b ~ '{uuid.uuid4().hex}' }}}}"  # new to this process: planned as the entry says
    stale = [[source, [Renderer({"a": "x"}, {}).fingerprint("a")], "xold"]]
    exprs = [[source, False, ["a"]]] if scheme == "rendered/1" else [source]
    store = ResultCache(tmp_path / "cache")
    store.put_bytes(RenderedScalars.key(), json.dumps({"scheme": scheme, "values": stale, "exprs": exprs}).encode())
    cache = RenderedScalars(store).load()
    doc = load_document(json.dumps({"d": source}).encode(), path="templates/t.yaml", layer="template")
    assert isinstance(doc.value, dict)
    out = Renderer({"a": "x", "b": "new"}, cache).render(plan_template(doc, doc.value))
    assert isinstance(out, dict)
    assert out["d"].startswith("xnew")


def _rendered_secret_repo(root: Path, template_line: str, variable: str) -> Path:
    schema = json.loads(json.dumps(ENGINE_SCHEMA))
    schema["properties"]["auth"] = {
        "type": "object",
        "properties": {"user": {"type": "string"}, "token": {"type": "string", "x-secret": True}},
    }
    schema["properties"]["providers"] = {
        "type": "array",
        "items": {"type": "object", "properties": {"name": {"type": "string"}, "key": {"x-secret": True}}},
    }
    files = {"templates/engine.yaml": ENGINE_TEMPLATE + template_line, "schemas/engine.schema.json": json.dumps(schema)}
    root = mini_repo(root, files)
    (root / "environments/base.yaml").write_text(BASE + variable)
    return root


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize(
    ("template_line", "variable", "line"),
    [
        ('auth: "{{ auth }}"\n', "  auth: {user: u, token: %s}\n", "auth"),
        ('providers: "{{ providers }}"\n', "  providers: [{name: a}, {name: b, key: %s}]\n", "providers"),
    ],
    ids=["map", "list"],
)
def test_a_variable_rendered_over_an_x_secret_field_is_refused_and_kept_nowhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str, template_line: str, variable: str, line: str
) -> None:
    # Attacker (issue 14 carry review): a map variable rendered at an ancestor of an x-secret field put a
    # plaintext token in the bundle (sealed as if from SOPS) and in .llmcc/cache; validate said ok.
    secret = new_canary()
    root = _rendered_secret_repo(tmp_path / "repo", template_line, variable % secret)
    assert run(root, "validate", "-j", jobs) == 1
    assert run(root, "compile", "-j", jobs) == 1
    err = capsys.readouterr().err
    at = ENGINE_TEMPLATE.count("\n") + 1
    assert f"templates/engine.yaml:{at}:" in err
    assert "secret in plaintext" in err
    assert secret not in err
    assert secret.encode() not in whole_cache(root)
    assert not list((root / "dist").glob("*.bundle.json")) if (root / "dist").exists() else True


def test_a_variable_rendered_over_an_object_without_setting_its_secret_field_passes(tmp_path: Path) -> None:
    root = _rendered_secret_repo(tmp_path / "repo", 'auth: "{{ auth }}"\n', "  auth: {user: u}\n")
    assert run(root, "validate") == 0
