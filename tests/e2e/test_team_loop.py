"""Issue 13 "Done when": the team loop end to end, with real parts only.

A bare git repository is the team's "remote". A laptop clones it (empty),
``llmcc init``s into the clone, commits and pushes main; the real
``pre-commit`` (the scaffold's ``.pre-commit-config.yaml``: ``repo: local``
hooks that run the ``llmcc`` on PATH, so nothing is fetched) refuses a
plaintext secret and an invalid value and accepts the commit that points the
store at a registry and replaces the placeholder secret.

"Runners" are fresh clones where the steps of the CI templates run as
written (tests/ci/_runner.py: bash, the platform's variables), with llmcc
installed by the templates' own install step from a tagged local copy of
this repository (tests/ci/_install.py). The registry is the real
docker-registry with htpasswd basic auth and TLS signed by a private CA,
which the runner trusts through ``LLMCC_OCI_CA_FILE``; its credentials are a
docker ``config.json`` as ``docker login`` leaves it.

1. main is published (version 1 of every target); a service's
   ``ConfigClient`` reads dev;
2. a feature branch changes dev, then main moves on (staging's model) behind
   it; GitHub's pull-request job and GitLab's merge-request jobs write their
   comment to a file (``LLMCC_COMMENT_OUTPUT``): the branch's change, not main's
   later change reversed, and no secret;
3. the branch is merged and pushed; the publish job gives dev version 2; the
   client verifies it and sees the new value;
4. a commit that changes no target's content publishes no new version, by
   GitHub's publish job or by GitLab's (logged in as its template says).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.client import ConfigClient
from tests.ci._install import STEP, Release
from tests.ci._runner import StepRun, base_env, run_github_job, run_gitlab_job
from tests.conftest import GIT_ENV, REPO_ROOT
from tests.secrets._secrets_support import new_canary
from tests.storage.conftest import AuthRegistry

pytestmark = [pytest.mark.slow, pytest.mark.oci]

MARKER = "<!-- llmcc:diff -->"
PLAINTEXT = "sk-live-0123456789abcdef"  # what a careless commit pastes (not a canary: it is refused, then reset)


class Team:
    """The remote, the laptop clone, the keys, and how to run the laptop's and the runners' commands."""

    def __init__(self, tmp: Path, release: Release, registry: AuthRegistry) -> None:
        self.tmp = tmp
        self.release = release
        self.registry = registry
        self.remote = tmp / "platform-config.git"
        self.laptop = tmp / "laptop"
        self.keys = tmp / "keys"
        self.store = f"oci://{registry.service.host}/acme/platform-config"
        # the laptop: this release's llmcc first on PATH, pre-commit from the dev dependencies after it
        self.env = {
            **release.env(),
            **GIT_ENV,
            "PATH": f"{release.bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PRE_COMMIT_HOME": str(tmp / "pre-commit-home"),
        }
        for var in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "LLMCC_SIGNING_KEY_FILE", "CI"):
            self.env.pop(var, None)
        self.runs = 0

    def sh(self, cwd: Path, *argv: str, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv, cwd=cwd, env=self.env, input=stdin, capture_output=True, text=True, check=False, timeout=300
        )
        if ok and proc.returncode != 0:
            raise AssertionError(f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def git(self, cwd: Path, *args: str) -> str:
        return self.sh(cwd, "git", *args).stdout.strip()

    def edit(self, rel: str, old: str, new: str, *, where: Path | None = None) -> None:
        path = (where or self.laptop) / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new, 1))

    def commit(self, message: str, *, where: Path | None = None) -> tuple[int, str]:
        """``git commit`` (the hooks run): its exit code and what it printed (pre-commit writes to stderr)."""
        self.sh(where or self.laptop, "git", "add", "-A")
        proc = self.sh(where or self.laptop, "git", "commit", "-q", "-m", message, ok=False)
        return proc.returncode, proc.stdout + proc.stderr

    def runner(self, ref: str, *, merge_into: str | None = None) -> Path:
        """actions/checkout with fetch-depth 0: a clone at ``ref`` (detached), or GitHub's merge ref."""
        self.runs += 1
        work = self.tmp / f"runner-{self.runs}"
        self.git(self.tmp, "clone", "-q", str(self.remote), str(work))
        self.git(work, "checkout", "-q", "--detach", f"origin/{merge_into or ref}")
        if merge_into:
            self.git(work, "merge", "-q", "--no-ff", "-m", f"Merge {ref} into {merge_into}", f"origin/{ref}")
        return work

    def runner_env(self, work: Path, extra: dict[str, str]) -> dict[str, str]:
        """What a runner sets, llmcc on PATH as the install step left it, a docker login's config.json."""
        temp = work.parent / f"{work.name}-temp"
        home = work.parent / f"{work.name}-home"
        docker = home / ".docker"
        docker.mkdir(parents=True)
        temp.mkdir()
        auth = base64.b64encode(f"{self.registry.user}:{self.registry.password}".encode()).decode()
        (docker / "config.json").write_text(json.dumps({"auths": {self.registry.service.host: {"auth": auth}}}))
        return base_env(
            {
                "CI": "true",
                "HOME": str(home),
                "XDG_CACHE_HOME": str(home / ".cache"),
                "RUNNER_TEMP": str(temp),
                "LLMCC_OCI_CA_FILE": str(self.registry.pki.ca),  # the private CA, passed explicitly
                "PATH": f"{self.release.bin}{os.pathsep}{os.environ['PATH']}",
                **extra,
            }
        )

    def github_publish(self) -> list[StepRun]:
        work = self.runner("main")
        env = self.runner_env(
            work,
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": "push",
                "GITHUB_REF": "refs/heads/main",
                "GITHUB_REPOSITORY": "acme/platform-config",
                "GITHUB_WORKSPACE": str(work),
            },
        )
        secrets = {
            "SOPS_AGE_KEY": (self.keys / "age.key").read_text(),
            "LLMCC_SIGNING_KEY": (self.keys / "signing.pem").read_text(),
        }
        steps = run_github_job(workflow(self.laptop), "publish", cwd=work, env=env, secrets=secrets)
        assert [(s.name, s.code) for s in steps if s.code != 0] == [], [s.stderr for s in steps]
        assert not list(Path(env["RUNNER_TEMP"]).glob("*.pem"))  # the step removed the key it wrote
        return steps


def workflow(repo: Path) -> Any:
    """The GitHub workflow as ``llmcc init`` wrote it into the team's repository."""
    return YAML(typ="safe").load((repo / ".github/workflows/llmcc.yaml").read_text())


def _install_steps(doc: Any) -> list[str]:
    return [s["run"] for job in doc["jobs"].values() for s in job["steps"] if s.get("name") == "Install llmcc"]


def _gitlab_login(template: Path) -> str:
    """The registry login the GitLab template's header shows for its publish jobs' script."""
    lines = template.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("e.g. for GitLab's own registry")) + 1
    return "\n".join(line.removeprefix("#").strip() for line in lines[start : start + 2])


def _no_secret(text: str, secret: str) -> None:
    assert secret not in text
    assert PLAINTEXT not in text


def test_the_team_loop_from_init_to_a_service_reading_the_merged_change(
    tmp_path: Path, llmcc_release: Release, basic_registry: AuthRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert llmcc_release.step.returncode == 0, llmcc_release.step.stderr[-2000:]
    team = Team(tmp_path, llmcc_release, basic_registry)
    api_key = new_canary()

    # --- 1. a repository on the "forge", cloned empty, llmcc init into the clone, pushed -------------------
    team.git(tmp_path, "init", "-q", "--bare", "-b", "main", str(team.remote))
    team.git(tmp_path, "clone", "-q", str(team.remote), str(team.laptop))
    init = team.sh(tmp_path, "llmcc", "init", str(team.laptop), "--project", "acme", "--keys-dir", str(team.keys))
    assert "llmcc: created config repository" in init.stdout
    # every job of the workflow installs with the step the runners' llmcc was installed by
    assert _install_steps(workflow(team.laptop)) == [STEP] * 3
    shutil.copy(REPO_ROOT / "hooks/ci/gitlab-ci.yaml", team.laptop / ".gitlab-ci.yml")  # the GitLab template
    assert team.commit("llmcc init")[0] == 0
    team.git(team.laptop, "push", "-q", "origin", "main")

    # --- 2. the real pre-commit: a refused plaintext secret, a refused value, an accepted change ----------
    team.sh(team.laptop, sys.executable, "-m", "pre_commit", "install")
    team.edit(
        "environments/dev.yaml",
        "  temperature: 0.9\n",
        f"  temperature: 0.9\nmodules:\n  assistant:\n    api_key: {PLAINTEXT}\n",
    )
    code, out = team.commit("dev: the key, quickly")
    assert code != 0
    assert "environments/dev.yaml:6:5: assistant $.api_key: secret in plaintext" in out
    _no_secret(out, api_key)
    team.git(team.laptop, "reset", "-q", "--hard", "HEAD")
    team.edit("environments/dev.yaml", "  temperature: 0.9\n", "  temperature: 5\n")
    code, out = team.commit("dev: hot")
    assert code != 0
    assert "is greater than the maximum of 2" in out
    team.git(team.laptop, "reset", "-q", "--hard", "HEAD")
    team.edit("llmcc.yaml", "default: file://.llmcc/store", f"default: {team.store}")
    team.env["SOPS_AGE_KEY_FILE"] = str(team.keys / "age.key")
    rotate = ["secrets", "rotate", "assistant.api_key", "--target", "prod", "--value-from-stdin"]
    team.sh(team.laptop, "llmcc", *rotate, stdin=api_key)
    del team.env["SOPS_AGE_KEY_FILE"]
    code, out = team.commit("store: the team registry; prod: the real API key")
    assert code == 0, out
    assert "llmcc secrets guard" in out
    _no_secret(out, api_key)
    team.git(team.laptop, "push", "-q", "origin", "main")
    assert team.git(team.laptop, "log", "--format=%s").splitlines() == [
        "store: the team registry; prod: the real API key",
        "llmcc init",
    ]

    # --- the push to main runs the publish job: version 1 of every target --------------------------------
    steps = team.github_publish()
    assert [s.name for s in steps] == ["Secrets guard", "Validate", "Publish signed bundles"]
    published = steps[-1].stdout
    assert "dev: published version 1" in published, published
    _no_secret("".join(s.stdout + s.stderr for s in steps), api_key)

    # a service reads dev with the runtime client, through the same registry auth and CA
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "runner-1-home" / ".docker"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("LLMCC_OCI_CA_FILE", str(basic_registry.pki.ca))
    client = ConfigClient(
        team.store,
        "prod",
        trusted_keys=[team.laptop / "keys" / "signing.pub"],
        identity=team.keys / "age.key",
        cache_dir=tmp_path / "service-cache",
    )
    dev = ConfigClient(team.store, "dev", trusted_keys=[team.laptop / "keys" / "signing.pub"], cache_dir=None)
    assert client.refresh()
    assert dev.refresh()
    assert (dev.version, dev.get("assistant.temperature")) == (1, 0.9)
    assert client.secret("assistant.api_key").reveal() == api_key

    # --- 3. a feature branch changes dev; main moves on behind it -------------------------------------------
    team.git(team.laptop, "checkout", "-q", "-b", "feature")
    team.edit("environments/dev.yaml", "  temperature: 0.9\n", "  temperature: 0.6\n")
    assert team.commit("dev: cooler answers")[0] == 0
    team.git(team.laptop, "push", "-q", "origin", "feature")
    teammate = tmp_path / "teammate"
    team.git(tmp_path, "clone", "-q", str(team.remote), str(teammate))
    team.sh(teammate, sys.executable, "-m", "pre_commit", "install")
    team.edit("environments/staging.yaml", "model: gpt-4o", "model: gpt-4.1", where=teammate)
    assert team.commit("staging: a newer model", where=teammate)[0] == 0
    team.git(teammate, "push", "-q", "origin", "main")
    team.git(team.laptop, "fetch", "-q")
    behind = team.sh(team.laptop, "git", "merge-base", "--is-ancestor", "origin/main", "feature", ok=False)
    assert behind.returncode == 1  # the branch is behind main

    # --- 4. GitHub's pull-request job, as written; the comment goes to a file -------------------------------
    work = team.runner("feature", merge_into="main")  # GitHub's default checkout: refs/pull/7/merge
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "base": {"ref": "main"}}}))
    comment = tmp_path / "github-comment.md"
    env = team.runner_env(
        work,
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REF": "refs/pull/7/merge",
            "GITHUB_BASE_REF": "main",
            "GITHUB_HEAD_REF": "feature",
            "GITHUB_REPOSITORY": "acme/platform-config",
            "GITHUB_WORKSPACE": str(work),
            "GITHUB_RUN_ID": "4242",
            "LLMCC_COMMENT_OUTPUT": str(comment),
        },
    )
    steps = run_github_job(workflow(team.laptop), "check", cwd=work, env=env, secrets={})
    assert [(s.name, s.code) for s in steps if s.code != 0] == [], [s.stderr for s in steps]
    assert steps[-1].stderr == f"llmcc: ci comment: wrote the github comment to {comment}, posted nothing\n"
    body = comment.read_text()
    assert body.startswith(f"{MARKER}\n### llmcc validate\n```\n")
    assert "llmcc: validate ok: 3 targets, 0 errors, 0 warnings" in body
    assert "`dev`" in body
    assert "0.9" in body  # the branch's change
    assert "0.6" in body
    assert "gpt-4.1" not in body  # main's later change, not shown reversed as the branch's
    assert "`staging`" not in body
    assert "`prod`" not in body
    _no_secret(body, api_key)

    # --- 7. GitLab's merge-request jobs, as written, from CI_MERGE_REQUEST_DIFF_BASE_SHA -------------------
    work = team.runner("feature")  # GitLab checks out the merge request's head
    note = tmp_path / "gitlab-note.md"
    env = team.runner_env(
        work,
        {
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": "3",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": team.git(work, "merge-base", "origin/main", "HEAD"),
            "CI_JOB_URL": "https://gitlab.example/acme/platform-config/-/jobs/99",
            "LLMCC_COMMENT_OUTPUT": str(note),
        },
    )
    gitlab = YAML(typ="safe").load((work / ".gitlab-ci.yml").read_text())
    checks = run_gitlab_job(gitlab, "llmcc-validate", cwd=work, env=env)
    assert checks.code == 0, checks.stderr
    run = run_gitlab_job(gitlab, "llmcc-diff", cwd=work, env=env)
    assert run.code == 0, run.stderr
    assert run.stderr.endswith(f"llmcc: ci comment: wrote the gitlab comment to {note}, posted nothing\n")
    body = note.read_text()
    assert body.startswith(f"{MARKER}\n### llmcc validate\n```\n")
    assert "`dev`" in body
    assert "0.6" in body
    assert "gpt-4.1" not in body
    assert (work / "llmcc-diff.md").read_text() in body  # the artifact holds what the note shows
    _no_secret(body, api_key)

    # --- 5. merge, push; the publish job: dev version 2 ----------------------------------------------------
    team.git(team.laptop, "checkout", "-q", "main")
    team.git(team.laptop, "pull", "-q", "--ff-only", "origin", "main")
    team.git(team.laptop, "merge", "-q", "--no-ff", "-m", "Merge branch 'feature'", "feature")
    team.git(team.laptop, "push", "-q", "origin", "main")
    steps = team.github_publish()
    published = steps[-1].stdout
    assert "dev: published version 2" in published, published
    assert "staging: published version 2" in published  # the teammate's model
    _no_secret("".join(s.stdout + s.stderr for s in steps), api_key)

    # --- 6. the service sees the new version, verified; no change, no new version --------------------------
    seen: list[tuple[int, frozenset[str]]] = []
    dev.on_change(lambda old, new, changed: seen.append((new.version, changed)))
    assert dev.refresh()
    assert (dev.version, dev.get("assistant.temperature")) == (2, 0.6)
    assert [version for version, _ in seen] == [2]
    assert client.refresh()  # prod extends staging: its model changed too
    assert client.get("assistant.model") == "gpt-4.1"
    assert client.secret("assistant.api_key").reveal() == api_key

    team.edit("README.md", "## Layout", "Owned by the platform team.\n\n## Layout")
    assert team.commit("README: who owns this")[0] == 0
    team.git(team.laptop, "push", "-q", "origin", "main")
    steps = team.github_publish()
    published = steps[-1].stdout
    assert "dev: unchanged at version 2" in published, published
    assert "published version" not in published
    # ... nor does GitLab's publish job, logged in to the registry the way the template's header says
    work = team.runner("main")
    env = team.runner_env(
        work,
        {
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_BRANCH": "main",
            "CI_REGISTRY": basic_registry.service.host,
            "CI_REGISTRY_USER": basic_registry.user,
            "CI_REGISTRY_PASSWORD": basic_registry.password,
            "SOPS_AGE_KEY": (team.keys / "age.key").read_text(),
            "LLMCC_SIGNING_KEY_FILE": str(team.keys / "signing.pem"),
        },
    )
    (Path(env["HOME"]) / ".docker" / "config.json").unlink()  # this runner logs in itself
    gitlab = YAML(typ="safe").load((work / ".gitlab-ci.yml").read_text())
    gitlab["llmcc-publish"]["script"][:0] = [_gitlab_login(work / ".gitlab-ci.yml")]
    run = run_gitlab_job(gitlab, "llmcc-publish", cwd=work, env=env)
    assert run.code == 0, run.stderr
    assert "dev: unchanged at version 2" in run.stdout
    assert "published version" not in run.stdout
    _no_secret(run.stdout + run.stderr, api_key)
    assert basic_registry.password not in run.stdout + run.stderr

    assert not dev.refresh()
    assert not client.refresh()
    assert (dev.version, client.version) == (2, 2)
