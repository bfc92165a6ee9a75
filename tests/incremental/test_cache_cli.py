"""``compile`` and ``validate`` through the cache: hits are read, ``--no-cache`` skips it, no plaintext in it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.incremental.filestat import fs_now
from compiler.incremental.store import CACHE_DIR
from tests.conftest import CANARY_BYTES, GitRepo
from tests.core._repos import sops_encrypt
from tests.secrets._secrets_support import new_canary


def entries(root: Path) -> list[Path]:
    """The targets' entries (not the records of output directories, not the blobs)."""
    found = sorted((root / CACHE_DIR).rglob("*.json"))
    return [p for p in found if b'"diagnostics"' in p.read_bytes().partition(b"\n")[2]]


def run(root: Path, *argv: str) -> int:
    return main(["-q", "-C", str(root), *argv])


def plant_warning(path: Path, message: str) -> None:
    """Add a warning to a cached entry, its digest made right: only a cache hit can print it."""
    _, _, body = path.read_bytes().partition(b"\n")
    payload = json.loads(body)
    payload["diagnostics"].append(
        {
            "message": message,
            "severity": "warning",
            "origin": None,
            "module": None,
            "path": None,
            "target": None,
            "rule": None,
            "notes": [],
            "value_origin": None,
        }
    )
    new = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    head = json.loads(path.read_bytes().partition(b"\n")[0])
    head.update(sha256=hashlib.sha256(new).hexdigest(), size=len(new))
    path.write_bytes(json.dumps(head).encode() + b"\n" + new)


def test_validate_reads_its_entries_unless_told_not_to(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = example_repo.path
    assert run(root, "validate", "--target", "dev") == 0
    [entry] = entries(root)
    plant_warning(entry, "planted in the cache")
    capsys.readouterr()
    assert main(["-C", str(root), "validate", "--target", "dev"]) == 0
    assert "warning: planted in the cache" in capsys.readouterr().err
    assert main(["-C", str(root), "validate", "--target", "dev", "--no-cache"]) == 0
    assert "planted" not in capsys.readouterr().err
    monkeypatch.setenv("LLMCC_NO_CACHE", "1")
    assert main(["-C", str(root), "validate", "--target", "dev"]) == 0
    assert "planted" not in capsys.readouterr().err
    monkeypatch.setenv("LLMCC_NO_CACHE", "0")
    assert main(["-C", str(root), "validate", "--target", "dev"]) == 0
    assert "planted" in capsys.readouterr().err


def test_an_edit_misses_and_a_revert_hits(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = example_repo.path
    dev = root / "environments/dev.yaml"
    before = dev.read_text()
    assert run(root, "validate", "--target", "dev") == 0
    dev.write_text(before.replace("  temperature: 0.9\n", "  temperature: 7\n"))
    assert run(root, "validate", "--target", "dev") == 1
    assert "7 is greater than the maximum" in capsys.readouterr().err
    dev.write_text(before)
    assert run(root, "validate", "--target", "dev") == 0
    assert len(entries(root)) == 2


def test_compile_from_the_cache_is_byte_identical(
    example_repo: GitRepo, demo_identity: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    assert run(root, "compile", "-o", "fresh", "--no-cache") == 0
    assert entries(root) == []
    assert run(root, "compile", "-o", "first") == 0
    assert run(root, "compile", "-o", "second") == 0  # every target a hit
    # a new commit: the entries are reused, each bundle names the new commit
    (root / "README.md").write_text("notes\n")
    example_repo.commit("docs only")
    assert run(root, "compile", "-o", "third") == 0
    assert run(root, "compile", "-o", "clean", "--no-cache") == 0
    for name in sorted(p.name for p in (root / "fresh").iterdir()):
        first = (root / "first" / name).read_bytes()
        assert first == (root / "fresh" / name).read_bytes() == (root / "second" / name).read_bytes()
        assert (root / "third" / name).read_bytes() == (root / "clean" / name).read_bytes() != first
    assert len(entries(root)) == 6


def test_a_corrupt_entry_is_rebuilt(example_repo: GitRepo, demo_identity: Path) -> None:
    root = example_repo.path
    assert run(root, "compile", "-o", "one") == 0
    for entry in entries(root):
        entry.write_bytes(entry.read_bytes()[:-20])
    assert run(root, "compile", "-o", "two") == 0
    for bundle in (root / "one").iterdir():
        assert bundle.read_bytes() == (root / "two" / bundle.name).read_bytes()
    assert all(e.read_bytes().endswith(b"}") for e in entries(root))
    assert run(root, "compile", "-o", "three") == 0


def test_identity_presence_is_part_of_the_key(example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    root = example_repo.path
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    monkeypatch.setenv("HOME", str(root / "nohome"))
    assert run(root, "validate", "--target", "prod") == 0
    assert run(root, "validate", "--target", "prod", "--identity", str(root / "keys/demo.agekey")) == 0
    assert len(entries(root)) == 2


def test_the_hook_validates_through_the_cache(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = example_repo.path
    assert run(root, "hook", "validate", "environments/dev.yaml") == 0
    assert len(entries(root)) == 1
    plant_warning(entries(root)[0], "planted in the cache")
    assert run(root, "hook", "validate", "environments/dev.yaml", "--no-cache") == 0
    assert "planted" not in capsys.readouterr().err
    assert run(root, "hook", "validate", "environments/dev.yaml") == 0
    assert "planted" in capsys.readouterr().err


def test_no_plaintext_secret_reaches_the_cache(example_repo: GitRepo, demo_identity: Path) -> None:
    root = example_repo.path
    secret = new_canary()
    elsewhere = root.parent / "no-sops-config"
    elsewhere.mkdir()
    sops = sops_encrypt(f"modules:\n  data-pipeline:\n    db:\n      password: {secret}\n", cwd=elsewhere)
    (root / "environments/dev.secrets.sops.yaml").write_text(sops)
    assert run(root, "compile", "--target", "dev") == 0
    assert run(root, "validate", "--target", "dev") == 0
    assert len(entries(root)) == 2
    every = b"".join(p.read_bytes() for p in (root / CACHE_DIR).rglob("*") if p.is_file())
    assert CANARY_BYTES.search(every) is None
    assert secret.encode() not in every
    assert b"ENC[" in every  # the sealed value is there
    shutil.rmtree(root / CACHE_DIR)  # safe to delete
    assert run(root, "compile", "--target", "dev") == 0


def test_an_unchanged_bundle_is_kept_and_an_edited_one_rewritten(example_repo: GitRepo, demo_identity: Path) -> None:
    root = example_repo.path
    assert run(root, "compile") == 0
    dist = root / "dist"
    before = {p.name: (p.stat().st_ino, p.read_bytes()) for p in dist.iterdir()}
    (dist / "dev.bundle.json").write_bytes(b"{}")  # edited by hand: a new mtime
    assert run(root, "compile") == 0
    after = {p.name: (p.stat().st_ino, p.read_bytes()) for p in dist.iterdir()}
    assert {n: b for n, (_, b) in after.items()} == {n: b for n, (_, b) in before.items()}
    assert after["prod.bundle.json"][0] == before["prod.bundle.json"][0]  # the same file, not written again
    for blob in (root / CACHE_DIR).rglob("blobs/*/*"):
        blob.write_bytes(b"damaged")  # entries whose modules are gone: built again
    (dist / "dev.bundle.json").unlink()
    assert run(root, "compile") == 0
    assert (dist / "dev.bundle.json").read_bytes() == before["dev.bundle.json"][1]
    assert run(root, "compile", "--no-cache", "-o", "clean") == 0
    assert (root / "clean" / "dev.bundle.json").read_bytes() == before["dev.bundle.json"][1]


def rewrite(path: Path, change: dict[str, object]) -> None:
    """Change an entry's payload and make its digest right again: it passes the checks, its content does not."""
    head, _, body = path.read_bytes().partition(b"\n")
    payload = {**json.loads(body), **change}
    new = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    header = json.loads(head)
    header.update(sha256=hashlib.sha256(new).hexdigest(), size=len(new))
    path.write_bytes(json.dumps(header).encode() + b"\n" + new)


@pytest.mark.parametrize(
    "change",
    [{"diagnostics": "none"}, {"diagnostics": [{"message": 1}]}, {"modules": 5}],
    ids=["diagnostics-not-a-list", "bad-diagnostic", "modules-not-a-digest"],
)
@pytest.mark.parametrize("second", ["two", "one"], ids=["other-dir", "same-dir"])
def test_an_entry_of_the_wrong_shape_is_rebuilt(
    example_repo: GitRepo, demo_identity: Path, change: dict[str, object], second: str
) -> None:
    root = example_repo.path
    for _ in range(2):  # the second run leaves the bundle in place
        assert run(root, "compile", "-t", "dev", "-o", "one") == 0
    good = (root / "one/dev.bundle.json").read_bytes()
    [entry] = entries(root)
    rewrite(entry, change)
    assert run(root, "compile", "-t", "dev", "-o", second) == 0
    assert (root / second / "dev.bundle.json").read_bytes() == good


@pytest.mark.parametrize(
    "change",
    [
        {"bundles": "x"},
        {"bundles": {"dev": ["k", 1]}},
        {"bundles": {"dev": ["k", 1, 2, 3]}},
        {"bundles": {"dev": [1, 1, 2, 3, 4, 5, "d", 6]}},
        {"bundles": {"dev": ["k", 1, 2, 3, 4, 5, "d", True]}},
        {"source": "other"},
    ],
)
def test_a_record_of_the_wrong_shape_keeps_nothing(
    example_repo: GitRepo, demo_identity: Path, change: dict[str, object]
) -> None:
    root = example_repo.path
    for _ in range(2):
        assert run(root, "compile", "-t", "dev") == 0
    bundle = root / "dist/dev.bundle.json"
    before, st = bundle.read_bytes(), bundle.stat()
    bundle.write_bytes(before.replace(b'"apiVersion"', b'"apiVersioN"', 1))
    os.utime(bundle, ns=(st.st_atime_ns, st.st_mtime_ns))
    rewrite(record_of(root), change)
    assert run(root, "compile", "-t", "dev") == 0
    assert bundle.read_bytes() == before


@pytest.mark.parametrize("link", ["environments/tenants", "schemas"])
def test_an_edit_read_through_a_symlinked_directory_misses(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], link: str
) -> None:
    root = example_repo.path
    shutil.rmtree(root / "policies")  # no policy time in the key: on a dirty tree it would change every second
    (root / link).rename(root / "real")
    (root / link).symlink_to(Path("../real") if "/" in link else Path("real"))
    assert run(root, "validate") == 0
    edit = next((root / "real").glob("inference-engine.schema.json" if link == "schemas" else "acme.yaml"))
    text = edit.read_text()
    edit.write_text(text.replace('"maximum": 2', '"maximum": 0.1') if link == "schemas" else text + "\nbogus: 1\n")
    assert edit.read_text() != text
    capsys.readouterr()
    assert run(root, "validate") == run(root, "validate", "--no-cache") != 0


def test_a_cache_others_can_write_is_refused_with_a_warning(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    assert run(root, "validate", "--target", "dev") == 0
    plant_warning(entries(root)[0], "planted in the cache")
    (root / CACHE_DIR).chmod(0o777)
    capsys.readouterr()
    assert run(root, "validate", "--target", "dev") == 0
    err = capsys.readouterr().err
    assert "planted" not in err
    assert f"llmcc: warning: {root / CACHE_DIR}: writable by others (mode 0777): the result cache is off" in err


def test_a_bundle_edited_in_place_with_its_time_put_back_is_rewritten(
    example_repo: GitRepo, demo_identity: Path
) -> None:
    root = example_repo.path
    for _ in range(3):  # the record is past its racy tick: the stat alone would be trusted
        assert run(root, "compile", "-t", "dev") == 0
    bundle = root / "dist/dev.bundle.json"
    good, st = bundle.read_bytes(), bundle.stat()
    with bundle.open("r+b") as f:  # the same inode and size
        f.write(good.replace(b'"apiVersion"', b'"apiVersioN"', 1))
    os.utime(bundle, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert bundle.read_bytes() != good
    assert run(root, "compile", "-t", "dev") == 0
    assert bundle.read_bytes() == good
    assert run(root, "compile", "-t", "dev") == 0  # the rewritten one is kept
    assert bundle.read_bytes() == good


def settle(directory: Path) -> None:
    """Wait until the file system's clock is past every change time in ``directory`` (nothing there racy)."""
    newest = max(p.lstat().st_ctime_ns for p in directory.iterdir())
    while fs_now(directory) <= newest:
        time.sleep(0.001)


def record_of(root: Path) -> Path:
    [record] = [p for p in (root / CACHE_DIR).rglob("*.json") if b'"bundles"' in p.read_bytes()]
    return record


def test_an_unchanged_bundle_is_left_in_place(example_repo: GitRepo, demo_identity: Path) -> None:
    root = example_repo.path
    assert run(root, "compile") == 0
    settle(root / "dist")
    assert run(root, "compile") == 0  # read once (written in the tick of the record), then trusted by its stat
    bundle = root / "dist/dev.bundle.json"
    st = bundle.stat()
    recorded = record_of(root).read_bytes()
    assert run(root, "compile") == 0
    after = bundle.stat()
    # not removed, linked or written: the change time (which no one can set back) is the same
    assert (after.st_ino, after.st_ctime_ns, after.st_mtime_ns) == (st.st_ino, st.st_ctime_ns, st.st_mtime_ns)
    assert record_of(root).read_bytes() == recorded  # nothing new to remember: the record is not rewritten
    assert not list((root / "dist").glob(".llmcc-*"))  # no staging directory or time stamp file left


def test_a_bundle_changed_within_the_clock_tick_of_its_record_is_read(
    example_repo: GitRepo, demo_identity: Path
) -> None:
    """Git's racy-timestamp rule: the stat matches, but the file is not older than the record's stamp."""
    root = example_repo.path
    for _ in range(2):
        assert run(root, "compile", "-t", "dev") == 0
    bundle = root / "dist/dev.bundle.json"
    good = bundle.read_bytes()
    with bundle.open("r+b") as f:  # the same inode and size
        f.write(good.replace(b'"apiVersion"', b'"apiVersioN"', 1))
    st = bundle.stat()
    # what a record taken in the same clock tick as this edit holds: this stat, and a stamp no newer than it
    record = record_of(root)
    payload = json.loads(record.read_bytes().partition(b"\n")[2])
    key, *_, digest, _ = payload["bundles"]["dev"]
    stats = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    rewrite(record, {"bundles": {"dev": [key, *stats, digest, st.st_ctime_ns]}})
    assert run(root, "compile", "-t", "dev") == 0
    assert bundle.read_bytes() == good
    # the same record with a stamp past the file's times is trusted: the stamp is what decided
    bundle.write_bytes(good.replace(b'"apiVersion"', b'"apiVersioN"', 1))
    st = bundle.stat()
    stats = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    rewrite(record_of(root), {"bundles": {"dev": [key, *stats, digest, st.st_ctime_ns + 1]}})
    assert run(root, "compile", "-t", "dev") == 0
    assert bundle.read_bytes() != good


def test_a_record_of_another_directory_or_copy_is_not_trusted(example_repo: GitRepo, demo_identity: Path) -> None:
    root = example_repo.path
    for _ in range(3):
        assert run(root, "compile") == 0
    good = (root / "dist/dev.bundle.json").read_bytes()
    copy = root.parent / "copy"
    shutil.copytree(root, copy, symlinks=True)  # the cache too; times kept (copy2), inodes and change times not
    bundle = copy / "dist/dev.bundle.json"
    st = bundle.stat()
    bundle.write_bytes(good.replace(b'"apiVersion"', b'"apiVersioN"', 1))
    os.utime(bundle, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run(copy, "compile") == 0
    assert bundle.read_bytes() == good
    # the same directory restored from a copy (a CI cache restore): new inodes, new change times
    shutil.rmtree(root / "dist")
    shutil.copytree(copy / "dist", root / "dist")
    moved = root / "dist/dev.bundle.json"
    st = moved.stat()
    moved.write_bytes(good.replace(b'"apiVersion"', b'"apiVersioN"', 1))
    os.utime(moved, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run(root, "compile") == 0
    assert moved.read_bytes() == good


def test_an_entry_that_now_holds_an_error_takes_the_bundle_away(
    example_repo: GitRepo, demo_identity: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    for _ in range(3):
        assert run(root, "compile", "-t", "dev") == 0
    [entry] = entries(root)
    error = {
        "message": "planted error",
        "severity": "error",
        "origin": None,
        "module": None,
        "path": None,
        "target": "dev",
        "rule": None,
        "notes": [],
        "value_origin": None,
    }
    rewrite(entry, {"diagnostics": [error]})
    capsys.readouterr()
    assert run(root, "compile", "-t", "dev") == 1
    assert "planted error" in capsys.readouterr().err
    assert not (root / "dist/dev.bundle.json").exists()  # a failed target keeps no bundle, not even an equal one


def test_a_record_whose_entry_is_gone_keeps_nothing(example_repo: GitRepo, demo_identity: Path) -> None:
    root = example_repo.path
    for _ in range(3):
        assert run(root, "compile", "-t", "dev") == 0
    bundle = root / "dist/dev.bundle.json"
    good, st = bundle.read_bytes(), bundle.stat()
    bundle.write_bytes(good.replace(b'"apiVersion"', b'"apiVersioN"', 1))
    os.utime(bundle, ns=(st.st_atime_ns, st.st_mtime_ns))
    rewrite(record_of(root), {})  # the record as it was: the file's change time alone tells
    [entry] = entries(root)
    entry.unlink()
    assert run(root, "compile", "-t", "dev") == 0
    assert bundle.read_bytes() == good


@pytest.mark.parametrize("command", ["compile", "validate"])
def test_a_run_leaves_the_cache_within_its_bound(
    example_repo: GitRepo, demo_identity: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """The eviction comes after the command's last write to the cache (the record of ``dist/``, the
    secrets guard's findings), and a run that trusts the tally still counts those."""
    root = example_repo.path
    assert run(root, command, "--no-cache") == 0
    assert run(root, command) == 0
    top = root / CACHE_DIR / "v1"
    full = sum(p.stat().st_size for p in top.rglob("*") if p.is_file())
    bound = full * 2 // 3  # what one run writes does not fit: each run must evict
    monkeypatch.setenv("LLMCC_CACHE_MAX_BYTES", str(bound))
    (root / "environments/dev.yaml").write_text((root / "environments/dev.yaml").read_text() + "\n# a change\n")
    for _ in range(3):
        assert run(root, command) == 0
        assert sum(p.stat().st_size for p in top.rglob("*") if p.is_file()) <= bound
