"""What an entry holds (findings, sealed modules) and what a key is made of, piece by piece."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from compiler.audit.revisions import worktree_file_ids
from compiler.bundle.canonical import canonical_json
from compiler.bundle.model import build_body
from compiler.compile.repository import Repository
from compiler.diagnostics import Diagnostic, Origin, Severity
from compiler.incremental.entry import (
    EntryError,
    diagnostic_from_json,
    diagnostic_to_json,
    join_bundle,
    split_bundle,
)
from compiler.incremental.inputs import CHECK_ROOTS
from compiler.incremental.key import KeyContext, cache_keys
from compiler.incremental.plan import cache_disabled, plan_cache
from compiler.project import Target, load_project
from compiler.secrets.sources import SopsOpener
from compiler.sources.gitrev import GitRevTree
from tests.conftest import REPO_ROOT, GitRepo

FULL = Diagnostic(
    message="too hot",
    severity=Severity.WARNING,
    origin=Origin(path="environments/prod.yaml", line=3, column=5, layer="prod", rev="abc"),
    module="engine",
    path=("model", "fallbacks", 2),
    target="prod",
    rule="cool",
    notes=("a note",),
    value_origin=Origin(path="environments/base.yaml", line=1, column=1, layer="base"),
)


def test_a_diagnostic_round_trips() -> None:
    assert diagnostic_from_json(diagnostic_to_json(FULL)) == FULL
    bare = Diagnostic(message="m")
    assert diagnostic_from_json(diagnostic_to_json(bare)) == bare


@pytest.mark.parametrize(
    "change",
    [
        {"message": 1},
        {"severity": "fatal"},
        {"severity": ["error"]},
        {"module": 3},
        {"path": "model"},
        {"path": [True]},
        {"notes": "n"},
        {"notes": [1]},
        {"origin": ["p", 1, 1]},
        {"origin": ["p", "1", 1, "l", None]},
        {"origin": ["p", 1, 1, "l", 5]},
        {"rule": None, "target": {}},
    ],
)
def test_a_malformed_diagnostic_is_an_entry_error(change: dict[str, object]) -> None:
    with pytest.raises(EntryError):
        diagnostic_from_json({**diagnostic_to_json(FULL), **change})  # type: ignore[dict-item]


def test_a_diagnostic_missing_a_field_or_not_an_object_is_an_entry_error() -> None:
    data = diagnostic_to_json(FULL)
    del data["notes"]
    with pytest.raises(EntryError):
        diagnostic_from_json(data)
    with pytest.raises(EntryError):
        diagnostic_from_json([1])


SOURCE = {
    "commit": "c" * 40,
    "author": "a <a@b>",
    "committed_at": "2026-01-01T00:00:00Z",
    "message": "m",
    "dirty": False,
}


def bundle(encryption: dict[str, object] | None, source: dict[str, object] | None = SOURCE) -> bytes:
    body = build_body(
        project="p", target="prod", source=source, modules={"engine": {"a": [1, "x"]}}, encryption=encryption
    )
    return canonical_json(body)


@pytest.mark.parametrize("encryption", [None, {"recipients": ["age1x"], "alg": "A256GCM"}])
def test_a_bundle_splits_into_modules_and_joins_back_with_another_source(encryption: dict[str, object] | None) -> None:
    modules, block = split_bundle(bundle(encryption), project="p", target="prod", source=SOURCE)
    assert modules == '{"engine":{"a":[1,"x"]}}'
    assert block == encryption
    assert join_bundle(modules, block, project="p", target="prod", source=None) == bundle(encryption, None)


@pytest.mark.parametrize(
    ("data", "project"),
    [
        (b'{"kind":"Bundle"}', "p"),
        (bundle(None).replace(b',"kind":', b',"kinds":'), "p"),
        (bundle(None), "other-project"),
    ],
)
def test_bytes_that_are_not_the_bundle_do_not_split(data: bytes, project: str) -> None:
    with pytest.raises(EntryError):
        split_bundle(data, project=project, target="prod", source=SOURCE)


def test_an_encryption_block_that_is_not_a_map_is_refused() -> None:
    with pytest.raises(EntryError):
        join_bundle("{}", ["x"], project="p", target="prod", source=None)


PROJECT = load_project((REPO_ROOT / "llmcc.yaml").read_bytes())
FILES = worktree_file_ids(REPO_ROOT, CHECK_ROOTS)
NOW = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)


def context(**change: object) -> KeyContext:
    fields: dict[str, object] = {"mode": "compile", "rev": None, "opaque": False, "recipients": [], "policy_now": NOW}
    return KeyContext(**{**fields, **change})  # type: ignore[arg-type]


def test_the_key_holds_what_decides_the_result() -> None:
    targets = PROJECT.targets()
    keys = cache_keys(PROJECT, FILES, targets, context())
    assert len(set(keys.values())) == len(targets)
    for change in (
        {"mode": "validate"},
        {"rev": "abc"},
        {"opaque": True},
        {"recipients": ["age1someone"]},
    ):
        assert cache_keys(PROJECT, FILES, targets, context(**change))["dev"] != keys["dev"], change
    later = NOW + dt.timedelta(minutes=5)
    moved = cache_keys(PROJECT, FILES, targets, context(policy_now=later))
    # the example has policies: a target reading a SOPS file has secret ages (to the second), waivers go by day
    assert moved["dev"] != keys["dev"]  # dev reads environments/dev.secrets.sops.yaml
    assert cache_keys(PROJECT, FILES, targets, context(policy_now=None)) == {}
    assert cache_keys(PROJECT, {}, targets, context()) == {}


def test_without_sops_files_only_the_day_of_the_policy_time_counts() -> None:
    files = {p: i for p, i in FILES.items() if not p.endswith(".sops.yaml")}
    keys = cache_keys(PROJECT, files, [Target("prod", "globex")], context())
    assert keys == cache_keys(
        PROJECT, files, [Target("prod", "globex")], context(policy_now=NOW + dt.timedelta(hours=1))
    )
    next_day = cache_keys(PROJECT, files, [Target("prod", "globex")], context(policy_now=NOW + dt.timedelta(days=1)))
    assert keys != next_day
    no_policies = {p: i for p, i in files.items() if not p.startswith("policies/")}
    assert cache_keys(PROJECT, no_policies, [Target("dev")], context(policy_now=None)) != {}


def test_the_cache_is_off_when_asked() -> None:
    assert cache_disabled(True, {})
    assert cache_disabled(False, {"LLMCC_NO_CACHE": "1"})
    assert not cache_disabled(False, {"LLMCC_NO_CACHE": "0"})
    assert not cache_disabled(False, {})


def test_a_revision_is_keyed_by_its_commit(example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMCC_NO_CACHE", raising=False)
    root = example_repo.path
    tree = GitRevTree(root, "HEAD")
    repo = Repository(tree, open_secrets=SopsOpener(None))
    repo.policy_now = NOW
    source = tree.source_info()
    plan = plan_cache(root, repo, repo.project.targets(), mode="validate", source=source, identities=None)
    assert plan is not None
    assert plan.recheck(repo.project.targets()) == plan.keys
    assert len(plan.keys) == len(repo.project.targets())
    assert plan_cache(root, repo, [], mode="validate", source=None, identities=None) is None
    assert plan_cache(root, repo, [], mode="validate", source=source, identities=None, no_cache=True) is None


def test_the_key_digest_is_hex(tmp_path: Path) -> None:
    keys = cache_keys(PROJECT, FILES, [Target("dev")], context())
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys.values())
    assert hashlib.sha256(b"").hexdigest() not in keys.values()


def test_a_target_whose_file_is_edited_while_it_compiles_is_not_stored(
    example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys are listed again after the build, for the built targets: an edit meanwhile stores nothing stale."""
    from compiler.compile.build import BuildRequest
    from compiler.incremental.run import build_cached
    from compiler.sources.worktree import WorkTree

    monkeypatch.delenv("LLMCC_NO_CACHE", raising=False)
    root = example_repo.path
    repo = Repository(WorkTree(root), open_secrets=SopsOpener(None))
    repo.policy_now = NOW
    targets = [t for t in repo.project.targets() if t.name in ("dev", "staging")]
    plan = plan_cache(root, repo, targets, mode="validate", source=None, identities=None)
    assert plan is not None
    layer = root / "environments/dev.yaml"

    def editor(request: BuildRequest) -> BuildRequest:  # another process edits dev's layer as the build starts
        layer.write_text(layer.read_text() + "\n# edited meanwhile\n")
        return request

    build_cached(BuildRequest(repo=repo, source=None), targets, plan=plan, complete=editor)
    assert plan.cache.get(plan.keys["dev"]) is None  # built from the old bytes under a key that is gone
    assert plan.cache.get(plan.keys["staging"]) is not None
    assert plan.recheck(targets)["dev"] != plan.keys["dev"]
    assert plan.recheck(targets)["staging"] == plan.keys["staging"]


def test_a_build_of_a_few_targets_runs_without_the_cycle_collector(
    example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector is off while a few targets are built (what they decode from the cache lives to the
    end: collections find nothing), and on again after, whether the build ended well or raised."""
    import gc

    from compiler.compile.build import PARALLEL_MIN_TARGETS, BuildRequest
    from compiler.errors import InputError
    from compiler.incremental.run import _collector_off, build_cached
    from compiler.sources.worktree import WorkTree

    monkeypatch.delenv("LLMCC_NO_CACHE", raising=False)
    root = example_repo.path
    repo = Repository(WorkTree(root), open_secrets=SopsOpener(None))
    repo.policy_now = NOW
    targets = repo.project.targets()[:2]
    assert len(targets) < PARALLEL_MIN_TARGETS
    seen: list[bool] = []

    def complete(request: BuildRequest) -> BuildRequest:
        seen.append(gc.isenabled())
        return request

    assert gc.isenabled()
    plan = plan_cache(root, repo, targets, mode="validate", source=None, identities=None)
    build_cached(BuildRequest(repo=repo, source=None), targets, plan=plan, complete=complete)
    assert seen == [False]
    assert gc.isenabled()

    def broken(request: BuildRequest) -> BuildRequest:
        raise InputError("x")

    (root / "environments/dev.yaml").write_text((root / "environments/dev.yaml").read_text() + "\n# new\n")
    plan = plan_cache(root, repo, targets, mode="validate", source=None, identities=None)
    with pytest.raises(InputError):
        build_cached(BuildRequest(repo=repo, source=None), targets, plan=plan, complete=broken)
    assert gc.isenabled()
    with _collector_off(False):  # many targets: their cycles would add up
        assert gc.isenabled()
    gc.disable()
    try:
        with _collector_off(True):  # off already (someone else's choice): left as it is
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_what_a_few_targets_made_goes_to_the_oldest_generation_and_is_still_collected() -> None:
    """Back on, the collector does not walk what the build made in a young collection (it is moved to
    the oldest generation), but nothing stays frozen: a cycle made meanwhile is collected by a full
    collection, and objects frozen before (kept off forked workers' pages) stay frozen."""
    import gc
    import weakref

    from compiler.incremental.run import _collector_off

    class Node:
        pass

    gc.unfreeze()  # what an earlier build in this process froze (a parallel one, the CLI's exit) is let go
    with _collector_off(True):
        kept = Node()
        cycle = Node()
        cycle.me = cycle  # type: ignore[attr-defined]
        gone = weakref.ref(cycle)
        del cycle
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects(generation=2))
    assert not any(o is kept for o in gc.get_objects(generation=0))
    gc.collect()
    assert gone() is None
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with _collector_off(True):
            Node()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
