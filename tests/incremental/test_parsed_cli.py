"""The parsed-input tier through the CLI: what it stores, what it never stores, what a change re-renders."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.incremental.parsed import RenderedScalars
from compiler.incremental.store import CACHE_DIR, ResultCache
from tests.conftest import CANARY_BYTES, GitRepo, init_repo
from tests.core._repos import ENGINE_TEMPLATE, many_targets_repo, mini_repo, sops_encrypt
from tests.secrets._secrets_support import new_canary

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(root: Path, *argv: str) -> int:
    return main(["-q", "-C", str(root), *argv])


def stored_documents(root: Path) -> set[str]:
    """The paths of the parsed documents in the cache."""
    paths = set()
    for entry in (root / CACHE_DIR).rglob("*.json"):
        body = entry.read_bytes().partition(b"\n")[2]
        if body.startswith(b'{"scheme":"document/'):
            paths.add(json.loads(body.partition(b"\n")[0])["path"])
    return paths


def test_a_compile_with_an_identity_stores_parsed_files_but_nothing_of_a_sops_file(
    example_repo: GitRepo, demo_identity: Path
) -> None:
    root = example_repo.path
    secret = new_canary()
    elsewhere = root.parent / "no-sops-config"
    elsewhere.mkdir()
    sops = sops_encrypt(f"modules:\n  data-pipeline:\n    db:\n      password: {secret}\n", cwd=elsewhere)
    (root / "environments/dev.secrets.sops.yaml").write_text(sops)
    assert run(root, "compile") == 0
    assert run(root, "validate") == 0
    stored = stored_documents(root)
    assert "templates/inference-engine.yaml" in stored
    assert "environments/dev.yaml" in stored
    assert not [p for p in stored if p.endswith(".sops.yaml")]
    every = b"".join(p.read_bytes() for p in (root / CACHE_DIR).rglob("*") if p.is_file())
    assert CANARY_BYTES.search(every) is None
    assert secret.encode() not in every
    assert b"ENC[AES256_GCM," not in every  # not even sops's ciphertexts: a SOPS file is never stored
    assert b"ENC[AES256_GCM_SIV," in every  # the values llmcc sealed for the bundle are
    assert RenderedScalars(ResultCache(root / CACHE_DIR)).load()  # the rendered scalars are


def rendered_entries(root: Path) -> int:
    return sum(
        1 for p in (root / CACHE_DIR).rglob("*.json") if b'{"scheme":"rendered/' in p.read_bytes().partition(b"\n")[2]
    )


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_changed_variable_renders_only_the_scalars_that_read_it(tmp_path: Path, jobs: str) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=4, modules=2)  # 11 targets: built in workers with -j 2
    assert run(root, "compile", "-j", jobs) == 0
    before = RenderedScalars(ResultCache(root / CACHE_DIR)).load()
    # what the workers rendered for the tenants (their own temperatures) is kept too, in the one entry
    assert ("{{ temperature }}", ("f0.03",)) in before
    assert rendered_entries(root) == 1
    base = root / "environments/base.yaml"
    base.write_text(base.read_text().replace("us-east-1", "ap-south-1"))
    assert run(root, "compile", "-j", jobs) == 0
    after = RenderedScalars(ResultCache(root / CACHE_DIR)).load()
    rendered = [source for source, _ in after.keys() - before.keys()]
    assert rendered
    assert all("region" in source for source in rendered)
    assert run(root, "compile", "--no-cache", "-o", "clean") == 0
    for bundle in (root / "dist").glob("*.bundle.json"):
        assert bundle.read_bytes() == (root / "clean" / bundle.name).read_bytes()


PROBE = """
import sys
from compiler.cli import main
code = main(["-q", "-C", sys.argv[1], "compile", *sys.argv[2:]])
print(code, "jinja2" in sys.modules)
"""


def compile_in_a_process(root: Path, *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "LLMCC_NO_CACHE"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(root), *extra],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )
    return proc.stdout.split("\n")[-2]


def test_a_template_whose_values_are_kept_is_planned_and_rendered_without_jinja(tmp_path: Path) -> None:
    jinja_only = ENGINE_TEMPLATE + "description: \"{{ region | replace('-', ' ') | title }}\"\n"
    root = mini_repo(tmp_path / "repo", {"templates/engine.yaml": jinja_only})
    assert compile_in_a_process(root) == "0 True"  # the cache is empty: Jinja compiles and renders
    tenant = root / "environments/tenants/acme.yaml"
    tenant.parent.mkdir(parents=True, exist_ok=True)
    tenant.write_text("modules:\n  engine:\n    tags: {tenant: acme}\n")  # a value, no variable
    assert compile_in_a_process(root) == "0 False"
    tenant.write_text("modules:\n  engine:\n    tags: {tenant: acme-2}\n")
    assert compile_in_a_process(root, "--no-cache") == "0 True"
    description = json.loads((root / "dist/staging.bundle.json").read_bytes())["modules"]["engine"]["description"]
    assert description == "Eu West 1"


def test_a_compile_from_a_revision_keeps_documents_apart_from_the_working_tree(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    mini_repo(repo.path)
    (repo.path / ".gitignore").write_text("dist/\nold/\n.llmcc/\n")
    repo.commit("start")
    head = repo.git("rev-parse", "HEAD").strip()
    assert run(repo.path, "compile") == 0
    base = repo.path / "environments/base.yaml"
    base.write_text(base.read_text().replace("big", "huge"))
    assert run(repo.path, "compile", "--rev", head, "-o", "old") == 0
    assert run(repo.path, "compile") == 0
    staging_old = json.loads((repo.path / "old/staging.bundle.json").read_bytes())
    staging_new = json.loads((repo.path / "dist/staging.bundle.json").read_bytes())
    assert staging_old["modules"]["engine"]["model"]["name"] == "big"
    assert staging_new["modules"]["engine"]["model"]["name"] == "huge"


@pytest.mark.parametrize("damage", ["garbage", "empty"])
def test_every_kept_entry_damaged_the_compile_is_the_same(tmp_path: Path, damage: str) -> None:
    root = mini_repo(tmp_path / "repo")
    assert run(root, "compile", "-o", "first") == 0
    for entry in (root / CACHE_DIR).rglob("*.json"):
        head, _, body = entry.read_bytes().partition(b"\n")
        if body.startswith((b'{"scheme":"document/', b'{"scheme":"rendered/')):
            entry.write_bytes(head + b"\n" + (b"x" * len(body) if damage == "garbage" else b""))
    tenant = root / "environments/tenants/acme.yaml"
    tenant.parent.mkdir(parents=True, exist_ok=True)
    tenant.write_text("vars:\n  region: r9\n")  # every tenant target misses: built from the damaged tier
    assert run(root, "compile") == 0
    assert run(root, "compile", "--no-cache", "-o", "clean") == 0
    for bundle in (root / "clean").glob("*.bundle.json"):
        assert bundle.read_bytes() == (root / "dist" / bundle.name).read_bytes()
    assert stored_documents(root)  # written again


@pytest.mark.parametrize("where", ["environments/dev.yaml", "templates/engine.yaml", "environments/tenants/acme.yaml"])
def test_a_file_that_sets_a_secret_field_in_plaintext_is_not_kept(tmp_path: Path, where: str) -> None:
    secret = f"plaintext-{uuid.uuid4()}"  # not a canary: the planted file itself holds it, on purpose
    text = f"api_key: {secret}\n"
    if where.startswith("environments/"):
        text = f"modules:\n  engine:\n    api_key: {secret}\n"
    else:
        text = ENGINE_TEMPLATE + text
    root = mini_repo(tmp_path / "repo", {where: text})
    assert run(root, "validate") == 1  # the secrets guard refuses it
    assert run(root, "compile") == 1
    stored = stored_documents(root)
    assert where not in stored
    # the other files are kept; but for an unkept template, not base.yaml: it defines variables that
    # template reads (what it renders into the secret field may come from one)
    assert "environments/prod.yaml" in stored
    assert ("environments/base.yaml" in stored) is where.startswith("environments/")
    every = b"".join(p.read_bytes() for p in (root / CACHE_DIR).rglob("*") if p.is_file())
    assert secret.encode() not in every


def test_no_cache_neither_reads_nor_writes_the_parsed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = mini_repo(tmp_path / "repo")
    assert run(root, "compile", "--no-cache") == 0
    monkeypatch.setenv("LLMCC_NO_CACHE", "1")
    assert run(root, "compile") == 0
    assert not (root / CACHE_DIR).exists()
    monkeypatch.delenv("LLMCC_NO_CACHE")
    assert run(root, "compile") == 0
    [entry] = [p for p in (root / CACHE_DIR).rglob("*.json") if b'"path":"templates/engine.yaml"' in p.read_bytes()]
    head, _, body = entry.read_bytes().partition(b"\n")
    planted = body.replace(b'"fallbacks":["small"]', b'"fallbacks":["planted"]')
    header = json.loads(head)
    header.update(sha256=hashlib.sha256(planted).hexdigest(), size=len(planted))
    entry.write_bytes(json.dumps(header).encode() + b"\n" + planted)  # as this user could: the digest right
    # dev misses, and its layer's modules changed too (a variable alone is re-rendered from the
    # previous result: compiler.incremental.carry): built from the entry
    (root / "environments/dev.yaml").write_text("vars:\n  model: tiny2\nmodules:\n  engine:\n    region: us-east-1\n")
    assert run(root, "compile", "--no-cache", "-o", "clean") == 0
    monkeypatch.setenv("LLMCC_NO_CACHE", "1")
    assert run(root, "compile", "-o", "clean2") == 0
    for out in ("clean", "clean2"):
        assert b"planted" not in (root / out / "dev.bundle.json").read_bytes()
    monkeypatch.delenv("LLMCC_NO_CACHE")
    assert run(root, "compile") == 0
    assert b"planted" in (root / "dist/dev.bundle.json").read_bytes()  # the tier is read
