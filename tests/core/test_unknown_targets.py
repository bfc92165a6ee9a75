"""Every command that takes a target name refuses an unknown one the same way (issue 13 "Fragile").

Exit 2 and one line: ``unknown target 'prdo' (did you mean 'prod'?); WHERE: every known name``.
Before, ``pull``/``exec`` said "nothing published", ``verify`` failed it as unverifiable (exit 3),
and the manifest commands named no close match. The agent and the client are in
tests/agent/test_agent.py and tests/client/test_client.py.
"""

from __future__ import annotations

import pytest

from compiler.cli import main
from tests.conftest import REPO_ROOT, GitRepo

TARGETS = "dev, staging, prod, staging@acme, prod@acme, prod@globex"
MANIFEST = f"llmcc: unknown target 'prdo' (did you mean 'prod'?); llmcc.yaml defines: {TARGETS}\n"
STORE = (
    "llmcc: unknown target 'prdo' (did you mean 'prod'?); published in file://.llmcc/store or defined in llmcc.yaml: "
)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["compile", "-t", "prdo"], MANIFEST),
        (["validate", "-t", "prdo"], MANIFEST),
        (["explain", "prdo", "inference-engine.model.temperature"], MANIFEST),
        (["history", "prdo", "inference-engine.model.temperature"], MANIFEST),
        (
            ["publish", "-t", "prdo", "--allow-dirty", "--signing-key", str(REPO_ROOT / "keys/demo-signing.pem")],
            MANIFEST,
        ),
        (["keys", "rotate", "prdo"], MANIFEST),
        (["keys", "update", "--target", "prdo"], MANIFEST),
        (["secrets", "rotate", "data-pipeline.db.password", "--target", "prdo", "--generate", "12"], MANIFEST),
        (
            ["diff", "HEAD", "-t", "prdo"],
            f"llmcc: unknown target 'prdo' (did you mean 'prod'?); targets on either side: {TARGETS}\n",
        ),
        (["pull", "prdo"], STORE + "dev, prod, prod@acme, prod@globex, staging, staging@acme\n"),
        (["verify", "-t", "prdo"], STORE + "dev, prod, prod@acme, prod@globex, staging, staging@acme\n"),
        (["exec", "-t", "prdo", "--", "true"], STORE + "dev, prod, prod@acme, prod@globex, staging, staging@acme\n"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else "",
)
def test_every_command_taking_a_target_refuses_an_unknown_one_with_a_close_match(
    example_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    line: str,
) -> None:
    (example_repo.path / ".llmcc" / "store").mkdir(parents=True)  # a store that answers, with nothing in it
    monkeypatch.chdir(example_repo.path)
    assert main(argv) == 2
    assert capsys.readouterr().err == line
