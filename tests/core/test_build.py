"""Bundles: canonical bytes, identical serial and parallel, identical across clones, git source."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.bundle.canonical import EncodingCache, canonical_json, digest
from compiler.cli import main
from compiler.compile.build import SPLICE_MIN_TARGETS, BuildRequest, build_targets
from compiler.errors import InputError
from compiler.sources.worktree import WorkTree
from tests.conftest import REPO_ROOT, GitRepo, init_repo
from tests.core._repos import many_targets_repo, mini_repo, open_repo

# --- canonical JSON -------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_canonical_json_is_idempotent_and_round_trips(value: object) -> None:
    data = canonical_json(value)  # type: ignore[arg-type]
    assert canonical_json(json.loads(data)) == data
    assert json.loads(data) == value


def test_canonical_json_form() -> None:
    assert canonical_json({"b": 1.0, "a": [1, "é", None], "c": {"z": True, "y": 0.1}}) == (
        '{"a":[1,"é",null],"b":1.0,"c":{"y":0.1,"z":true}}'.encode()
    )
    assert digest(b"abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [float("-inf")]])
def test_canonical_json_refuses_what_json_cannot_spell(value: object) -> None:
    with pytest.raises(ValueError, match="not representable in JSON"):
        canonical_json(value)  # type: ignore[arg-type]


def _dumps(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# Maps nested a few levels deep, as modules are (module -> group -> subgroup -> leaves); keys with
# quotes, escapes and non-ASCII text; floats with exponents (1e+16, 1e-07) and -0.0.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e16, 1e-07, -0.0, 1.0, 2**70])
    | st.text()
)
NESTED = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=5),
    max_leaves=40,
)


def _edited(value: object, data: st.DataObject, depth: int = 0) -> object:
    """A copy of ``value`` that shares what it does not change (by identity), as a merge leaves it."""
    choice = data.draw(st.sampled_from(["same", "same", "edit", "replace"]), label=f"choice@{depth}")
    if choice == "same":
        return value
    if choice == "replace" or not isinstance(value, dict):
        return data.draw(NESTED, label=f"new@{depth}")
    out = {}
    for k, v in value.items():
        if not data.draw(st.booleans(), label=f"drop {k!r}@{depth}") or len(value) < 2:
            out[k] = _edited(v, data, depth + 1)
    out.update(data.draw(st.dictionaries(st.text(max_size=3), NESTED, max_size=2), label=f"add@{depth}"))
    return out


@given(NESTED, st.data())
def test_canonical_json_splicing_a_stored_value_is_json_dumps(value: object, data: st.DataObject) -> None:
    """Encoding a copy against the stored original (``like``) gives json.dumps' bytes (issue 14 §3):
    shared maps reuse their text, changed members are spliced among the stored ones."""
    cache: EncodingCache = {}
    assert canonical_json(value, cache=cache, store=True) == _dumps(value)  # type: ignore[arg-type]
    assert canonical_json(value, cache=cache, like=value) == _dumps(value)  # type: ignore[arg-type]
    edited = _edited(value, data)
    assert canonical_json(edited, cache=cache, like=value) == _dumps(edited)  # type: ignore[arg-type]
    body = {"apiVersion": "v", "modules": edited, "z": [1.5]}
    assert canonical_json(body, cache=cache, like={"modules": value}) == _dumps(body)  # type: ignore[arg-type]
    assert canonical_json(value, cache=cache, like=value) == _dumps(value)  # type: ignore[arg-type]  # unchanged


def test_canonical_json_splicing_coerces_and_refuses_like_json() -> None:
    cache: EncodingCache = {}
    base = {"a": {"b": {"c": 1, "d": 2.0}, "e": {1: "x"}}}
    canonical_json(base, cache=cache, store=True)  # type: ignore[arg-type]
    copy = {"a": {**base["a"], "b": {"c": 1, "d": 3.5}, "f": {2: [2.0]}}}
    assert canonical_json(copy, cache=cache, like=base) == _dumps(copy)  # type: ignore[arg-type]
    assert canonical_json(copy, cache=cache, like=base) == b'{"a":{"b":{"c":1,"d":3.5},"e":{"1":"x"},"f":{"2":[2.0]}}}'  # type: ignore[arg-type]
    changed = {"a": {**base["a"], "e": {1: "y"}}}
    assert canonical_json(changed, cache=cache, like=base) == _dumps(changed)  # type: ignore[arg-type]
    numbered = {"a": {1: "x", 2.5: None}}  # keys json turns into strings, in place of stored ones
    assert canonical_json(numbered, cache=cache, like=base) == b'{"a":{"1":"x","2.5":null}}'  # type: ignore[arg-type]
    assert canonical_json({3: "z"}, cache=cache, like={"x": base}) == b'{"3":"z"}'  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="not representable in JSON"):
        canonical_json({"a": {**base["a"], "b": {"c": float("nan"), "d": 2.0}}}, cache=cache, like=base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not representable in JSON"):
        canonical_json({"a": {**base["a"], "g": float("inf")}}, cache=cache, like=base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not representable in JSON"):
        canonical_json({"x": float("-inf")}, cache=cache, store=True)
    with pytest.raises(ValueError, match="not representable in JSON"):
        canonical_json({"a": {"n": float("nan")}}, cache=cache, like={"a": {}})


# --- parallel compile equals serial ----------------------------------------------------------


def test_parallel_compile_gives_the_same_bytes_as_serial(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=6)  # 3 + 12 = 15 targets
    repo = open_repo(root)
    targets = repo.project.targets()
    assert len(targets) >= 10
    serial = build_targets(BuildRequest(repo=repo, source=None, keep_bytes=True), targets, jobs=1)
    parallel = build_targets(BuildRequest(repo=open_repo(root), source=None, keep_bytes=True), targets, jobs=2)
    assert [o.target for o in parallel] == [t.name for t in targets]  # in the order asked
    assert [o.data for o in parallel] == [o.data for o in serial]
    assert all(o.data for o in serial)
    assert len({o.data for o in serial}) == len(targets)  # every target differs


def test_a_few_targets_encoded_whole_give_the_bytes_spliced_from_their_environment(tmp_path: Path) -> None:
    """Below SPLICE_MIN_TARGETS of an environment, a bundle is encoded whole: the same bytes."""
    root = many_targets_repo(tmp_path / "repo", tenants=6)
    targets = open_repo(root).project.targets()
    every = build_targets(BuildRequest(repo=open_repo(root), source=None, keep_bytes=True), targets, jobs=1)
    by_env: dict[str, list[str]] = {}
    for t in targets:
        by_env.setdefault(t.environment, []).append(t.name)
    assert all(len(names) >= SPLICE_MIN_TARGETS for env, names in by_env.items() if env != "dev")
    few = [t for t in targets if t.name in {"dev", "staging@t01", "prod@t01"}]  # one target of each environment
    assert len(few) == 3
    alone = build_targets(BuildRequest(repo=open_repo(root), source=None, keep_bytes=True), few, jobs=1)
    assert [o.data for o in alone] == [o.data for o in every if o.target in {t.name for t in few}]
    assert all(o.data for o in alone)


def test_parallel_and_serial_compile_write_identical_files(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5)
    assert main(["-C", str(root), "-q", "compile", "-j", "2", "-o", "par"]) == 0
    assert main(["-C", str(root), "-q", "compile", "-j", "1", "-o", "ser"]) == 0
    par = sorted(p.name for p in (root / "par").iterdir())
    assert par == sorted(p.name for p in (root / "ser").iterdir())
    assert len(par) == 13
    for name in par:
        assert (root / "par" / name).read_bytes() == (root / "ser" / name).read_bytes()


def test_parallel_compile_reports_the_same_diagnostics(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5)
    (root / "environments/tenants/t03.yaml").write_text("modules:\n  engine:\n    model: {max_tokens: 0}\n")
    serial = build_targets(BuildRequest(repo=open_repo(root), source=None), open_repo(root).project.targets(), jobs=1)
    parallel = build_targets(BuildRequest(repo=open_repo(root), source=None), open_repo(root).project.targets(), jobs=3)
    assert [(o.target, o.diagnostics) for o in parallel] == [(o.target, o.diagnostics) for o in serial]
    assert [o.target for o in serial if o.diagnostics] == ["staging@t03"]  # prod/tenants/t03 fixes it


def test_a_parallel_worker_input_error_comes_back_with_its_target(tmp_path: Path) -> None:
    root = many_targets_repo(tmp_path / "repo", tenants=5)
    (root / "environments/prod/tenants/t02.yaml").write_text("modules: [\n")
    outcomes = build_targets(BuildRequest(repo=open_repo(root), source=None), open_repo(root).project.targets(), jobs=2)
    errors = {o.target: o.error for o in outcomes if o.error}
    assert errors == {
        "prod@t02": ("environments/prod/tenants/t02.yaml:2:1: invalid YAML: did not find expected node content", 2)
    }


# --- identical across clones ------------------------------------------------------------------


def clone(src: GitRepo, dest: Path) -> Path:
    src.git("clone", "-q", str(src.path), str(dest))
    return dest


def test_bundles_are_byte_identical_across_clones(example_repo: GitRepo, tmp_path: Path, demo_identity: Path) -> None:
    a = clone(example_repo, tmp_path / "clone-a")
    b = clone(example_repo, tmp_path / "somewhere" / "else" / "clone-b")
    assert main(["-C", str(a), "-q", "compile"]) == 0
    time.sleep(1.1)  # a build timestamp would now differ
    assert main(["-C", str(b), "-q", "compile"]) == 0
    names = sorted(p.name for p in (a / "dist").iterdir())
    assert names == sorted(p.name for p in (b / "dist").iterdir())
    assert names == sorted(f"{t}.bundle.json" for t in open_repo(a).project.targets())
    head = example_repo.git("rev-parse", "HEAD").strip()
    for name in names:
        data = (a / "dist" / name).read_bytes()
        assert data == (b / "dist" / name).read_bytes(), name
        text = data.decode()
        for absolute in (str(tmp_path), str(REPO_ROOT), str(Path.home()), "/tmp/"):
            assert absolute not in text
        bundle = json.loads(data)
        assert canonical_json(bundle) == data
        assert set(bundle) == {"apiVersion", "kind", "metadata", "modules", "encryption"}
        meta = bundle["metadata"]
        assert set(meta) == {"project", "target", "version", "previous", "source", "compiler"}
        assert meta["source"] == {
            "commit": head,
            "author": "Ada Author <ada@example.com>",
            "committed_at": "2026-01-01T00:00:00+00:00",
            "message": "Example platform config",
            "dirty": False,
        }
        build_day = time.strftime("%Y-%m-%dT%H:%M", time.gmtime())
        assert build_day not in text


def test_secret_fields_are_sealed_in_the_bundle(example_repo: GitRepo, demo_identity: Path) -> None:
    assert main(["-C", str(example_repo.path), "-q", "compile", "-t", "prod"]) == 0
    text = (example_repo.path / "dist" / "prod.bundle.json").read_text()
    key = json.loads(text)["modules"]["inference-engine"]["providers"]["openai"]["api_key"]
    assert re.fullmatch(r"ENC\[[^\]]+\]", key)


# --- metadata.source from git ----------------------------------------------------------------


def source_of(root: Path) -> dict:
    info = WorkTree(root).source_info()
    assert info is not None
    return info.to_json()


def test_source_comes_from_git_and_dirty_counts_tracked_files_only(git_repo: GitRepo) -> None:
    mini_repo(git_repo.path)
    commit = git_repo.commit(
        "Tune the engine\n\nLonger body.", author="Bo Builder <bo@example.com>", date="2026-03-04T05:06:07Z"
    )
    assert source_of(git_repo.path) == {
        "commit": commit,
        "author": "Bo Builder <bo@example.com>",
        "committed_at": "2026-03-04T05:06:07+00:00",
        "message": "Tune the engine\n\nLonger body.",
        "dirty": False,
    }
    (git_repo.path / "notes.txt").write_text("untracked\n")
    (git_repo.path / "dist").mkdir()
    (git_repo.path / "dist" / "prod.bundle.json").write_text("{}")
    assert source_of(git_repo.path)["dirty"] is False
    with (git_repo.path / "environments" / "prod.yaml").open("a") as f:
        f.write("# edited\n")
    assert source_of(git_repo.path)["dirty"] is True
    git_repo.git("add", "environments/prod.yaml")  # staged but not committed is still dirty
    assert source_of(git_repo.path)["dirty"] is True


def test_dirty_flag_reaches_the_bundle(git_repo: GitRepo) -> None:
    root = mini_repo(git_repo.path)
    git_repo.commit("init")
    assert main(["-C", str(root), "-q", "compile", "-t", "prod"]) == 0
    assert json.loads((root / "dist/prod.bundle.json").read_text())["metadata"]["source"]["dirty"] is False
    (root / "environments/prod.yaml").write_text("vars: {}\n")
    assert main(["-C", str(root), "-q", "compile", "-t", "prod"]) == 0
    assert json.loads((root / "dist/prod.bundle.json").read_text())["metadata"]["source"]["dirty"] is True


def test_outside_git_there_is_no_source(tmp_path: Path) -> None:
    root = mini_repo(tmp_path / "plain")
    assert WorkTree(root).source_info() is None
    assert main(["-C", str(root), "-q", "compile", "-t", "dev"]) == 0
    assert json.loads((root / "dist/dev.bundle.json").read_text())["metadata"]["source"] is None


def test_a_config_repo_in_a_subdirectory_is_dirty_only_for_its_own_files(tmp_path: Path) -> None:
    mono = init_repo(tmp_path / "mono")
    mini_repo(mono.path / "config")
    mono.write("service/main.py", "print()\n")
    mono.commit("monorepo")
    mono.write("service/main.py", "print('changed')\n")
    assert source_of(mono.path / "config")["dirty"] is False
    mono.write("config/environments/dev.yaml", "vars: {}\n")
    assert source_of(mono.path / "config")["dirty"] is True


def test_an_unchanged_secret_keeps_its_ciphertext_across_commits(example_repo, demo_identity: Path) -> None:
    """Deterministic sealing: a commit that changes a plain value changes nothing else in the bundle."""

    def compile_prod() -> dict:
        out = example_repo.path / "dist"
        assert main(["-C", str(example_repo.path), "compile", "-q", "-t", "prod"]) == 0
        return json.loads((out / "prod.bundle.json").read_bytes())

    before = compile_prod()
    prod = example_repo.path / "environments/prod.yaml"
    prod.write_text(prod.read_text().replace("temperature: 0.3", "temperature: 0.25"))
    example_repo.commit("Cooler prod models")
    after = compile_prod()
    assert after["modules"]["inference-engine"]["model"]["temperature"] == 0.25
    assert after["modules"]["data-pipeline"]["db"]["password"].startswith("ENC[AES256_GCM_SIV,")
    for module in before["modules"]:
        if module != "inference-engine":
            assert after["modules"][module] == before["modules"][module], module
    assert after["modules"]["inference-engine"]["providers"] == before["modules"]["inference-engine"]["providers"]
    assert after["encryption"] == before["encryption"]


def test_parallel_tasks_keep_a_tenants_targets_together() -> None:
    """A tenant's targets read the same tenant files: one worker task parses them once (issue 14 §3);
    a task is a target or a tenant's few, so no worker sits idle while the other ends a long chunk."""
    from compiler.compile.build import _tenant_groups
    from compiler.project import Target

    targets = [Target("dev"), Target("staging"), Target("prod")]
    targets += [Target(env, f"t{i}") for i in range(3) for env in ("staging", "prod")]
    targets.append(Target("dev", "t1"))
    assert _tenant_groups(targets) == [
        (Target("dev"),),
        (Target("staging"),),
        (Target("prod"),),
        (Target("staging", "t0"), Target("prod", "t0")),
        (Target("staging", "t1"), Target("prod", "t1"), Target("dev", "t1")),
        (Target("staging", "t2"), Target("prod", "t2")),
    ]


def test_without_git_the_source_is_one_line_not_a_traceback(git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    root = mini_repo(git_repo.path)
    git_repo.commit("init")
    monkeypatch.setenv("PATH", str(root / "no-such-bin"))  # log and status start side by side: neither is found
    with pytest.raises(InputError, match=r"^git is not installed$"):
        WorkTree(root).source_info()
