"""The client is the runtime tier (issue 11 "Layout and install footprint"): a fresh interpreter checks it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

# The compile-time stack: none of it may load with `import compiler.client`.
COMPILE_TIME = ("jinja2", "jsonschema", "jsonschema_rs", "celpy", "cel", "git", "ruamel", "pydantic", "deepdiff")
COMPILE_TIME += ("detect_secrets",)
# Our own compile-time modules, which drag those in.
OWN_COMPILE_TIME = ("compiler.project", "compiler.cli", "compiler.compile", "compiler.render", "compiler.policy")
OWN_COMPILE_TIME += ("compiler.validate", "compiler.load", "compiler.sources", "compiler.publish", "compiler.diff")

_PROBE = """
import json, sys
import compiler.client
print(json.dumps(sorted(sys.modules)))
"""


def test_import_compiler_client_loads_no_compile_time_module() -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(proc.stdout)
    offenders = sorted(
        {name.split(".")[0] for name in loaded if name.split(".")[0] in COMPILE_TIME}
        | {m for m in OWN_COMPILE_TIME for name in loaded if name == m or name.startswith(m + ".")}
    )
    assert offenders == [], f"import compiler.client loads the compile-time stack: {', '.join(offenders)}"
