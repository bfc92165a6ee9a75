"""Shards publish to one store at once through the real CLI, per backend (issue 14 §4).

Four ``llmcc publish --shard I/3`` processes start together behind a file
barrier: shards 1, 2 and 3, and shard 2 a second time (a CI job re-run while
the first still runs). All must succeed; each target then has exactly one
version, the twice-published shard's targets were published by one process
and reported unchanged by the other, and ``llmcc verify`` of the whole store
passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.project import Target
from compiler.shards import Shard, select_shard
from compiler.storage import open_store
from tests.conftest import GitRepo
from tests.storage.test_cli_four_clones import PUBLISH_TIMEOUT, _store, publish_at_once

SHARDS = ["1/3", "2/3", "3/3", "2/3"]
TARGETS = ["dev", "staging", "prod", "staging@acme", "prod@acme", "prod@globex"]  # the example, manifest order


def _parts() -> list[list[str]]:
    targets = [Target(*t.split("@")) for t in TARGETS]
    return [[t.name for t in select_shard(targets, Shard(i, 3))] for i in (1, 2, 3)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["file", "s3"])
def test_shards_publish_to_one_store_at_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, example_repo: GitRepo
) -> None:
    url, flags = _store(backend, request, tmp_path)  # s3: credentials now in os.environ
    root = example_repo.path
    keys = root / "keys"
    env = {
        **os.environ,
        "SOPS_AGE_KEY_FILE": str(keys / "demo.agekey"),
        "LLMCC_SIGNING_KEY_FILE": str(keys / "demo-signing.pem"),
    }
    runs = [(["-C", str(root), "publish", "--store", url, *flags, "--shard", shard], env) for shard in SHARDS]
    procs, results = publish_at_once(tmp_path / "barrier", runs)

    report = "\n".join(
        f"shard {shard}: exit {p.returncode}\n{out}{err}"
        for shard, p, (out, err) in zip(SHARDS, procs, results, strict=True)
    )
    assert [p.returncode for p in procs] == [0] * len(SHARDS), report
    parts = _parts()
    assert sorted(t for part in parts for t in part) == sorted(TARGETS)
    for (out, err), shard in zip(results, SHARDS, strict=True):
        part = parts[int(shard[0]) - 1]
        assert [line.split(":")[0] for line in out.splitlines()] == part, report
        assert err.startswith(f"llmcc: shard {shard}: {len(part)} of 6 targets ("), report
    for i in (0, 2):  # the shards that ran once: every target published
        assert all(": published version 1 sha256:" in line for line in results[i][0].splitlines()), report
    # shard 2 ran twice at once: per target, one process published it, the other found it unchanged
    twice = list(zip(results[1][0].splitlines(), results[3][0].splitlines(), strict=True))
    for first, second in twice:
        said = sorted(line.split(": ")[1].split(" sha256:")[0] for line in (first, second))
        assert said == ["published version 1", "unchanged at version 1"], report
        assert first.split()[-1] == second.split()[-1]  # the same digest

    verify = subprocess.run(
        [sys.executable, "-m", "compiler", "-C", str(root), "verify", "--store", url, *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=PUBLISH_TIMEOUT,
    )
    assert verify.returncode == 0, verify.stderr
    assert sorted(line.split(":")[0] for line in verify.stdout.splitlines()) == sorted(TARGETS), verify.stdout
    store = open_store(url, root=tmp_path, endpoint_url=flags[1] if flags else None)
    assert store.targets() == sorted(TARGETS)
    assert all(store.versions(t) == [1] for t in TARGETS)


def test_publish_shard_summary_and_json(
    example_repo: GitRepo, demo_identity: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = example_repo.path
    signing = ["--signing-key", "keys/demo-signing.pem"]
    parts = _parts()
    assert main(["-C", str(root), "publish", *signing, "--shard", "1/3"]) == 0
    captured = capsys.readouterr()
    assert [line.split(":")[0] for line in captured.out.splitlines()] == parts[0]
    assert captured.err == f"llmcc: shard 1/3: {len(parts[0])} of 6 targets ({len(parts[0])} published)\n"
    assert main(["-C", str(root), "publish", *signing, "--shard", "1/3", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["target"] for t in doc["targets"]] == parts[0]
    assert {t["status"] for t in doc["targets"]} == {"unchanged"}
    assert doc["shard"] == {"index": 1, "total": 3, "targets": len(parts[0]), "all_targets": 6}

    # the scheduled pointer refresh shards the same way: only the published targets of the shard
    assert main(["-C", str(root), "publish", *signing, "--refresh-pointer", "--shard", "1/3", "-q"]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == parts[0]
    assert main(["-C", str(root), "publish", *signing, "--refresh-pointer", "--shard", "2/3"]) == 3
    assert "nothing published, so no pointer to refresh" in capsys.readouterr().err
    # more shards than targets: an empty shard has nothing to do, and says so
    assert main(["-C", str(root), "publish", *signing, "--refresh-pointer", "--shard", "7/7", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["targets"] == []
    assert doc["shard"] == {"index": 7, "total": 7, "targets": 0, "all_targets": 6}
    assert main(["-C", str(root), "publish", *signing, "--shard", "7/7"]) == 0
    assert capsys.readouterr().err == "llmcc: shard 7/7: 0 of 6 targets\n"
