"""`llmcc publish`, `verify` and `pull` through their command modules and the real error boundary."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from compiler.publish import publish_target
from compiler.storage.file import FileStore
from tests.storage._cli import llmcc
from tests.storage._support import KeyPair, make_body


@pytest.fixture
def consumer(tmp_path: Path, keypair: KeyPair) -> tuple[Path, FileStore, list[str]]:
    """A directory without llmcc.yaml, a store with prod 1-3 and prod@acme 1, and the flags to read it."""
    root = tmp_path / "consumer"
    _, _public = keypair.write(root / "keys", "ci")
    store = FileStore(tmp_path / "store")
    for n in (1, 2, 3):
        body = make_body("prod", n)
        body["modules"]["api-gateway"] = {"auth": {"hmac_secret": f"ENC[AES256_GCM_SIV,data:{n}]"}}
        publish_target(store, "prod", body, keypair.signer)
    publish_target(store, "prod@acme", make_body("prod@acme", 1), keypair.signer)
    return root, store, ["--store", f"file://{tmp_path / 'store'}", "--trusted-key", "keys/ci.pub"]


def _path(store: FileStore, target: str, version: int) -> Path:
    return Path(store.url.removeprefix("file://")) / target / f"{version:08d}.dsse.json"


def test_verify_walks_every_target(
    consumer: tuple[Path, FileStore, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, flags = consumer
    assert llmcc(root, "verify", *flags) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["prod", "prod@acme"]
    assert out[0].startswith("prod: versions 1-3 verified, latest sha256:")
    assert llmcc(root, "verify", *flags, "--target", "prod@acme") == 0


def test_pull_prints_the_verified_modules(
    consumer: tuple[Path, FileStore, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, flags = consumer
    assert llmcc(root, "pull", "prod", *flags) == 0
    out = capsys.readouterr().out
    modules = json.loads(out)
    assert modules["inference-engine"]["model"]["max_tokens"] == 1003
    assert modules["api-gateway"]["auth"]["hmac_secret"] == "ENC[AES256_GCM_SIV,data:3]"
    assert out == json.dumps(modules, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert llmcc(root, "pull", "prod", "--version", "1", *flags) == 0
    assert json.loads(capsys.readouterr().out)["inference-engine"]["model"]["max_tokens"] == 1001
    assert llmcc(root, "pull", "prod", "--version", "1", "--out", "prod.json", *flags) == 0
    assert capsys.readouterr().out == ""
    assert json.loads((root / "prod.json").read_text())["inference-engine"]["model"]["max_tokens"] == 1001
    assert stat.S_IMODE((root / "prod.json").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["pull", "prod", "--version", "9"], 2, "prod has no version 9 (latest is 3)"),
        (["pull", "Prod"], 2, "'Prod' is not a target"),
        # no llmcc.yaml here: a target the store never published is unknown (issue 13 "Fragile"), not "nothing yet"
        (["pull", "staging"], 2, "llmcc: unknown target 'staging'; published in file://"),
        (["pull", "prdo"], 2, "llmcc: unknown target 'prdo' (did you mean 'prod'?); published in file://"),
        (
            ["verify", "--target", "prdo"],
            2,
            "llmcc: unknown target 'prdo' (did you mean 'prod'?); published in file://",
        ),
        (["verify", "--target", "prod", "-t", "prod@acm"], 2, "llmcc: unknown target 'prod@acm' (did you mean"),
        (["exec", "-t", "prdo", "--", "true"], 2, "llmcc: unknown target 'prdo' (did you mean 'prod'?); published in"),
    ],
)
def test_missing_things(
    consumer: tuple[Path, FileStore, list[str]],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    root, _, flags = consumer
    if argv[0] == "exec":
        argv = [*argv[:-2], *flags, *argv[-2:]]  # the options before "--"
        flags = []
    assert llmcc(root, *argv, *flags) == code
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
    if "unknown target" in message:  # one line, naming every target the store publishes
        assert captured.err.count("\n") == 1
        assert captured.err.endswith(": prod, prod@acme\n")


def test_a_target_llmcc_yaml_defines_but_nobody_published_is_nothing_published(
    consumer: tuple[Path, FileStore, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """With llmcc.yaml at hand, its targets are known: a new one is "nothing published" (verify: failed, 3)."""
    root, _, flags = consumer
    (root / "llmcc.yaml").write_text("project: p\nenvironments:\n  prod: {}\n  staging: {}\n")
    assert llmcc(root, "pull", "staging", *flags) == 2
    assert capsys.readouterr().err.endswith("nothing published for staging\n")
    assert llmcc(root, "verify", "-t", "staging", *flags) == 3
    assert capsys.readouterr().err.endswith("staging: nothing published in file://" + str(root.parent / "store") + "\n")
    assert llmcc(root, "pull", "stagign", *flags) == 2
    assert capsys.readouterr().err == (
        "llmcc: unknown target 'stagign' (did you mean 'staging'?); published in file://"
        f"{root.parent / 'store'} or defined in llmcc.yaml: prod, prod@acme, staging\n"
    )


def test_untrusted_signer_is_exit_3(
    consumer: tuple[Path, FileStore, list[str]], other_keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, flags = consumer
    other_keypair.write(root / "keys", "other")
    flags = [*flags[:2], "--trusted-key", "keys/other.pub"]
    assert llmcc(root, "verify", *flags) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "llmcc: prod version 1: no valid signature by a trusted key",
        "llmcc: prod@acme version 1: no valid signature by a trusted key",
    ]
    assert llmcc(root, "pull", "prod", *flags) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "llmcc: prod pointer: no valid signature by a trusted key\n"


def test_bundle_copied_to_another_target_is_exit_3(
    consumer: tuple[Path, FileStore, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = consumer
    shutil.copyfile(_path(store, "prod@acme", 1), _path(store, "prod", 3))
    assert llmcc(root, "verify", *flags) == 3
    assert (
        "llmcc: prod version 3: bundle is for target 'prod@acme', but it is stored as 'prod'" in capsys.readouterr().err
    )
    assert llmcc(root, "pull", "prod", *flags) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "stored as 'prod'" in captured.err


def test_deleted_middle_version_is_exit_3(
    consumer: tuple[Path, FileStore, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = consumer
    _path(store, "prod", 2).unlink()
    assert llmcc(root, "verify", *flags) == 3
    assert capsys.readouterr().err == "llmcc: prod: version 2 is missing (the store lists 3 next)\n"


def test_every_flipped_byte_is_refused_by_verify_and_pull(
    consumer: tuple[Path, FileStore, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Exhaustive, on the stored object itself: nothing of a tampered bundle is printed."""
    root, store, flags = consumer
    path = _path(store, "prod@acme", 1)
    original = path.read_bytes()
    for i in range(len(original)):
        flipped = bytearray(original)
        flipped[i] ^= 0x01
        path.write_bytes(bytes(flipped))
        assert llmcc(root, "verify", "--target", "prod@acme", *flags) == 3, i
        assert llmcc(root, "pull", "prod@acme", *flags) == 3, i
        assert capsys.readouterr().out == "", i
    path.write_bytes(original)
    assert llmcc(root, "pull", "prod@acme", *flags) == 0


def test_trust_comes_from_llmcc_yaml_or_nowhere(
    consumer: tuple[Path, FileStore, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, flags = consumer
    store_flags = flags[:2]
    assert llmcc(root, "verify", *store_flags) == 2
    assert "no trusted keys: no llmcc.yaml in " in capsys.readouterr().err  # a consumer without a repository
    assert llmcc(root, "verify", *store_flags, "--trusted-key", "keys/missing.pub") == 2
    assert "keys/missing.pub: cannot read" in capsys.readouterr().err
    (root / "llmcc.yaml").write_text(
        "project: p\nenvironments: {prod: {}}\nsigning:\n  trusted: [keys/ci.pub, keys/ci.pub]\n"
        f"storage:\n  default: {store_flags[1]}\n"
    )
    assert llmcc(root, "verify") == 0
    assert llmcc(root, "pull", "prod@acme") == 0
    (root / "llmcc.yaml").write_text(
        f"project: p\nenvironments: {{prod: {{}}}}\nstorage:\n  default: {store_flags[1]}\n"
    )
    assert llmcc(root, "verify") == 2
    assert (
        "no trusted keys: list them in llmcc.yaml signing.trusted or pass --trusted-key FILE" in capsys.readouterr().err
    )


def test_decrypt_without_secrets_and_with_an_unknown_kek(
    consumer: tuple[Path, FileStore, list[str]], keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = consumer
    assert llmcc(root, "pull", "prod@acme", "--decrypt", *flags) == 0  # no encryption block: nothing to open
    assert json.loads(capsys.readouterr().out) == make_body("prod@acme")["modules"]
    odd = make_body("dev")
    odd["encryption"] = {"kek": {"provider": "rot13", "key_id": "k"}, "wrapped_dek": {}}
    publish_target(store, "dev", odd, keypair.signer)
    assert llmcc(root, "pull", "dev", "--decrypt", *flags) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "llmcc: dev version 1: encryption.kek names no known key\n"


def test_usage_problems(
    tmp_path: Path, consumer: tuple[Path, FileStore, list[str]], keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    root, store, flags = consumer
    assert llmcc(root, "verify", *flags[2:]) == 2
    assert "no store: pass --store URL" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert llmcc(root, "verify", "--store", f"file://{tmp_path / 'empty'}", *flags[2:]) == 3
    assert "no published bundles to verify" in capsys.readouterr().err
    # a store that does not exist is not an empty one: exit 2, the same line for every reader
    gone = tmp_path / "nonexistent"
    for argv in (["verify"], ["pull", "prod"], ["verify", "--target", "prod"]):
        assert llmcc(root, *argv, "--store", f"file://{gone}", *flags[2:]) == 2
        assert capsys.readouterr().err == f"llmcc: file://{gone}: no store at {gone} (the directory does not exist)\n"
    bare = make_body("dev")
    del bare["modules"]
    publish_target(store, "dev", bare, keypair.signer)
    assert llmcc(root, "pull", "dev", *flags) == 3
    assert capsys.readouterr().err == "llmcc: dev version 1: bundle has no modules object\n"
