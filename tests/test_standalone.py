"""The repository stands alone (issue 13 §1): no pointer to files outside it, its own reference docs and schemas.

- No tracked file points at ``../shared`` or at a design document the repository
  does not hold; only this test names them.
- ``docs/schemas/llmcc.schema.json`` is what ``tools/gen-schemas.py`` generates from
  ``compiler/project.py``; the package ships the same schemas.
- Real bundles of the example repository, compiled and published, fit
  ``docs/schemas/bundle.schema.json``.
- The benchmark's workload tools run from the repository.
"""

from __future__ import annotations

import base64
import json
import re
import runpy
import subprocess
import sys
import tomllib
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from compiler.cli import main
from compiler.errors import InputError
from compiler.load.yaml import load_document
from compiler.project import load_project
from tests.conftest import REPO_ROOT, GitRepo

# Built from parts, so that this file does not match its own rule.
_OUTSIDE = re.compile(re.escape("../" + "shared") + "|" + r"\b" + "DESIGN" + r"\b")
_THIS = Path(__file__).resolve().relative_to(REPO_ROOT).as_posix()
_SKIP_DIRS = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".cache", ".llmcc", "dist", "workloads"}
SIGNING_KEY = REPO_ROOT / "keys" / "demo-signing.pem"


def _tracked_files() -> list[str]:
    """Tracked files of this repository; every file but caches when it is not a git work tree (an sdist)."""
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=False)
    if proc.returncode == 0 and proc.stdout:
        return [name for name in proc.stdout.decode().split("\0") if name]
    return [
        p.relative_to(REPO_ROOT).as_posix()
        for p in REPO_ROOT.rglob("*")
        if p.is_file() and not _SKIP_DIRS & set(p.relative_to(REPO_ROOT).parts)
    ]


def _mentions_outside(names: list[str]) -> list[str]:
    hits = []
    for name in names:
        path = REPO_ROOT / name
        if name == _THIS or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        hits += [f"{name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if _OUTSIDE.search(line)]
    return hits


def test_no_tracked_file_points_outside_the_repository() -> None:
    hits = _mentions_outside(_tracked_files())
    assert hits == [], "these lines point at files a clone does not have:\n" + "\n".join(hits)


def test_the_rule_finds_a_pointer_outside() -> None:
    names = ["tests/test_standalone.py", "README.md"]
    assert _mentions_outside(names) == []
    assert _OUTSIDE.search("see " + "DESIGN" + ".md section 3")
    assert _OUTSIDE.search("python ../" + "shared/bench/gen_workload.py")
    assert not _OUTSIDE.search("the design is silent; shared files")


def test_the_reference_docs_exist() -> None:
    for name in ("bundle-format.md", "store-layout.md", "manifest.md", "exit-codes.md"):
        assert (REPO_ROOT / "docs" / name).is_file(), name


def _gen_schemas() -> dict[str, object]:
    return runpy.run_path(str(REPO_ROOT / "tools" / "gen-schemas.py"))


def test_committed_schemas_are_the_generated_ones() -> None:
    expected = _gen_schemas()["expected"]()  # type: ignore[operator]
    assert len(expected) == 3
    for path, data in expected.items():
        assert path.read_bytes() == data, f"{path} is out of date: run tools/gen-schemas.py"


def test_the_package_ships_the_schemas() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "schemas/*.json" in pyproject["tool"]["setuptools"]["package-data"]["compiler"]
    for name in ("llmcc.schema.json", "bundle.schema.json"):
        shipped = files("compiler").joinpath("schemas", name).read_bytes()
        assert shipped == (REPO_ROOT / "docs" / "schemas" / name).read_bytes()


def _schema(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((REPO_ROOT / "docs" / "schemas" / name).read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("manifest", ["llmcc.yaml", "compiler/scaffold/llmcc.yaml"])
def test_the_manifest_schema_accepts_the_example_and_the_scaffold(manifest: str) -> None:
    # the placeholders `llmcc init` fills in
    text = (REPO_ROOT / manifest).read_text().replace("@PROJECT@", "demo").replace("@AGE_RECIPIENT@", "age1x")
    doc = load_document(text.encode(), path=manifest, layer="manifest")
    errors = [e.message for e in _schema("llmcc.schema.json").iter_errors(doc.value)]
    assert errors == []


@pytest.mark.parametrize(
    "bad",
    [
        {"project": "p", "environments": {"dev": {}}, "extra": 1},
        {"project": "P", "environments": {"dev": {}}},
        {"project": "p", "environments": {}},
        {"project": "p", "environments": {"dev": {}}, "storage": {"pointer_expiry": "7w"}},
        {"project": "p", "environments": {"dev": {}}, "keys": {"compiler": {"provider": "gpg"}}},
    ],
)
def test_the_manifest_schema_refuses_what_validate_refuses(bad: dict[str, object]) -> None:
    assert list(_schema("llmcc.schema.json").iter_errors(bad))
    with pytest.raises(InputError):
        load_project(json.dumps(bad).encode())


def test_compiled_and_published_bundles_fit_the_bundle_schema(
    example_repo: GitRepo, demo_identity: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    validator = _schema("bundle.schema.json")
    root = example_repo.path
    dist = root.parent / "dist"
    assert main(["-C", str(root), "-q", "compile", "--out", str(dist)]) == 0
    compiled = sorted(dist.glob("*.bundle.json"))
    assert len(compiled) == 6
    payloads = [json.loads(p.read_bytes()) for p in compiled]
    monkeypatch.setenv("LLMCC_SIGNING_KEY_FILE", str(SIGNING_KEY))
    store = root.parent / "store"
    for replicas in (7, 8):  # the second commit changes prod: version 2, linked to version 1
        assert main(["-C", str(root), "-q", "publish", "--store", f"file://{store}", "-t", "prod"]) == 0
        prod = root / "environments" / "prod.yaml"
        prod.write_text(prod.read_text().replace(f"replicas: {replicas - 1}", f"replicas: {replicas}"))
        example_repo.commit("next")
    envelopes = sorted((store / "prod").glob("0*.dsse.json"))
    assert [p.name for p in envelopes] == ["00000001.dsse.json", "00000002.dsse.json"]
    published = [json.loads(base64.b64decode(json.loads(p.read_bytes())["payload"])) for p in envelopes]
    assert published[1]["metadata"]["version"] == 2
    assert published[1]["metadata"]["previous"].startswith("sha256:")
    capsys.readouterr()
    sealed = re.compile(validator.schema["$defs"]["sealedValue"]["pattern"])
    for bundle in payloads + published:
        assert [e.message for e in validator.iter_errors(bundle)] == []
        secrets = re.findall(r'"(ENC\[[^"]*)"', json.dumps(bundle["modules"]))
        assert all(sealed.fullmatch(s) for s in secrets)
    assert any(b["encryption"] for b in payloads)


def test_the_bundle_schema_refuses_a_bundle_that_is_not_one() -> None:
    validator = _schema("bundle.schema.json")
    good = {
        "apiVersion": "llmcc/v1",
        "kind": "Bundle",
        "metadata": {
            "project": "p",
            "target": "prod@acme",
            "version": None,
            "previous": None,
            "source": None,
            "compiler": "llmcc 0.1.0",
        },
        "modules": {"m": {"a": 1}},
        "encryption": None,
    }
    assert list(validator.iter_errors(good)) == []
    for change in (
        {"kind": "Pointer"},
        {"metadata": {**good["metadata"], "version": 0}},  # type: ignore[dict-item]
        {"metadata": {**good["metadata"], "previous": "sha1:00"}},  # type: ignore[dict-item]
        {"metadata": {**good["metadata"], "target": "Prod"}},  # type: ignore[dict-item]
        {"encryption": {"alg": "AES256_GCM"}},
        {"extra": True},
    ):
        assert list(validator.iter_errors({**good, **change})), change


def test_the_benchmark_workload_tools_run_from_the_repository(tmp_path: Path) -> None:
    """`make bench` uses bench/workload/: generate a tiny workload, compile it, check every bundle."""
    wl = tmp_path / "wl"
    gen = REPO_ROOT / "bench" / "workload" / "gen_workload.py"
    args = ["--modules", "2", "--keys", "12", "--tenants", "1", "--secrets", "0"]
    subprocess.run([sys.executable, str(gen), "--out", str(wl), *args], check=True, capture_output=True)
    ours = GitRepo(wl / "ours")
    ours.git("init", "-q", "-b", "main")
    ours.commit("workload")
    assert main(["-C", str(ours.path), "-q", "compile", "--out", str(tmp_path / "out")]) == 0
    modules = tmp_path / "modules"
    modules.mkdir()
    for bundle in (tmp_path / "out").glob("*.bundle.json"):
        target = bundle.name.removesuffix(".bundle.json")
        (modules / f"{target}.json").write_text(json.dumps(json.loads(bundle.read_bytes())["modules"]))
    check = REPO_ROOT / "bench" / "workload" / "check_outputs.py"
    proc = subprocess.run(
        [sys.executable, str(check), "bundles", str(wl), str(modules)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip().endswith("5/5 targets match")
