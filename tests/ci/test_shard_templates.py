"""Issue 14 §4: the CI templates' sharded publish, uncommented and run as written, shard after shard.

Each template keeps one publish runner by default and shows the matrix form as a
commented alternative (GitHub ``strategy.matrix``, GitLab ``parallel:`` with
CI_NODE_INDEX/CI_NODE_TOTAL) followed by a ``verify`` job. Here the commented
jobs are uncommented as their comment says, every shard's job runs with the
variables its platform gives it, against a store outside the checkout, and the
final verify job passes over every target.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.cli import main
from compiler.cli.init import scaffold_files
from compiler.project import Target
from compiler.shards import Shard, select_shard
from tests.ci._runner import base_env, run_github_job, run_gitlab_job
from tests.conftest import REPO_ROOT
from tests.secrets._secrets_support import new_canary

HEADING = "# --- Sharded publish"
TARGETS = ["dev", "staging", "prod", "staging@acme", "prod@acme", "prod@globex"]
TENANTS = "tenants: {acme: {environments: [staging, prod]}, globex: {environments: [prod]}}"


def _load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def uncommented(text: str) -> str:
    """The commented jobs after the sharding heading, with the leading ``#`` of each line removed.

    Prose lines (``# Word ...``) stay out; job lines are ``#`` followed by YAML indented by two
    spaces (GitHub, under ``jobs:``) or a top-level key (GitLab).
    """
    lines = text[text.index(HEADING) :].splitlines()[1:]
    out = [line[1:] for line in lines if line == "#" or line.startswith("#  ") or line[1:2].isalnum()]
    return "\n".join(out) + "\n"


def _parts(total: int) -> list[list[str]]:
    targets = [Target(*t.split("@")) for t in TARGETS]
    return [[t.name for t in select_shard(targets, Shard(i, total))] for i in range(1, total + 1)]


@pytest.fixture
def platform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, Path]:
    """(checkout, age identity, signing key): ``llmcc init`` with two tenants (six targets), its store
    outside the checkout, the placeholder secret replaced, committed."""
    work = tmp_path / "work"
    assert main(["init", str(work), "--keys-dir", str(tmp_path / "keys")]) == 0
    (age,) = (tmp_path / "keys").rglob("age.key")
    (signing,) = (tmp_path / "keys").rglob("signing.pem")
    manifest = work / "llmcc.yaml"
    text = manifest.read_text()
    text = text.replace("tenants: {}", TENANTS, 1)
    text = text.replace("default: file://.llmcc/store", f"default: file://{tmp_path / 'store'}", 1)
    manifest.write_text(text)
    env = base_env({"SOPS_AGE_KEY_FILE": str(age)})
    llmcc = [sys.executable, "-m", "compiler", "-C", str(work)]
    subprocess.run([*llmcc, "keys", "update"], env=env, capture_output=True, check=True)
    rotate = ["secrets", "rotate", "assistant.api_key", "--target", "prod", "--value-from-stdin"]
    subprocess.run([*llmcc, *rotate], input=new_canary(), env=env, capture_output=True, text=True, check=True)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "platform"]):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)
    capsys.readouterr()
    return work, age, signing


GITHUB = [(REPO_ROOT / "hooks/ci/github-workflow.yaml").read_text(), "scaffold"]


@pytest.mark.parametrize("failing", [False, True], ids=["all-pass", "last-shard-fails"])
@pytest.mark.parametrize("text", GITHUB, ids=["hooks", "scaffold"])
def test_the_github_matrix_publishes_every_shard_then_verifies(
    text: str, failing: bool, tmp_path: Path, platform: tuple[Path, Path, Path]
) -> None:
    """With ``failing``, the last shard's publish fails (no signing key): verify still runs over the
    store (``!cancelled()``, not skipped as ``needs`` alone would), lists what the others published,
    and fails, since ``needs.publish.result`` is not ``success``."""
    if text == "scaffold":
        text = dict(scaffold_files())[".github/workflows/llmcc.yaml"].decode()
    work, age, signing = platform
    doc = _load(text)
    assert "strategy" not in doc["jobs"]["publish"]  # the default stays one runner
    code = "jobs:\n" + uncommented(text)
    jobs = _load(code)["jobs"]
    assert set(jobs) == {"publish", "verify"}
    shards = jobs["publish"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1))
    assert jobs["publish"]["strategy"]["fail-fast"] is False
    assert jobs["verify"]["needs"] == "publish"
    assert jobs["publish"]["if"] == doc["jobs"]["publish"]["if"]
    condition = doc["jobs"]["publish"]["if"]
    assert jobs["verify"]["if"] == "${{ !cancelled() && " + condition + " }}"  # runs after a failed shard too
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    env = base_env({"CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(temp)})
    secrets = {"LLMCC_SIGNING_KEY": signing.read_text(), "SOPS_AGE_KEY": age.read_text().strip()}
    published_targets: list[str] = []
    result = "success"
    for index, part in zip(shards, _parts(len(shards)), strict=True):
        # what GitHub makes of the expressions in this matrix job
        expanded = code.replace("${{ matrix.shard }}", str(index))
        job = _load(expanded.replace("${{ strategy.job-total }}", str(len(shards))))["jobs"]["publish"]
        broken = failing and index == shards[-1]
        shard_secrets = {**secrets, "LLMCC_SIGNING_KEY": ""} if broken else secrets
        steps = run_github_job({**doc, "jobs": {"publish": job}}, "publish", cwd=work, env=env, secrets=shard_secrets)
        published = steps[-1]
        if broken:
            assert [s.code for s in steps][:2] == [0, 0]
            assert published.code != 0, published.stderr
            result = "failure"  # GitHub's result of a matrix job with a failed instance
            continue
        assert [s.code for s in steps] == [0, 0, 0], [(s.name, s.code, s.stderr) for s in steps]
        assert [line.split(":")[0] for line in published.stdout.splitlines()] == part
        summary = f"shard {index}/{len(shards)}: {len(part)} of 6 targets ({len(part)} published)"
        assert published.stderr.endswith(summary + "\n")
        assert list(temp.iterdir()) == [temp / "llmcc-events.jsonl"]  # the signing key is gone
        published_targets += part
    verify_job = _load(code.replace("${{ needs.publish.result }}", result))["jobs"]["verify"]
    (verify,) = run_github_job({**doc, "jobs": {"verify": verify_job}}, "verify", cwd=work, env=env, secrets=secrets)
    _assert_verify_reports(verify.stdout, published_targets)
    if failing:
        assert verify.code == 1
        assert verify.stderr == "llmcc: a publish shard ended 'failure': its targets are not published\n"
    else:
        assert verify.code == 0, verify.stderr
        assert sorted(published_targets) == sorted(TARGETS)


def _assert_verify_reports(stdout: str, published_targets: list[str]) -> None:
    """The final verify job lists every published target as verified and the rest of llmcc.yaml's as unpublished."""
    lines = stdout.splitlines()
    verified = [line.split(":")[0] for line in lines if ": versions 1-1 verified" in line]
    assert sorted(verified) == sorted(published_targets), stdout
    missing = [line.split(":")[0] for line in lines if line.endswith(": nothing published (a target of llmcc.yaml)")]
    assert sorted(missing) == sorted(set(TARGETS) - set(published_targets)), stdout  # the whole store


@pytest.mark.parametrize("failing", [False, True], ids=["all-pass", "last-shard-fails"])
def test_the_gitlab_parallel_job_publishes_every_shard_then_verifies(
    failing: bool, tmp_path: Path, platform: tuple[Path, Path, Path]
) -> None:
    """With ``failing``, the last shard fails (no signing key) and uploads no artifact: verify still
    runs (``when: always``), lists what the others published, and fails counting the shards' markers."""
    work, age, signing = platform
    text = (REPO_ROOT / "hooks/ci/gitlab-ci.yaml").read_text()
    doc = _load(text)
    assert "parallel" not in doc["llmcc-publish"]  # the default stays one runner
    jobs = _load(uncommented(text))
    assert set(jobs) == {"llmcc-publish", "llmcc-verify"}
    assert "resource_group" not in jobs["llmcc-publish"]  # it would run the shards one at a time
    assert jobs["llmcc-verify"]["needs"] == ["llmcc-publish"]
    assert jobs["llmcc-publish"]["rules"] == doc["llmcc-publish"]["rules"]
    assert jobs["llmcc-verify"]["rules"] == [{**doc["llmcc-publish"]["rules"][0], "when": "always"}]
    total = jobs["llmcc-publish"]["parallel"]
    assert jobs["llmcc-verify"]["variables"]["LLMCC_SHARDS"] == str(total)
    sharded = {**copy.deepcopy(doc), **jobs}
    env = {"CI": "true", "GITLAB_CI": "true", "SOPS_AGE_KEY_FILE": str(age), "LLMCC_SIGNING_KEY_FILE": str(signing)}
    runners = tmp_path / "runners"
    published_targets: list[str] = []
    markers: list[Path] = []
    for index, part in enumerate(_parts(total), 1):
        node = base_env({**env, "CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(total)})
        # each shard on its own runner: a clone of the checkout at the same commit
        clone = runners / str(index)
        subprocess.run(["git", "clone", "-q", str(work), str(clone)], check=True, capture_output=True)
        if failing and index == total:
            node["LLMCC_SIGNING_KEY_FILE"] = str(tmp_path / "absent.pem")
            run = run_gitlab_job(sharded, "llmcc-publish", cwd=clone, env=node)
            assert run.code != 0
            assert not list(clone.glob("llmcc-shard-*.ok"))  # a failed job uploads no artifact
            continue
        run = run_gitlab_job(sharded, "llmcc-publish", cwd=clone, env=node)
        assert run.code == 0, run.stderr
        assert [line.split(":")[0] for line in run.stdout.splitlines()] == part
        assert f"llmcc: shard {index}/{total}: {len(part)} of 6 targets" in run.stderr
        markers += clone.glob("llmcc-shard-*.ok")
        published_targets += part
    assert [m.name for m in markers] == [f"llmcc-shard-{i}.ok" for i in range(1, len(markers) + 1)]
    for marker in markers:  # GitLab downloads the artifacts of the jobs verify needs
        (work / marker.name).write_bytes(marker.read_bytes())
    verify = run_gitlab_job(sharded, "llmcc-verify", cwd=work, env=base_env(env))
    _assert_verify_reports(verify.stdout, published_targets)
    if failing:
        assert verify.code == 1
        message = f"llmcc: {total - 1} of {total} publish shards succeeded: the others' targets are not published\n"
        assert verify.stderr == message
    else:
        assert verify.code == 0, verify.stderr
        assert sorted(published_targets) == sorted(TARGETS)
