"""Start-up (issue 14 §1): a light command imports none of the heavy stack; CEL, GitPython and
detect-secrets only when policies, git history or their own command need them; validate and
``hook validate`` of a valid repository without an identity import no pydantic, no crypto
library and no multiprocessing.

Each case runs in a fresh interpreter and lists what ``sys.modules`` holds afterwards. No
timings here: wall times are measured by bench/startup.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import _commands
from tests.conftest import GitRepo, init_repo
from tests.core._repos import mini_repo

HEAVY = (
    "pydantic",
    "ruamel",
    "jinja2",
    "jsonschema_rs",
    "jsonschema",
    "cel",
    "git",
    "deepdiff",
    "detect_secrets",
    "requests",
    "boto3",
    "botocore",
    "hvac",
    "cryptography",
    "pyrage",
    "prompt_toolkit",
)
PROBE = """
import contextlib, io, sys
from compiler.cli import main
code = None
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit:
        pass
modules = sorted({m.split(".")[0] for m in sys.modules})
import json  # after the list: whether the command imported json is part of what is checked
print(json.dumps([code, modules]))
"""


def loaded(*argv: str, cwd: Path | None = None, code: int | None = None, env: dict[str, str] | None = None) -> set[str]:
    """Top-level packages in ``sys.modules`` after ``llmcc ARGV`` in a fresh interpreter (which
    returned ``code``, when given: a command that stopped early proves nothing)."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True, cwd=cwd, timeout=120, env=env
    )
    returned, modules = json.loads(proc.stdout.splitlines()[-1])
    if code is not None:
        assert returned == code
    return set(modules)


def no_identity(tmp_path: Path) -> dict[str, str]:
    """The environment of a pre-commit hook without keys: no SOPS_AGE_*, no sops keys.txt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_AGE_")}
    (tmp_path / "config").mkdir(exist_ok=True)
    return {**env, "XDG_CONFIG_HOME": str(tmp_path / "config")}


LIGHT = [
    ["--version"],
    ["--help"],
    [],
    ["valdate"],
    *([name, "--help"] for name in _commands.COMMANDS),
    ["policy", "test", "--help"],
    ["secrets", "edit", "--help"],
    ["hook", "validate", "--help"],
    ["keys", "generate", "--help"],
]


@pytest.mark.parametrize("argv", LIGHT, ids=" ".join)
def test_a_light_command_imports_no_heavy_package(argv: list[str]) -> None:
    assert loaded(*argv) & set(HEAVY) == set()


def test_validate_loads_cel_and_gitpython_only_when_it_needs_them(tmp_path: Path) -> None:
    # a repository without policies, outside git: no CEL, no GitPython, no detect-secrets
    root = mini_repo(tmp_path / "plain")
    assert loaded("-C", str(root), "validate") & {"cel", "git", "detect_secrets", "requests", "prompt_toolkit"} == set()
    # with a policy: CEL, but not its interactive shell (prompt_toolkit, typer, rich)
    (root / "policies").mkdir()
    (root / "policies/limits.yaml").write_text("- name: cool\n  rule: config.engine.model.temperature <= 1.0\n")
    mods = loaded("-C", str(root), "validate")
    assert "cel" in mods
    assert mods & {"git", "prompt_toolkit", "typer", "rich", "detect_secrets"} == set()


# Packages that validate of a valid repository without an identity does without (issue 14 §1):
# pydantic (the exact checks of compiler.project and policy.rules), GitPython (git runs as a
# subprocess), cryptography (nothing to decrypt; pyrage, light, reads age recipients), multiprocessing
# (a few targets), Jinja (every template scalar of these repositories is plain: compiler.render.jinja).
NOT_FOR_VALIDATE = {"pydantic", "pydantic_core", "git", "cryptography", "multiprocessing", "detect_secrets", "jinja2"}
NOT_FOR_VALIDATE |= {"requests", "prompt_toolkit", "deepdiff", "boto3", "hvac"}
NOT_FOR_VALIDATE |= {"zipfile", "csv"}  # importlib.metadata's (~20 ms): cache keys read versions from dist-info names


def committed_mini_repo(tmp_path: Path) -> GitRepo:
    repo = init_repo(tmp_path / "plain")
    mini_repo(repo.path)
    repo.commit("plain")
    return repo


def test_validate_of_a_working_tree_without_policies_loads_neither_cel_nor_gitpython(tmp_path: Path) -> None:
    repo = committed_mini_repo(tmp_path)
    env = no_identity(tmp_path)
    assert loaded("-C", str(repo.path), "validate", code=0, env=env) & (NOT_FOR_VALIDATE | {"cel"}) == set()


def test_hook_validate_without_policies_loads_neither_cel_nor_gitpython(tmp_path: Path) -> None:
    repo = committed_mini_repo(tmp_path)
    layer = repo.path / "environments/dev.yaml"
    layer.write_text(layer.read_text() + "\n# changed\n")
    env = no_identity(tmp_path)
    mods = loaded("hook", "validate", "environments/dev.yaml", cwd=repo.path, code=0, env=env)
    assert mods & (NOT_FOR_VALIDATE | {"cel"}) == set()
    assert loaded("hook", "validate", cwd=repo.path, code=0, env=env) & (NOT_FOR_VALIDATE | {"cel"}) == set()


def test_validate_of_the_example_without_an_identity_loads_cel_for_its_policies_and_nothing_else(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    env = no_identity(tmp_path)
    mods = loaded("-C", str(example_repo.path), "validate", code=0, env=env)
    assert "cel" in mods
    assert mods & NOT_FOR_VALIDATE == set()


def test_hook_validate_of_a_one_file_change_in_the_example_loads_only_what_it_uses(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    layer = example_repo.path / "environments/dev.yaml"
    layer.write_text(layer.read_text() + "\n# changed\n")
    mods = loaded("hook", "validate", "environments/dev.yaml", cwd=example_repo.path, code=0, env=no_identity(tmp_path))
    assert "cel" in mods
    assert mods & NOT_FOR_VALIDATE == set()


# What a compile or validate whose targets all come from the result cache does without (issue 14 §2):
# the compile engine, templates, the schema engine, policies, sealing and the key checks.
ENGINE = {
    "compiler.compile.pipeline",
    "compiler.render.jinja",
    "compiler.validate.schema",
    "compiler.validate.schemafiles",
    "compiler.policy.check",
    "compiler.policy.evaluate",
    "compiler.secrets.sealing",
    "compiler.secrets.access",
    "jsonschema_rs",
    "jinja2",
    "cryptography",
    "multiprocessing",
}


def loaded_modules(*argv: str, cwd: Path, env: dict[str, str], code: int) -> set[str]:
    """Every module in ``sys.modules`` (not only top-level packages) after ``llmcc ARGV`` that returned ``code``."""
    probe = PROBE.replace('sorted({m.split(".")[0] for m in sys.modules})', "sorted(sys.modules)")
    proc = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True, cwd=cwd, timeout=120, env=env
    )
    returned, modules = json.loads(proc.stdout.splitlines()[-1])
    assert returned == code
    return set(modules)


def test_validate_and_the_hook_without_policies_load_no_policy_engine(tmp_path: Path) -> None:
    """No ``policies/*.yaml``: no findings to evaluate, so the evaluator (~20 ms) is not imported."""
    repo = committed_mini_repo(tmp_path)
    env = no_identity(tmp_path)
    engine = {"compiler.policy.check", "compiler.policy.evaluate"}
    assert loaded_modules("validate", "--no-cache", cwd=repo.path, env=env, code=0) & engine == set()
    layer = repo.path / "environments/dev.yaml"
    layer.write_text(layer.read_text() + "\n# changed\n")
    assert loaded_modules("hook", "validate", "environments/dev.yaml", cwd=repo.path, env=env, code=0) & engine == set()


@pytest.mark.parametrize("command", ["compile", "validate"])
def test_a_command_whose_targets_all_hit_the_cache_loads_no_compile_engine(tmp_path: Path, command: str) -> None:
    repo = committed_mini_repo(tmp_path)
    env = no_identity(tmp_path)
    first = loaded_modules(command, cwd=repo.path, env=env, code=0)  # fills the cache
    assert "compiler.compile.pipeline" in first  # the probe sees the engine when it runs
    # validate looks for orphan key files itself (secrets.access): a check of the repository, not of a target
    engine = ENGINE - {"compiler.secrets.access"} if command == "validate" else ENGINE
    assert loaded_modules(command, cwd=repo.path, env=env, code=0) & engine == set()
    # one target's layer changed: that target is built, with the engine
    layer = repo.path / "environments/dev.yaml"
    layer.write_text(layer.read_text() + "\n# changed\n")
    assert "compiler.compile.pipeline" in loaded_modules(command, cwd=repo.path, env=env, code=0)


def test_a_compile_with_no_secret_field_loads_no_crypto_library(tmp_path: Path) -> None:
    """Every build sets up the sealer and the key check, but cryptography (~8 ms in each compile
    process, before the workers fork) loads only when a value is sealed or opened (issue 14 §1)."""
    repo = committed_mini_repo(tmp_path)
    mods = loaded_modules("compile", "--no-cache", cwd=repo.path, env=no_identity(tmp_path), code=0)
    assert "compiler.secrets.sealing" in mods  # the probe sees the sealer when it runs
    assert {m for m in mods if m.split(".")[0] == "cryptography"} == set()


def test_the_cel_loader_gives_the_package_api_without_its_shell() -> None:
    probe = (
        "import sys; from compiler.policy.celmodule import load_cel; cel = load_cel();"
        "ctx = cel.Context(variables={'x': 2}); print(cel.compile('x * 2').execute(ctx),"
        " 'prompt_toolkit' in sys.modules, sorted(cel.stdlib.STDLIB_FUNCTIONS) == sorted(__import__('cel.stdlib',"
        " fromlist=['x']).STDLIB_FUNCTIONS), load_cel() is cel)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["4", "False", "True", "True"]


def test_the_cel_loader_reuses_a_package_already_imported() -> None:
    probe = "import cel; from compiler.policy.celmodule import load_cel; print(load_cel() is cel)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True"]


FALLBACK = """
import importlib, importlib.util, sys
from compiler.policy import celmodule
real = importlib.import_module
if sys.argv[1] == "no-package":
    importlib.util.find_spec = lambda name: None
else:
    def no_extension(name, package=None):
        if name == "cel.cel":
            raise ImportError("a package laid out differently")
        return real(name, package)
    importlib.import_module = no_extension
cel = celmodule.load_cel()
print(hasattr(cel, "cli"), cel.compile("1 + 1").execute(cel.Context()))
"""


@pytest.mark.parametrize("case", ["no-package", "no-extension"])
def test_the_cel_loader_falls_back_to_the_ordinary_import(case: str) -> None:
    # in a fresh interpreter: the Rust extension cannot be initialised twice in one process
    proc = subprocess.run([sys.executable, "-c", FALLBACK, case], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["True", "2"]  # the package's own __init__ ran


def test_the_diff_command_s_markdown_limit_is_the_renderer_s() -> None:
    # cli/diff.py spells the limit so that `diff --help` stays light; the two must not drift
    from compiler.cli import diff
    from compiler.diff import render

    assert diff.MARKDOWN_LIMIT == render.MARKDOWN_LIMIT


@pytest.mark.parametrize("argv", [["--version"], ["--help"]], ids=["version", "help"])
def test_the_error_paths_own_modules_wait_for_an_error(argv: list[str]) -> None:
    """difflib (the closest name of a usage error) and traceback (``--debug``) are not paid by every start-up."""
    assert not {"difflib", "traceback"} & loaded(*argv)


@pytest.mark.parametrize(
    "argv", [["--version"], ["--help"], ["validate", "--help"]], ids=["version", "help", "validate"]
)
def test_version_and_help_build_no_dataclass_and_format_no_json(argv: list[str]) -> None:
    """The command line's own modules stay light (issue 14 §1): dataclasses (inspect, ast: ~8 ms) waits
    for a command's Context, json for an error reported as JSON, shutil (bz2, lzma) is not argparse's
    way to the terminal width here."""
    light = {"json", "shutil", "bz2", "lzma"} if argv[0] == "validate" else {"dataclasses", "inspect", "json", "shutil"}
    assert not light & loaded(*argv)


def test_a_command_line_that_names_its_command_builds_only_that_command_s_parser() -> None:
    from compiler.cli import build_parser

    full = build_parser()
    only = build_parser(commands=["validate"])
    assert _commands_of(only) == ["validate"]
    assert _commands_of(full) == list(_commands.COMMANDS)
    assert _commands_of(build_parser(commands=[])) == list(_commands.COMMANDS)  # none named: every one listed


def _commands_of(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


# What validate --no-cache of the example does without (issue 14 §1): the atomic writer's tempfile
# (shutil, random), difflib (the hint of an unknown name), strptime's locale tables.
NOT_FOR_A_CHECK = {"tempfile", "shutil", "bz2", "lzma", "difflib", "_strptime"}


def test_validate_without_the_cache_loads_no_writer_and_no_error_hint(example_repo: GitRepo, tmp_path: Path) -> None:
    env = no_identity(tmp_path)
    mods = loaded("-C", str(example_repo.path), "validate", "--no-cache", code=0, env=env)
    assert mods & (NOT_FOR_VALIDATE | NOT_FOR_A_CHECK) == set()


def test_compiler_cli_context_still_resolves_on_first_use() -> None:
    probe = "import sys, compiler.cli as c; a = 'compiler.cli._context' in sys.modules; print(a, c.Context.__name__)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "Context"]
    import compiler.cli

    with pytest.raises(AttributeError, match="no attribute 'Contxt'"):
        getattr(compiler.cli, "Contxt")  # noqa: B009 - a name the module does not have


# What validate without the result cache does without (issue 14 §1): the cache's own modules (keys, file
# ids, the store, the guard's findings index, git revisions), the shard split without --shard, and the
# scalar check only encrypting runs.
NOT_WITHOUT_A_CACHE = {
    "compiler.incremental.run",
    "compiler.incremental.store",
    "compiler.incremental.key",
    "compiler.incremental.inputs",
    "compiler.incremental.filestat",
    "compiler.incremental.guard",
    "compiler.incremental.parsed",
    "compiler.incremental.entry",
    "compiler.incremental.documents",
    "compiler.audit.revisions",
    "compiler.shards",
    "compiler.secrets.scalars",
}


@pytest.mark.parametrize("how", ["flag", "env"])
def test_validate_without_the_cache_loads_none_of_the_cache_s_modules(
    example_repo: GitRepo, tmp_path: Path, how: str
) -> None:
    env = no_identity(tmp_path)
    argv = ["validate", "--no-cache"] if how == "flag" else ["validate"]
    if how == "env":
        env["LLMCC_NO_CACHE"] = "1"
    mods = loaded_modules(*argv, cwd=example_repo.path, env=env, code=0)
    assert mods & NOT_WITHOUT_A_CACHE == set()
    assert not (example_repo.path / ".llmcc").exists()  # and nothing written
    # with the cache on, the same command loads them (the probe sees them when they load)
    assert {"compiler.incremental.run", "compiler.incremental.store"} <= loaded_modules(
        "validate", cwd=example_repo.path, env=no_identity(tmp_path), code=0
    )


FROZEN = """
import gc, sys
from compiler.cli import main
if sys.argv[1] == "own":
    sys.argv = ["llmcc", "-q", "validate"]
    code = main()
else:
    code = main(["-q", "validate"])
print(code, gc.get_freeze_count() > 0)
"""


def test_validate_as_the_process_s_own_command_leaves_its_objects_to_the_os(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    """The collection at exit is skipped (gc.freeze) only where the process ends with validate: not for a
    caller of ``main([...])``, whose objects stay collectable; and what the frozen run wrote is whole."""
    from tests.incremental.test_cache_cli import entries, plant_warning

    env = no_identity(tmp_path)

    def probe(how: str) -> list[str]:
        argv = [sys.executable, "-c", FROZEN, how]
        proc = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=example_repo.path, env=env)
        return proc.stdout.split()

    assert probe("own") == ["0", "True"]
    written = entries(example_repo.path)
    assert len(written) == 6  # every target's entry, closed before the process ended
    plant_warning(written[0], "planted in the cache")  # it parses, and a hit prints what was planted
    proc = subprocess.run(
        [sys.executable, "-m", "compiler", "validate"], capture_output=True, text=True, cwd=example_repo.path, env=env
    )
    assert proc.returncode == 0
    assert "warning: planted in the cache" in proc.stderr
    assert probe("argv") == ["0", "False"]


def test_validate_freezes_only_where_it_is_the_process_s_command(
    example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from compiler.cli import main

    monkeypatch.chdir(example_repo.path)
    monkeypatch.setattr(sys, "argv", ["llmcc", "-q", "validate", "--no-cache"])
    try:
        assert main() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this test process goes on
    assert main(["-q", "validate", "--no-cache"]) == 0  # a caller's command line: its objects stay collectable
    assert gc.get_freeze_count() == 0
