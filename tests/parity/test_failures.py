"""A target that fails, for any cause, keeps no bundle from an earlier run (issue 10 §7)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.distdir import BundleDir
from compiler.errors import InputError
from tests.parity.conftest import init_config

SOPS = "environments/prod.secrets.sops.yaml"
TARGETS = ["dev", "staging", "prod"]


def run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["-C", str(root), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def bundles(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "dist").iterdir())


def compiled(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    assert run(capsys, root, "compile")[0] == 0
    assert bundles(root) == sorted(f"{t}.bundle.json" for t in TARGETS)


def tamper_value(root: Path) -> None:
    """Flip one byte of the encrypted api_key: sops's MAC or the value's tag no longer matches."""
    path = root / SOPS
    text = path.read_text()
    at = text.index("data:", text.index("api_key: ENC[")) + len("data:")
    path.write_text(text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :])


def test_undecryptable_sops_file_removes_the_old_bundle(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    compiled(capsys, config)
    tamper_value(config)
    code, out, err = run(capsys, config, "compile")
    assert code == 2
    assert err.startswith(f"llmcc: {SOPS}: sops could not decrypt: ")
    assert len(err.splitlines()) == 1
    # prod failed: its old bundle is gone; dev and staging do not read the file and are rebuilt.
    assert bundles(config) == ["dev.bundle.json", "staging.bundle.json"]
    assert out.splitlines() == ["dist/dev.bundle.json", "dist/staging.bundle.json"]


def test_mac_mismatch_removes_the_old_bundle(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    compiled(capsys, config)
    path = config / SOPS
    # The MAC covers the modification time: a changed stamp is a changed file.
    path.write_text(re.sub(r"lastmodified: .*", 'lastmodified: "2020-01-01T00:00:00Z"', path.read_text()))
    code, _, err = run(capsys, config, "compile")
    assert (code, err) == (
        2,
        f"llmcc: {SOPS}: sops could not decrypt: MAC mismatch: the file was changed after it was encrypted\n",
    )
    assert bundles(config) == ["dev.bundle.json", "staging.bundle.json"]


def test_wrong_recipient_removes_the_old_bundle(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    compiled(capsys, config)
    # A valid SOPS file, but encrypted for another project's key.
    other = init_config(tmp_path / "other", tmp_path / "other-home", monkeypatch)
    (config / SOPS).write_bytes((other / SOPS).read_bytes())
    code, _, err = run(capsys, config, "compile")
    assert code == 2
    assert err.startswith(f"llmcc: {SOPS}: sops could not decrypt: no identity could open its data key")
    assert bundles(config) == ["dev.bundle.json", "staging.bundle.json"]


def test_parallel_compile_reports_the_broken_file_and_builds_the_rest(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compiled(capsys, config)
    tamper_value(config)
    code, out, _ = run(capsys, config, "compile", "-j", "2")
    assert code == 2
    assert bundles(config) == ["dev.bundle.json", "staging.bundle.json"]
    assert out.splitlines() == ["dist/dev.bundle.json", "dist/staging.bundle.json"]


def test_a_missing_identity_removes_every_old_bundle_of_the_run(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    compiled(capsys, config)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    monkeypatch.setenv("HOME", str(config / "nohome"))
    code, _, err = run(capsys, config, "compile", "-t", "prod")
    assert code == 2
    assert "decrypting needs the compiler identity" in err
    assert bundles(config) == ["dev.bundle.json", "staging.bundle.json"]  # -t prod: the others are not touched


def test_a_schema_failure_removes_the_old_bundle(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    compiled(capsys, config)
    (config / "environments/dev.yaml").write_text("vars:\n  temperature: 2.5\n")
    code, _, _ = run(capsys, config, "compile")
    assert code == 1
    assert bundles(config) == ["prod.bundle.json", "staging.bundle.json"]


def test_an_unwritable_output_directory_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(InputError, match="cannot prepare the output directory"),
        BundleDir(tmp_path / "file" / "dist", ["dev"]).staged(),
    ):
        pass


def test_install_failure_leaves_none_of_the_run(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    bdir = BundleDir(out, ["dev", "prod"])
    with bdir.staged() as staging:
        (staging / "dev.bundle.json").write_text("{}")
        with pytest.raises(InputError, match="cannot install the bundles"):
            bdir.install(["dev", "prod"])  # prod was never staged
    assert list(out.iterdir()) == []


def test_a_move_that_fails_after_others_took_place_takes_them_back(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    bdir = BundleDir(out, ["dev", "prod"])
    with bdir.staged() as staging:
        (staging / "dev.bundle.json").write_text("{}")
        (staging / "prod.bundle.json").write_text("{}")
        (out / "prod.bundle.json").mkdir()  # a directory in the way: the second rename fails
        (out / "prod.bundle.json" / "x").write_text("x")
        with pytest.raises(InputError, match="cannot install the bundles"):
            bdir.install(["dev", "prod"])
    assert sorted(p.name for p in out.iterdir()) == ["prod.bundle.json"]  # dev was moved, then removed


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_validate_reports_every_broken_file_serial_or_parallel(
    config: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    # Parsing before forking used to stop at the first broken environment in a parallel run.
    (config / "environments/dev.yaml").write_text("vars: [\n")
    (config / "environments/staging.yaml").write_text("vars: {a: 1, a: 2}\n")
    code, _, err = run(capsys, config, "validate", "-j", jobs)
    assert code == 2
    lines = err.splitlines()
    assert [ln.split(": ")[1] for ln in lines[:2]] == ["environments/dev.yaml:2:1", "environments/staging.yaml:1:14"]
    assert lines[-1] == "llmcc: validate FAILED: 3 targets, 2 errors, 0 warnings"


def test_a_killed_runs_staging_directory_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    proc = subprocess.Popen(["true"])  # its pid names a process that has exited
    proc.wait()
    abandoned = out / f".llmcc-staging-{proc.pid}"
    abandoned.mkdir(parents=True)
    (abandoned / "dev.bundle.json").write_text("{}")
    mine = out / f".llmcc-staging-{os.getpid()}-other"  # not a pid: left alone
    mine.mkdir()
    with BundleDir(out, ["dev"]).staged():
        pass
    assert sorted(p.name for p in out.iterdir()) == [mine.name]


def test_a_bundle_of_a_target_no_longer_in_the_manifest_is_removed(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A removed target's bundle is never current: any run removes it, even one of other targets.

    Found by the incremental property test: a tenant dropped from an environment kept its
    bundle in dist/, where a deploy step could not tell it from this run's.
    """
    compiled(capsys, config)
    (config / "dist" / "staging@gone.bundle.json").write_text("{}")
    (config / "dist" / "notes.txt").write_text("kept: not a bundle")
    assert run(capsys, config, "compile", "-t", "dev")[0] == 0
    assert bundles(config) == ["dev.bundle.json", "notes.txt", "prod.bundle.json", "staging.bundle.json"]
