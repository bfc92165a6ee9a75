"""Which targets a staged file can change: the example project's five layers of precedence."""

from __future__ import annotations

import pytest

from compiler.affected import affected_targets
from compiler.project import load_project
from tests.conftest import REPO_ROOT

ALL = ["dev", "staging", "prod", "staging@acme", "prod@acme", "prod@globex"]


@pytest.mark.parametrize(
    ("files", "targets"),
    [
        (["llmcc.yaml"], ALL),
        (["schemas/observatory.schema.json"], ALL),
        (["templates/_base-service.yaml"], ALL),
        (["policies/production.yaml"], ALL),
        (["environments/base.yaml"], ALL),
        (["environments/base.secrets.sops.yaml"], ALL),
        (["environments/dev.yaml"], ["dev"]),
        (["environments/staging.yaml"], ["staging", "prod", "staging@acme", "prod@acme", "prod@globex"]),
        (["environments/prod.secrets.sops.yaml"], ["prod", "prod@acme", "prod@globex"]),
        (["environments/prod.secrets.rotation.yaml"], ["prod", "prod@acme", "prod@globex"]),
        (["environments/tenants/acme.yaml"], ["staging@acme", "prod@acme"]),
        (["environments/tenants/acme.secrets.sops.yaml"], ["staging@acme", "prod@acme"]),
        (["environments/prod/tenants/acme.yaml"], ["prod@acme"]),
        (["./environments/dev.yaml", "environments/tenants/globex.yaml"], ["dev", "prod@globex"]),
        (["policies/tests/production.yaml", "keys/README.md", "README.md"], []),
        (["keys/targets/prod.yaml", "keys/targets/prod@acme.yaml"], ["prod", "prod@acme"]),  # issue 9 §1
        (["keys/targets/qa.yaml"], ALL),  # an orphan: a full run reports it
        (["environments/qa.yaml"], ALL),  # read by no target: a full run reports it (issue 10 §1)
        (["environments/tenants/initech.yaml"], ALL),
        (["environments/dev/tenants/acme.yaml"], ALL),  # acme is not compiled for dev
        (["environments/notes/x.yaml", "environments/README.md"], []),
        ([], []),
    ],
)
def test_affected_targets(files: list[str], targets: list[str]) -> None:
    project = load_project((REPO_ROOT / "llmcc.yaml").read_bytes())
    assert [t.name for t in affected_targets(project, files)] == targets
