"""Run a CI template's shell steps as the platform would: bash, the platform's variables, step order.

GitHub Actions: each ``run:`` of a job in its own ``bash --noprofile --norc
-eo pipefail`` (the runner's ``shell: bash``), with the workflow, job and step
``env`` (``${{ secrets.NAME }}`` filled from ``secrets``); a step runs when no
earlier one failed, or when its ``if:`` says ``always()``. ``uses:`` steps
(checkout, setup-python, upload-artifact) are what the test did itself.
GitLab CI: the job's ``script`` lines in one ``bash -eo pipefail``, with the
file's and the job's ``variables``.

The install step (``pip install`` by commit, then the version check) is left
out here: ``test_install`` runs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_EXPR = re.compile(r"\$\{\{\s*secrets\.([A-Z_]+)\s*\}\}")
INSTALL = re.compile(r'^python -m pip install "llm-config-compiler\[cli\] @ git\+\$\{LLMCC_GIT\}@\$\{LLMCC_COMMIT\}"$')
# the line after it: the commit installed is release LLMCC_VERSION (a stale LLMCC_COMMIT fails the job)
VERSION_CHECK = (
    'test "$(llmcc --version)" = "llmcc ${LLMCC_VERSION}"'
    ' || { echo "llmcc: LLMCC_COMMIT ${LLMCC_COMMIT} is not llmcc ${LLMCC_VERSION}" >&2; exit 1; }'
)


def is_install(script: str) -> bool:
    """Whether ``script`` (a step's ``run``, or GitLab's ``before_script`` lines joined) is the install step."""
    lines = script.strip().splitlines()
    return len(lines) == 2 and bool(INSTALL.match(lines[0])) and lines[1] == VERSION_CHECK


@dataclass
class StepRun:
    name: str
    code: int
    stdout: str
    stderr: str


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """The test's environment with this venv's ``llmcc`` first on PATH, as the install step leaves it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("LLMCC_NOTES_TOKEN", None)
    return {**env, **extra}


def _fill(value: object, secrets: dict[str, str]) -> str:
    return _EXPR.sub(lambda m: secrets.get(m.group(1), ""), str(value))


def run_github_job(doc: Any, job: str, *, cwd: Path, env: dict[str, str], secrets: dict[str, str]) -> list[StepRun]:
    spec = doc["jobs"][job]
    common = {k: _fill(v, secrets) for k, v in {**doc.get("env", {}), **spec.get("env", {})}.items()}
    out: list[StepRun] = []
    failed = False
    for step in spec["steps"]:
        if "uses" in step:
            continue
        script = step["run"]
        if is_install(script):
            continue
        assert "${{" not in script, f"{step.get('name')}: a GitHub expression in a script (use env:)"
        if failed and "always()" not in str(step.get("if", "")):
            continue
        step_env = {**env, **common, **{k: _fill(v, secrets) for k, v in step.get("env", {}).items()}}
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=step_env,
            capture_output=True,
            text=True,
            check=False,
        )
        out.append(StepRun(step.get("name", script), proc.returncode, proc.stdout, proc.stderr))
        failed = failed or proc.returncode != 0
    return out


def run_gitlab_job(doc: Any, job: str, *, cwd: Path, env: dict[str, str]) -> StepRun:
    spec = doc[job]
    before = doc.get("default", {}).get("before_script", [])
    assert is_install("\n".join(before)), before
    variables = {**doc.get("variables", {}), **spec.get("variables", {})}
    script = "\n".join(spec["script"])
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env={**env, **{k: str(v) for k, v in variables.items()}},
        capture_output=True,
        text=True,
        check=False,
    )
    return StepRun(job, proc.returncode, proc.stdout, proc.stderr)
