"""What the parsed/rendered tier of the result cache must never keep, and results it must not change."""

from __future__ import annotations

import json
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
