"""The repository's tools run without the test suite (tools/local-stores.py imported tests/ helpers:
it needed tests/ on its path and the test-only modules behind them)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def _imports_tests(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [f"{path.name}:{node.lineno}: {n}" for n in names if n == "tests" or n.startswith("tests.")]
    return found


def test_no_tool_or_benchmark_imports_the_test_suite() -> None:
    """bench/client.py started moto through tests/services.py: now both use tools/loopback.py."""
    scripts = sorted((REPO_ROOT / "tools").glob("*.py")) + sorted((REPO_ROOT / "bench").rglob("*.py"))
    assert [hit for path in scripts for hit in _imports_tests(path)] == []


def test_local_stores_starts_from_a_copy_of_tools_alone(tmp_path: Path) -> None:
    """local-stores.py's start, run from a copy of tools/ with no tests/ beside it, gets as far as
    looking for moto_server (made absent here): the helpers it imports are all there."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for path in (REPO_ROOT / "tools").glob("*.py"):
        (tools / path.name).write_bytes(path.read_bytes())
    code = (
        "import pathlib, runpy, shutil, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"  # as `python tools/local-stores.py` has it
        "stores = runpy.run_path(sys.argv[1] + '/local-stores.py')\n"  # its module body, not main()
        "shutil.which = lambda *a, **k: None\n"
        "try:\n"
        "    stores['start'](pathlib.Path(sys.argv[2]), 1, 2, 3)\n"
        "except stores['StartError'] as e:\n"
        "    assert 'moto_server is not installed' in str(e), e\n"
        "assert not any(m == 'tests' or m.startswith('tests.') for m in sys.modules)\n"
        "from demo_pki import make_pki\n"
        "assert make_pki(pathlib.Path(sys.argv[2]) / 'pki').ca.read_bytes().startswith(b'-----BEGIN CERTIFICATE')\n"
    )
    (tmp_path / "out").mkdir()
    done = subprocess.run(
        [sys.executable, "-I", "-c", code, str(tools), str(tmp_path / "out")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
