"""Re-rendering from a target's previous result (``compiler.incremental.carry``, issue 14 §2).

A target whose inputs changed only in layer variables is not compiled again: the scalars
that read a changed variable are rendered and spliced into its previous canonical text.
A build keeps a stub under the carry key; the first variable-only change after it compiles and
keeps a whole record (``warm``). Each test compares with ``compile --no-cache`` byte for byte; a record that is damaged,
forged with a right digest, or does not fit is ignored and the target compiled.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.incremental.store import CACHE_DIR
from tests.conftest import GitRepo
from tests.core._repos import many_targets_repo, mini_repo, sops_encrypt
from tests.secrets._secrets_support import new_canary


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMCC_NO_CACHE", raising=False)


def run(root: Path, *argv: str) -> int:
    return main(["-q", "-C", str(root), *argv])


def bundles(root: Path, out: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / out).glob("*.bundle.json"))}


def same_as_clean(root: Path, *extra: str) -> dict[str, bytes]:
    assert run(root, "compile", *extra) == 0
    assert run(root, "compile", "--no-cache", "-o", "clean") == 0
    cached = bundles(root, "dist")
    assert cached == bundles(root, "clean")
    return cached


def entries(root: Path, marker: bytes) -> list[Path]:
    """The cache entries whose payload starts with ``marker``."""
    return [p for p in (root / CACHE_DIR).rglob("*.json") if p.read_bytes().partition(b"\n")[2].startswith(marker)]


def records(root: Path) -> list[Path]:
    return entries(root, b'{"closed":')


def warm(root: Path, *extra: str) -> None:
    """Compile, then change a base variable and compile again: a build keeps a stub under the carry
    key, and the first variable-only change after it compiles and keeps a whole record."""
    same_as_clean(root, *extra)
    stubs = len(entries(root, b'{"stub":true}'))
    assert stubs
    assert not records(root)
    base = root / "environments/base.yaml"
    base.write_text(base.read_text().replace("region: us-east-1", "region: r-warm"))
    same_as_clean(root, *extra)
    assert len(records(root)) == stubs


def rewrite(entry: Path, body: bytes) -> None:
    """Replace an entry's payload as this user could: the header's digest and size made right."""
    head = json.loads(entry.read_bytes().partition(b"\n")[0])
    head.update(sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    entry.write_bytes(json.dumps(head).encode() + b"\n" + body)


def plant_template(root: Path) -> None:
    """Change the kept parse of the template (a static value): a target compiled from it shows it."""
    for p in entries(root, b'{"scheme":"document/'):
        body = p.read_bytes().partition(b"\n")[2]
        if b'"path":"templates/engine.yaml"' in body:
            rewrite(p, body.replace(b'"fallbacks":["small"]', b'"fallbacks":["planted"]'))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_base_variable_change_is_re_rendered_from_the_previous_result(tmp_path: Path, jobs: str) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=4, modules=2)  # 11 targets: in workers with -j 2
    warm(root, "-j", jobs)
    assert len(records(root)) == 11  # every target compiled clean and without secrets has one
    for body in (r.read_bytes().partition(b"\n")[2] for r in records(root)):
        prints = json.loads(body)["vars"]
        assert all(len(v) == 64 for v in prints.values())  # digests of the values, never the values
    plant_template(root)  # a target compiled again would show the planted value
    base = root / "environments/base.yaml"
    base.write_text(base.read_text().replace("model: big", "model: b\u00efg-\u2713"))  # non-ASCII: chars, not bytes
    assert run(root, "compile", "-j", jobs) == 0
    out = bundles(root, "dist")
    assert not any(b"planted" in data for data in out.values())  # re-rendered, not compiled
    assert all("b\u00efg-\u2713".encode() in data for name, data in out.items() if name != "dev.bundle.json")
    assert run(root, "compile", "--no-cache", "-o", "clean") == 0
    assert out == bundles(root, "clean")


def test_a_change_to_a_layers_modules_is_compiled_not_carried(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "repo")
    warm(root)
    plant_template(root)
    (root / "environments/base.yaml").write_text(
        "vars:\n  model: other\n  temperature: 0.5\n  region: r-warm\nmodules:\n  engine:\n    description: x\n"
    )
    assert run(root, "compile") == 0
    assert all(b"planted" in data for data in bundles(root, "dist").values())  # compiled from the kept parse


@pytest.mark.parametrize(
    "damage",
    [
        "garbage",  # the digest fails: the store refuses it
        "shifted",  # every slot one character later: not a value where the record says
        "widened",  # every slot one character longer
        "unknown-variable",  # a variable the target does not have: only more is re-rendered
        "no-slots",  # the slots of the module gone: a free scalar without its slot
        "closed",  # the module said not to be carryable
        "not-a-record",  # another shape
    ],
)
def test_a_damaged_or_forged_record_is_ignored_and_the_target_compiled(tmp_path: Path, damage: str) -> None:
    root = mini_repo(tmp_path / "repo")
    warm(root)
    for r in records(root):
        body = r.read_bytes().partition(b"\n")[2]
        record = json.loads(body)
        if damage == "garbage":
            r.write_bytes(r.read_bytes().replace(b'"vars"', b'"vars_"'))
            continue
        for columns in record["slots"].values():
            if damage == "shifted":
                columns[1] = [s + 1 for s in columns[1]]
                columns[2] = [e + 1 for e in columns[2]]
            if damage == "widened":
                columns[2] = [e + 1 for e in columns[2]]
        if damage == "unknown-variable":
            record["vars"]["ghost"] = "0" * 64
        if damage == "no-slots":
            record["slots"] = {}
        if damage == "closed":
            record["closed"] = ["engine"]
        if damage == "not-a-record":
            record["slots"] = [1, 2, 3]
        rewrite(r, json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
    base = root / "environments/base.yaml"
    base.write_text(base.read_text().replace("model: big", "model: huge"))
    same_as_clean(root)


def test_a_variable_that_breaks_the_schema_is_reported_as_a_clean_compile_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = mini_repo(tmp_path / "repo")
    warm(root)
    capsys.readouterr()
    base = root / "environments/base.yaml"
    base.write_text(base.read_text().replace("temperature: 0.5", "temperature: 1.5"))  # above the maximum
    assert run(root, "compile") == 1
    cached = capsys.readouterr().err
    assert run(root, "compile", "--no-cache", "-o", "clean") == 1
    assert cached == capsys.readouterr().err
    assert "temperature" in cached


def test_a_target_with_secret_fields_keeps_no_record(example_repo: GitRepo, demo_identity: Path) -> None:
    root = example_repo.path
    shutil.rmtree(root / "policies")  # a repository with policies keeps no records at all
    secret = new_canary()
    elsewhere = root.parent / "no-sops-config"
    elsewhere.mkdir()
    sops = sops_encrypt(f"modules:\n  data-pipeline:\n    db:\n      password: {secret}\n", cwd=elsewhere)
    (root / "environments/dev.secrets.sops.yaml").write_text(sops)
    built = same_as_clean(root)
    plain = [name for name, data in built.items() if json.loads(data)["encryption"] is None]
    assert len(entries(root, b'{"stub":true}')) == len(plain)  # a target with a sealed secret keeps none
    every = b"".join(p.read_bytes() for p in (root / CACHE_DIR).rglob("*") if p.is_file())
    assert secret.encode() not in every
    base = root / "environments/base.yaml"
    text = base.read_text()
    assert "temperature: 0.7" in text
    base.write_text(text.replace("temperature: 0.7", "temperature: 0.6"))
    same_as_clean(root)
