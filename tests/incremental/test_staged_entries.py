"""Cache writes without a temp file per write in the parent (issue 14 §2, the base-variable bar).

A build worker stages its targets' entries whole under a pending name
(``ResultCache.stage``, create-only) and the parent commits each with one rename
once the key still holds after the build; a blob is created in place, create-only,
and read back only by its digest. Each shortcut keeps the rule: a corrupt or foreign
entry is ignored and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from pathlib import Path

import pytest

from compiler.compile.build import BuildRequest
from compiler.incremental import store as store_module
from compiler.incremental.parsed import RenderedScalars
from compiler.incremental.plan import plan_cache
from compiler.incremental.run import build_cached
from compiler.incremental.store import CACHE_DIR, PENDING, ResultCache
from tests.core._repos import many_targets_repo, open_repo

KEY = hashlib.sha256(b"one").hexdigest()
OTHER = hashlib.sha256(b"two").hexdigest()
PAYLOAD = {"diagnostics": [], "modules": "0" * 64, "encryption": None}
BODY = json.dumps(PAYLOAD).encode()


@pytest.fixture
def cache(tmp_path: Path) -> ResultCache:
    return ResultCache(tmp_path / CACHE_DIR)


def pending_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(f"*{PENDING}"))


def test_a_staged_entry_is_a_miss_until_committed_and_leaves_no_pending_file(cache: ResultCache) -> None:
    pending = cache.stage(KEY, BODY)
    assert pending is not None
    assert Path(pending).name.startswith(f".{KEY}.")
    assert cache.get(KEY) is None
    cache.commit(KEY, pending)
    assert cache.get(KEY) == PAYLOAD
    assert not pending_files(cache.root)
    again = cache.stage(KEY, json.dumps({**PAYLOAD, "modules": "1" * 64}).encode())
    assert again is not None
    cache.commit(KEY, again)  # over the old entry
    assert cache.get(KEY) == {**PAYLOAD, "modules": "1" * 64}
    assert cache.written == 2


def test_a_dropped_entry_is_gone_and_never_read(cache: ResultCache) -> None:
    pending = cache.stage(KEY, BODY)
    assert pending is not None
    cache.drop(pending)
    assert not pending_files(cache.root)
    assert cache.get(KEY) is None
    cache.drop(str(cache.root / "v1" / "not-an-entry"))  # only a pending name is ever deleted
    cache.put(OTHER, PAYLOAD)
    other = cache._path(OTHER)
    assert other is not None
    cache.drop(str(other))
    assert cache.get(OTHER) == PAYLOAD


def test_a_pending_file_is_committed_only_under_its_own_key(cache: ResultCache) -> None:
    pending = cache.stage(KEY, BODY)
    assert pending is not None
    cache.commit(OTHER, pending)
    cache.commit("not a key", pending)
    assert cache.get(OTHER) is None
    assert Path(pending).exists()
    cache.commit(KEY, pending)
    assert cache.get(KEY) == PAYLOAD


def test_a_file_left_at_a_pending_name_is_replaced_never_committed(
    cache: ResultCache, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A killed run's staged entry (perhaps built from a file edited meanwhile), or a link planted
    # there, at the name the next stage takes (same pid, same number): written anew, not followed.
    path = cache._path(KEY)
    assert path is not None
    assert cache.usable()
    path.parent.mkdir(mode=0o700)
    name = path.parent / f".{KEY}.{os.getpid()}.7{PENDING}"
    stale = cache.stage(OTHER, BODY)  # a well-formed entry for another payload
    assert stale is not None
    os.replace(stale, name)
    monkeypatch.setattr(store_module, "_staged", itertools.count(7))
    pending = cache.stage(KEY, json.dumps({**PAYLOAD, "modules": "2" * 64}).encode())
    assert pending == str(name)
    cache.commit(KEY, pending)
    assert cache.get(KEY) == {**PAYLOAD, "modules": "2" * 64}
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    name = path.parent / f".{KEY}.{os.getpid()}.8{PENDING}"
    name.symlink_to(outside)
    assert cache.stage(KEY, BODY) == str(name)
    assert outside.read_bytes() == b"precious"
    assert not name.is_symlink()


def test_a_torn_blob_is_a_miss_is_deleted_and_the_next_write_makes_it_whole(cache: ResultCache) -> None:
    data = b'{"m":' + b"1" * 10_000 + b"}"
    digest = cache.put_blob(data)
    blob = cache._blob_path(digest)
    assert blob is not None
    assert cache.get_blob(digest) == data
    assert oct(blob.stat().st_mode & 0o777) == "0o600"
    blob.write_bytes(data[:5000])  # a write cut short by a crash, or still under way in another run
    assert cache.get_blob(digest) is None
    assert not blob.exists()
    assert cache.put_blob(data) == digest
    assert cache.get_blob(digest) == data
    written = cache.written
    cache.put_blob(data)  # there already: kept, not written again
    assert cache.written == written


def test_a_symlink_where_a_blob_goes_is_replaced_not_followed(cache: ResultCache, tmp_path: Path) -> None:
    data = b'{"m":2}'
    digest = hashlib.sha256(data).hexdigest()
    blob = cache._blob_path(digest)
    assert blob is not None
    assert cache.usable()
    blob.parent.mkdir(parents=True, mode=0o700)
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    blob.symlink_to(outside)
    assert cache.get_blob(digest) is None
    cache.put_blob(data)
    assert outside.read_bytes() == b"precious"
    assert not blob.is_symlink()
    assert cache.get_blob(digest) == data


def test_a_blob_whose_directory_is_a_file_is_not_written(cache: ResultCache) -> None:
    data = b'{"m":3}'
    digest = hashlib.sha256(data).hexdigest()
    blob = cache._blob_path(digest)
    assert blob is not None
    assert cache.usable()
    blob.parent.parent.mkdir(mode=0o700)
    blob.parent.write_bytes(b"a file where a directory goes")
    assert cache.put_blob(data) == digest
    assert cache.get_blob(digest) is None
    assert cache.trouble is None  # a cache: not storing is safe, and this is no failure to write


@pytest.mark.parametrize("jobs", [1, 2])
def test_entries_a_worker_staged_for_a_target_edited_while_it_compiled_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    monkeypatch.delenv("LLMCC_NO_CACHE", raising=False)
    root = many_targets_repo(tmp_path / "repo", tenants=4)
    repo = open_repo(root)
    targets = repo.project.targets()
    plan = plan_cache(root, repo, targets, mode="compile", source=None, identities=None)
    assert plan is not None
    layer = root / "environments/tenants/t00.yaml"

    def editor(request: BuildRequest) -> BuildRequest:  # another process edits t00's layer as the build starts
        layer.write_text(layer.read_text() + "\n# edited meanwhile\n")
        return request

    out = tmp_path / "out"
    outcomes = build_cached(
        BuildRequest(repo=repo, source=None, out_dir=out), targets, plan=plan, jobs=jobs, complete=editor
    )
    assert [o.target for o in outcomes] == [t.name for t in targets]
    assert all(o.error is None and o.size for o in outcomes)
    for target in targets:
        kept = plan.cache.get(plan.keys[target.name])
        assert (kept is None) == (target.tenant == "t00"), target.name
    assert not pending_files(root / CACHE_DIR)  # staged for t00, then dropped: its key no longer holds


def test_the_parent_looks_for_rendered_scalars_only_after_targets_a_worker_stored_some(tmp_path: Path) -> None:
    store = ResultCache(tmp_path / CACHE_DIR)
    rendered = RenderedScalars(store)
    render = rendered.load()
    parent, rendered._parent = rendered._parent, -1  # as in a forked worker
    render[("{{ a }}", ("fa",))] = "one"
    rendered.worker_done(render, "dev")
    rendered.worker_done(render, "staging")  # nothing new since dev: nothing stored
    assert rendered.stored == {"dev"}
    rendered._parent = parent
    rendered.save({}, ["dev"])  # the parent's own renders: none
    assert RenderedScalars(store).load() == {("{{ a }}", ("fa",)): "one"}


def test_eviction_deletes_a_staged_entry_a_killed_run_left_not_a_fresh_one(cache: ResultCache) -> None:
    left = cache.stage(KEY, BODY)
    fresh = cache.stage(OTHER, BODY)
    assert left is not None
    assert fresh is not None
    day_old = time.time() - store_module.PENDING_MAX_AGE - 60
    os.utime(left, (day_old, day_old))
    cache.put(KEY, PAYLOAD)  # a run that wrote: eviction runs
    assert cache.evict() == 0  # far below the bound: nothing of the cache deleted
    assert not Path(left).exists()
    assert Path(fresh).exists()  # perhaps another run's, about to be committed
    assert cache.get(KEY) == PAYLOAD
