"""The result cache on disk: a damaged, foreign or symlinked entry is a miss, never trusted."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from compiler.incremental.store import (
    CACHE_DIR,
    DEFAULT_MAX_BYTES,
    USAGE_KEY,
    USAGE_SCAN_RUNS,
    ResultCache,
    max_bytes_from,
)

KEY = hashlib.sha256(b"one").hexdigest()
OTHER = hashlib.sha256(b"two").hexdigest()
PAYLOAD = {"diagnostics": [], "modules": '{"m":{"a":1}}', "encryption": None}


def entry(cache: ResultCache, key: str) -> Path:
    path = cache._path(key)
    assert path is not None
    return path


@pytest.fixture
def cache(tmp_path: Path) -> ResultCache:
    c = ResultCache(tmp_path / CACHE_DIR)
    c.put(KEY, PAYLOAD)
    return c


def test_an_entry_reads_back_and_git_never_takes_the_cache(cache: ResultCache) -> None:
    assert cache.get(KEY) == PAYLOAD
    assert cache.get(OTHER) is None
    assert (cache.hits, cache.misses, cache.written) == (1, 1, 1)
    assert (cache.root / ".gitignore").read_text().splitlines()[-1] == "*"
    assert oct(entry(cache, KEY).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-5], id="truncated"),
        pytest.param(lambda b: b[:-3] + b"2}}", id="payload-changed"),
        pytest.param(lambda b: b.split(b"\n", 1)[1], id="no-header"),
        pytest.param(lambda b: b"\xff\xfe" + b, id="not-utf8"),
        pytest.param(lambda b: b"[]\n{}", id="header-not-an-object"),
        pytest.param(lambda b: b"", id="empty"),
    ],
)
def test_a_corrupt_entry_is_a_miss_and_is_replaced(cache: ResultCache, damage: object) -> None:
    path = entry(cache, KEY)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert cache.get(KEY) is None
    cache.put(KEY, PAYLOAD)
    assert cache.get(KEY) == PAYLOAD


def _rehash(path: Path, **header: object) -> None:
    """Rewrite an entry's header with its digest still right: only the named fields differ."""
    head, _, body = path.read_bytes().partition(b"\n")
    fields = {**json.loads(head), **header}
    path.write_bytes(json.dumps(fields).encode() + b"\n" + body)


@pytest.mark.parametrize(
    "header",
    [{"compiler": "0.0.1"}, {"format": "llmcc-cache/0"}, {"key": OTHER}],
    ids=["other-tool-version", "other-format", "other-key"],
)
def test_a_foreign_entry_is_a_miss(cache: ResultCache, header: dict[str, object]) -> None:
    _rehash(entry(cache, KEY), **header)
    assert cache.get(KEY) is None


def test_an_entry_copied_from_another_repository_is_a_miss(tmp_path: Path, cache: ResultCache) -> None:
    (tmp_path / "other").mkdir()
    here = ResultCache(tmp_path / "other" / CACHE_DIR)
    here.put(OTHER, PAYLOAD)
    target = entry(here, OTHER)
    target.write_bytes(entry(cache, KEY).read_bytes())  # another repository's result for its own key
    assert here.get(OTHER) is None


@pytest.mark.parametrize(
    "body",
    [b"[1]", b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"],  # deeper than json reads: RecursionError
    ids=["list", "too-deep"],
)
def test_a_payload_that_is_not_an_object_is_a_miss(cache: ResultCache, body: bytes) -> None:
    # Attacker: a too-deep body with its digest recomputed was exit 70 on every later run.
    path = entry(cache, KEY)
    header = {"format": "llmcc-cache/1", "compiler": cache.compiler, "key": KEY, "size": len(body)}
    header["sha256"] = hashlib.sha256(body).hexdigest()
    path.write_bytes(json.dumps(header).encode() + b"\n" + body)
    assert cache.get(KEY) is None
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000 + b"\n" + body)  # the header too deep
    assert cache.get(KEY) is None


def test_a_symlinked_entry_is_a_miss(tmp_path: Path, cache: ResultCache) -> None:
    path = entry(cache, KEY)
    outside = tmp_path / "planted.json"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    assert cache.get(KEY) is None
    cache.put(KEY, PAYLOAD)  # replaced by a regular file, the planted one untouched
    assert not path.is_symlink()
    assert cache.get(KEY) == PAYLOAD


def test_a_symlinked_directory_turns_the_cache_off(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / ".llmcc").mkdir()
    (tmp_path / CACHE_DIR).symlink_to(real)
    c = ResultCache(tmp_path / CACHE_DIR)
    c.put(KEY, PAYLOAD)
    assert c.get(KEY) is None
    assert list(real.iterdir()) == []


def test_a_symlinked_shard_directory_is_a_miss(tmp_path: Path, cache: ResultCache) -> None:
    shard = entry(cache, KEY).parent
    moved = tmp_path / "moved"
    shard.rename(moved)
    shard.symlink_to(moved)
    assert cache.get(KEY) is None
    cache.put(KEY, PAYLOAD)
    assert cache.written == 1


def test_a_file_where_the_cache_belongs_turns_it_off(tmp_path: Path) -> None:
    (tmp_path / ".llmcc").write_text("not a directory")
    c = ResultCache(tmp_path / CACHE_DIR)
    c.put(KEY, PAYLOAD)
    assert c.get(KEY) is None
    assert ResultCache(tmp_path / CACHE_DIR / "x" / "y").usable() is False


def test_a_malformed_key_is_never_a_path(cache: ResultCache) -> None:
    cache.put("../../etc", PAYLOAD)
    assert cache.get("../../etc") is None
    assert cache.get(KEY.upper()) is None


def test_eviction_removes_the_least_recently_used(tmp_path: Path) -> None:
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(6)]
    big = {"modules": "x" * 1000}
    c = ResultCache(tmp_path / CACHE_DIR, max_bytes=5000)
    for n, key in enumerate(keys):
        c.put(key, big)
        os.utime(entry(c, key), (1000 + n, 1000 + n))
    os.utime(entry(c, keys[0]), (2000, 2000))  # used last
    assert c.evict() == 3
    assert [c.get(k) is not None for k in keys] == [True, False, False, False, True, True]
    assert ResultCache(tmp_path / CACHE_DIR, max_bytes=5000).evict() == 0  # wrote nothing: no scan


def test_the_size_bound_comes_from_the_environment() -> None:
    assert max_bytes_from({"LLMCC_CACHE_MAX_BYTES": "1024"}) == 1024
    assert max_bytes_from({"LLMCC_CACHE_MAX_BYTES": "lots"}) == DEFAULT_MAX_BYTES
    assert max_bytes_from({}) == DEFAULT_MAX_BYTES


def test_a_write_that_need_not_be_durable_is_still_atomic(tmp_path: Path) -> None:
    from compiler import fileops

    target = tmp_path / "entry"
    fileops.write_atomic(target, b"old", durable=False)
    fileops.write_atomic(target, b"new", durable=False, edit=lambda p: p.write_bytes(p.read_bytes() + b"!"))
    assert target.read_bytes() == b"new!"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]  # no temp file left


def test_eviction_never_deletes_through_a_symlinked_blobs_directory(tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere/ab"
    victim.mkdir(parents=True)
    (victim / "precious").write_bytes(b"x" * 1000)
    c = ResultCache(tmp_path / CACHE_DIR, max_bytes=10)
    assert c.usable()
    (c.root / "v1/blobs").symlink_to(tmp_path / "elsewhere")
    assert c.get_blob(hashlib.sha256(b"x" * 1000).hexdigest()) is None
    c.put(KEY, PAYLOAD)
    assert c.evict() == 1  # only the entry
    assert (victim / "precious").read_bytes() == b"x" * 1000


@pytest.mark.parametrize("where", [CACHE_DIR, f"{CACHE_DIR}/v1"])
def test_a_cache_directory_others_can_write_turns_it_off(tmp_path: Path, cache: ResultCache, where: str) -> None:
    # another local user could plant an entry there: its key and digest are computed from public inputs
    (tmp_path / where).chmod(0o777)
    again = ResultCache(tmp_path / CACHE_DIR)
    assert again.get(KEY) is None
    assert again.refused == f"{tmp_path / where}: writable by others (mode 0777): the result cache is off" + (
        " (delete the directory to start afresh)"
    )
    again.put(OTHER, PAYLOAD)
    assert not entry(again, OTHER).exists()


def test_an_entry_in_a_shard_directory_others_can_write_is_a_miss(cache: ResultCache) -> None:
    entry(cache, KEY).parent.chmod(0o770)
    assert cache.get(KEY) is None
    entry(cache, KEY).parent.chmod(0o700)
    assert cache.get(KEY) == PAYLOAD


def test_a_cache_another_user_owns_is_off(tmp_path: Path, cache: ResultCache, monkeypatch: pytest.MonkeyPatch) -> None:
    uid = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: uid + 1)  # as another user sees this user's cache
    other = ResultCache(tmp_path / CACHE_DIR)
    assert other.get(KEY) is None
    assert other.refused is not None
    assert f"owned by another user (uid {uid})" in other.refused
    monkeypatch.undo()
    assert ResultCache(tmp_path / CACHE_DIR).get(KEY) == PAYLOAD


@pytest.mark.parametrize("shard", ["v1/ff", "v1/blobs/ff"])
def test_eviction_never_deletes_through_a_symlinked_or_shared_shard_directory(tmp_path: Path, shard: str) -> None:
    victim = tmp_path / "elsewhere"
    victim.mkdir()
    (victim / "precious").write_bytes(b"x" * 1000)
    c = ResultCache(tmp_path / CACHE_DIR, max_bytes=10)
    c.put(KEY, PAYLOAD)
    c.put_blob(b"z" * 100)
    (c.root / shard).symlink_to(victim)
    shared = (c.root / shard).with_name("fe")
    shared.mkdir()
    (shared / "theirs").write_bytes(b"y" * 1000)
    shared.chmod(0o777)  # a directory others can write: not scanned either
    assert c.evict() == 2  # the entry and the blob
    assert (victim / "precious").read_bytes() == b"x" * 1000
    assert (shared / "theirs").exists()


def _tallied_cache(tmp_path: Path, max_bytes: int = 1 << 20) -> tuple[ResultCache, Path]:
    """A cache whose first run scanned and wrote the tally, and a file planted afterwards that only a
    scan can see (so whether a later run scanned shows in whether it is deleted)."""
    first = ResultCache(tmp_path / CACHE_DIR, max_bytes=max_bytes)
    first.put(KEY, PAYLOAD)
    assert first.evict() == 0  # scanned: nothing to delete; the tally is written
    tally = first.get(USAGE_KEY)
    assert tally is not None
    assert tally["runs"] == 0
    assert isinstance(tally["bytes"], int)
    assert tally["bytes"] >= entry(first, KEY).stat().st_size
    planted = entry(first, hashlib.sha256(b"planted").hexdigest())
    planted.parent.mkdir(mode=0o700, exist_ok=True)
    planted.write_bytes(b"x" * (max_bytes * 2))  # unseen by the tally, oldest of all
    os.utime(planted, (1000, 1000))
    return first, planted


def _run_that_writes(tmp_path: Path, max_bytes: int = 1 << 20, *, forked: bool = False) -> int:
    c = ResultCache(tmp_path / CACHE_DIR, max_bytes=max_bytes)
    c.forked = forked
    c.put(OTHER, PAYLOAD)
    return c.evict()


def test_a_run_within_the_tally_does_not_scan(tmp_path: Path) -> None:
    _, planted = _tallied_cache(tmp_path)
    assert _run_that_writes(tmp_path) == 0
    assert planted.exists()  # not scanned: the tally (plus this run's bytes) is under the bound
    after = ResultCache(tmp_path / CACHE_DIR).get(USAGE_KEY)
    assert after is not None
    assert after["runs"] == 1


@pytest.mark.parametrize(
    "spoil",
    [
        "absent",
        "damaged",  # its digest wrong
        "foreign",  # another compiler version's
        "shape",  # a payload of another shape, its digest made right
        "negative",
        "stale",  # USAGE_SCAN_RUNS runs have trusted it
    ],
)
def test_a_tally_in_doubt_means_a_scan(tmp_path: Path, spoil: str) -> None:
    first, planted = _tallied_cache(tmp_path)
    path = entry(first, USAGE_KEY)
    if spoil == "absent":
        path.unlink()
    elif spoil == "damaged":
        path.write_bytes(path.read_bytes().replace(b'"runs":0', b'"runs":1'))
    elif spoil == "foreign":
        ResultCache(tmp_path / CACHE_DIR, compiler="0.0.1").put(USAGE_KEY, {"bytes": 0, "runs": 0})
    else:
        payload = {
            "shape": {"bytes": 0, "runs": 0, "more": 1},
            "negative": {"bytes": -(1 << 30), "runs": 0},
            "stale": {"bytes": 0, "runs": USAGE_SCAN_RUNS - 1},
        }[spoil]
        first.put(USAGE_KEY, payload)
    assert _run_that_writes(tmp_path) >= 1
    assert not planted.exists()  # the scan found it, the least recently used
    after = ResultCache(tmp_path / CACHE_DIR).get(USAGE_KEY)
    assert after is not None
    assert after["runs"] == 0


def test_a_tally_over_the_bound_or_a_forked_build_means_a_scan(tmp_path: Path) -> None:
    _, planted = _tallied_cache(tmp_path)
    assert _run_that_writes(tmp_path, forked=True) >= 1  # workers' writes are not counted: scanned
    assert not planted.exists()
    (tmp_path / "again").mkdir()
    _, planted = _tallied_cache(tmp_path / "again", max_bytes=400)
    assert _run_that_writes(tmp_path / "again", max_bytes=400) >= 1  # the tally plus this run's bytes pass it
    assert not planted.exists()
