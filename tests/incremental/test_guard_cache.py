"""The secrets guard's findings per file in the result cache: a run after a one-file change scans that file."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.incremental.guard import GuardFindings, context_key
from compiler.incremental.store import CACHE_DIR, ResultCache
from compiler.plaintext import PLAINTEXT_FILE_MESSAGE, GuardScan, scan_committable
from tests.conftest import init_repo
from tests.core._repos import mini_repo, open_repo


def credential() -> str:
    """A fresh Anthropic API key (a credential format the guard knows); random, so a test can look for it."""
    return "sk-ant-api03-" + secrets.token_hex(24)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "repo")
    mini_repo(repo.path, {"notes/a.txt": "nothing here\n", "notes/b.txt": f"key: {credential()}\n"})
    repo.git("add", "-A")
    return repo.path


def committable(root: Path) -> list[str]:
    listed = open_repo(root).tree.committable_files()
    assert listed is not None
    return listed


def scan(root: Path, cache: ResultCache | None) -> GuardScan:
    return scan_committable(open_repo(root), committable(root), cache=cache)


def shown(s: GuardScan) -> list[str]:
    return [d.format() for d in s.diagnostics]


def test_a_second_scan_reads_every_finding_from_the_cache_and_a_changed_file_is_the_only_one_scanned(
    root: Path,
) -> None:
    cache = ResultCache(root / CACHE_DIR)
    fresh = scan(root, None)
    first = scan(root, cache)
    assert first.scanned == len(committable(root)) > 3
    assert shown(first) == shown(fresh)
    assert [d.split(": ", 1)[1] for d in shown(fresh)] == ["Anthropic API key: " + _credential_message()]
    second = scan(root, cache)
    assert second.scanned == 0
    assert shown(second) == shown(fresh)
    # one file changed: that file alone is scanned; its finding goes, the other stays
    (root / "notes/a.txt").write_text(f"token: {credential()}\n")
    third = scan(root, cache)
    assert third.scanned == 1
    assert shown(third) == shown(scan(root, None))
    assert [d.split(":")[0] for d in shown(third)] == ["notes/a.txt", "notes/b.txt"]


def _credential_message() -> str:
    from compiler.plaintext import CREDENTIAL_MESSAGE

    return CREDENTIAL_MESSAGE


def test_the_cache_holds_no_secret_value(root: Path) -> None:
    token = (root / "notes/b.txt").read_text().split()[1].encode()
    scan(root, ResultCache(root / CACHE_DIR))
    files = [p for p in (root / CACHE_DIR).rglob("*") if p.is_file()]
    assert files
    assert not any(token in p.read_bytes() or token[-20:] in p.read_bytes() for p in files)


def test_the_allow_list_applies_to_cached_findings(root: Path) -> None:
    cache = ResultCache(root / CACHE_DIR)
    scan(root, cache)
    digest = hashlib.sha256((root / "notes/b.txt").read_bytes()).hexdigest()
    manifest = root / "llmcc.yaml"
    allow = f"secrets_guard:\n  allow:\n    - {{path: notes/b.txt, sha256: {digest}, reason: a test fixture}}\n"
    manifest.write_text(manifest.read_text() + allow)
    again = scan(root, cache)
    assert again.scanned == 1  # llmcc.yaml, whose bytes changed; notes/b.txt's finding comes from the cache
    assert shown(again) == []
    assert again.allowed == ["notes/b.txt: a test fixture"]


def test_a_schema_change_or_a_damaged_entry_scans_every_file_again(root: Path) -> None:
    cache = ResultCache(root / CACHE_DIR)
    expected = shown(scan(root, cache))
    n = len(committable(root))
    schema = root / "schemas/engine.schema.json"
    schema.write_text(json.dumps(json.loads(schema.read_text()), indent=4))
    assert scan(root, cache).scanned == n
    for entry in (root / CACHE_DIR).rglob("*.json"):
        head, _, body = entry.read_bytes().partition(b"\n")
        entry.write_bytes(head + b"\n" + body.replace(b"Anthropic", b"Anthropix"))  # digest no longer matches
    damaged = scan(root, cache)
    assert damaged.scanned == n
    assert shown(damaged) == expected


def test_an_index_of_another_shape_is_a_miss(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / CACHE_DIR)
    key = context_key(["engine"], [])
    cache.put(key, {"files": {"a": ["blob", [{"message": 1}]], "b": "not a pair"}})
    index = GuardFindings(cache, key)
    assert index.get("a", "blob") is None
    assert index.get("b", "blob") is None
    cache.put(key, {"files": []})
    assert GuardFindings(cache, key).get("a", "blob") is None


def test_validate_and_hook_validate_reuse_the_findings(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "notes/b.txt").unlink()
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)  # unstaged, the removal leaves b.txt to commit
    assert main(["-q", "-C", str(root), "validate"]) == 0
    capsys.readouterr()
    (root / "notes/c.txt").write_text(f"key: {credential()}\n")
    assert main(["-q", "-C", str(root), "validate"]) == 1
    err = capsys.readouterr().err
    assert "notes/c.txt:1:6: Anthropic API key" in err
    assert main(["-q", "-C", str(root), "validate", "--no-cache"]) == 1
    assert capsys.readouterr().err == err


def test_a_plaintext_secrets_file_named_with_a_credential_is_shown_redacted(tmp_path: Path) -> None:
    # sibling of the credential in a file name: the plaintext-file finding printed the name as it is
    repo = init_repo(tmp_path / "repo")
    token = credential()
    mini_repo(repo.path, {f"{token}.secrets.yaml": "a: b\n"})
    s = scan(repo.path, None)
    plain = [d for d in s.diagnostics if d.message == PLAINTEXT_FILE_MESSAGE]
    assert [d.origin.path for d in plain if d.origin] == ["<redacted>.secrets.yaml"]
    assert not any(token in line for line in shown(s))


def test_an_unreadable_schema_file_scans_without_the_cache(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (root / "schemas/linked.json").symlink_to(outside)  # the tree refuses a link out of the repository
    cache = ResultCache(root / CACHE_DIR)
    first = scan(root, cache)
    assert scan(root, cache).scanned == first.scanned > 0  # nothing recorded: every file scanned each time
    assert shown(first) == shown(scan(root, None))


def test_every_file_is_read_whatever_its_stat_and_an_edit_is_scanned(root: Path) -> None:
    """No verdict comes from a stat: bytes can change under an unchanged stat (a write into an mmap'd page)."""
    from tests.incremental.test_cache_cli import settle

    a = root / "notes/a.txt"
    a.write_text("nothing here, " * 8 + "\n")  # room for a credential written over it in place
    cache = ResultCache(root / CACHE_DIR)
    expected = shown(scan(root, None))
    first = scan(root, cache)
    settle(root / "notes")
    settle(root / CACHE_DIR)
    scan(root, cache)
    again = scan(root, cache)
    assert (again.read, again.scanned) == (first.read, 0)  # every file read; each verdict from its blob's record
    assert shown(again) == shown(first) == expected
    st = a.stat()
    with a.open("r+b") as f:  # the same inode and size, its modification time put back: its change time moved
        f.write(f"k: {credential()}"[: st.st_size].encode())
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    edited = scan(root, cache)
    assert (edited.read, edited.scanned) == (first.read, 1)
    assert [d.split(":")[0] for d in shown(edited)] == ["notes/a.txt", "notes/b.txt"]
    assert shown(edited) == shown(scan(root, None))
