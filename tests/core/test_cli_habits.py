"""Everyday CLI habits (issue 13 §6), through the real entry point: a subdirectory, global options
everywhere, suggestions, descriptions, ``--format json``, colour, ``--store PATH``, unpublished targets."""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.cli import build_parser, main
from compiler.cli._context import MANIFEST
from compiler.project import MANIFEST as PROJECT_MANIFEST
from tests.conftest import GitRepo, init_repo
from tests.core._repos import mini_repo

SIGNING = ["--signing-key", "keys/demo-signing.pem"]
TARGETS = ["dev", "prod", "prod@acme", "prod@globex", "staging", "staging@acme"]


def llmcc(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_the_manifest_name_is_the_projects() -> None:
    assert MANIFEST == PROJECT_MANIFEST  # _context repeats it to stay light at import


# --- run from any subdirectory --------------------------------------------------------------------


def test_a_command_in_a_subdirectory_works_on_the_repository_above(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = example_repo.path
    expected = (0, "", "llmcc: validate ok: 6 targets, 0 errors, 0 warnings\n")
    monkeypatch.chdir(root / "environments" / "tenants")
    assert llmcc(capsys, "validate") == expected
    monkeypatch.chdir(root.parent)
    assert llmcc(capsys, "-C", str(root / "templates"), "validate") == expected  # -C DIR: as if started there


def test_diff_from_a_subdirectory_is_the_diff_from_the_root(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = example_repo.path
    prod = root / "environments/prod.yaml"
    prod.write_text(prod.read_text().replace("temperature: 0.3", "temperature: 0.4"))
    example_repo.commit("prod: warmer")
    at_root = llmcc(capsys, "-C", str(root), "diff", "HEAD~1", "HEAD")
    assert at_root[0] == 0
    assert "temperature" in at_root[1]
    monkeypatch.chdir(root / "environments")
    assert llmcc(capsys, "diff", "HEAD~1", "HEAD") == at_root


def test_the_search_upwards_stops_at_the_git_work_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mini_repo(tmp_path)  # an llmcc.yaml above, outside the inner repository
    inner = init_repo(tmp_path / "inner").path
    code, out, err = llmcc(capsys, "-C", str(inner), "validate")
    assert (code, out) == (2, "")
    assert err.startswith(f"llmcc: {inner}: no llmcc.yaml here or in a directory above")


@pytest.mark.parametrize("command", [["validate"], ["pull", "prod"], ["agent", "-t", "prod", "--token-file", "t"]])
def test_minus_c_names_a_directory_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """``-C`` with a path that does not exist, or is a file, says so, not "no llmcc.yaml here" (a typo)."""
    missing = tmp_path / "no-such-dir"
    assert llmcc(capsys, "-C", str(missing), *command) == (2, "", f"llmcc: -C {missing}: no such directory\n")
    (tmp_path / "file").write_text("")
    assert llmcc(capsys, "-C", str(tmp_path / "file"), *command) == (
        2,
        "",
        f"llmcc: -C {tmp_path / 'file'}: not a directory\n",
    )


@pytest.mark.parametrize("command", [["pull", "prod"], ["verify"], ["exec", "-t", "prod", "--", "true"]])
def test_outside_a_repository_no_trusted_keys_says_there_is_no_llmcc_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """Outside any config repository the missing keys are explained by the missing llmcc.yaml, and the
    line names the flag that passes them without one."""
    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.chdir(tmp_path)
    at = command.index("--") if "--" in command else len(command)
    code, out, err = llmcc(capsys, *command[:at], "--store", str(store), *command[at:])
    assert (code, out) == (2, "")
    assert err == (
        f"llmcc: no trusted keys: no llmcc.yaml in {tmp_path} or a directory above, so no signing.trusted;"
        " pass the publisher's public key with --trusted-key FILE (or use -C DIR for a config repository)\n"
    )


def test_relative_file_arguments_are_taken_from_where_llmcc_runs(
    example_repo: GitRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(example_repo.path / "policies")
    code, out, _ = llmcc(capsys, "policy", "test", "tests/data.yaml")
    assert code == 0
    assert out.splitlines()[0].startswith("PASS policies/tests/data.yaml:")


# --- global options, descriptions, suggestions ----------------------------------------------------


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _parsers(sub)


def test_every_subcommand_has_a_description_and_the_global_options() -> None:
    parsers = list(_parsers(build_parser()))
    assert {p.prog for p in parsers} >= {"llmcc policy test", "llmcc secrets edit", "llmcc hook validate"}
    for p in parsers:
        assert p.description, p.prog
        assert {"-C", "-q", "--quiet", "--debug"} <= set(p._option_string_actions), p.prog


def test_global_options_after_a_nested_subcommand(
    example_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = llmcc(capsys, "policy", "test", "-C", str(example_repo.path), "-q")
    assert (code, err) == (0, "")
    assert out.startswith("PASS ")
    code, _, err = llmcc(capsys, "hook", "secrets-guard", "-C", str(example_repo.path))
    assert code == 0
    assert re.search(r"^llmcc: secrets-guard ok: \d+ files$", err, re.M)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["valdate"], "unknown command 'valdate' (did you mean 'validate'?) (see llmcc --help)"),
        (
            ["validate", "--fomat", "json"],
            "unknown option '--fomat' (did you mean '--format'?) (see llmcc validate --help)",
        ),
        (
            ["validate", "--format", "jsn"],
            "argument --format: invalid choice 'jsn' (did you mean 'json'?) (see llmcc validate --help)",
        ),
        (["policy", "tset"], "unknown command 'tset' (did you mean 'test'?) (see llmcc policy --help)"),
        (
            ["policy", "test", "--formt=json"],
            "unknown option '--formt' (did you mean '--format'?) (see llmcc policy test --help)",
        ),
        (
            ["secrets", "edit", "f", "--identty", "k"],
            "unknown option '--identty' (did you mean '--identity'?) (see llmcc secrets edit --help)",
        ),
        (["verify", "stray"], "unexpected argument 'stray' (see llmcc verify --help)"),
        (["compile", "--zzz"], "unknown option '--zzz' (expected one of: "),
    ],
)
def test_a_usage_error_suggests_the_closest_name_and_the_commands_help(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = llmcc(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"llmcc: {message}")
    assert len(err.splitlines()) == 1


# --- --format json ------------------------------------------------------------------------------------


def test_publish_verify_and_policy_test_print_one_json_document(
    example_repo: GitRepo, demo_identity: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(example_repo.path)
    code, out, _ = llmcc(capsys, "-C", root, "publish", *SIGNING, "--target", "prod", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True
    assert [(t["target"], t["status"], t["version"]) for t in doc["targets"]] == [("prod", "published", 1)]
    assert doc["targets"][0]["digest"].startswith("sha256:")

    code, out, _ = llmcc(capsys, "-C", root, "verify", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["ok"], doc["exit_code"]) == (True, 0)
    assert [(t["target"], t["status"]) for t in doc["targets"]] == [("prod", "verified")] + [
        (t, "unpublished") for t in TARGETS if t != "prod"
    ]
    assert doc["targets"][0]["versions"] == 1

    code, out, _ = llmcc(capsys, "-C", root, "verify", "--target", "staging", "--format", "json")
    doc = json.loads(out)
    assert (code, doc["ok"], doc["exit_code"]) == (3, False, 3)
    assert doc["targets"] == [
        {"target": "staging", "status": "failed", "errors": ["staging: nothing published in file://.llmcc/store"]}
    ]

    code, out, _ = llmcc(capsys, "-C", root, "publish", *SIGNING, "--refresh-pointer", "--format", "json")
    assert code == 0
    assert [(t["target"], t["status"]) for t in json.loads(out)["targets"]] == [("prod", "pointer-refreshed")]

    code, out, err = llmcc(capsys, "-C", root, "policy", "test", "--format", "json")
    doc = json.loads(out)
    assert (code, err, doc["ok"], doc["failed"]) == (0, "", True, 0)
    assert doc["passed"] == len(doc["cases"]) > 10
    assert doc["cases"][0].keys() == {"location", "name", "ok", "failures"}


def test_a_failed_policy_case_in_json(example_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    cases = example_repo.path / "policies/tests/production.yaml"
    cases.write_text(cases.read_text().replace("prod-temperature-bounded: pass", "prod-temperature-bounded: fail", 1))
    code, out, _ = llmcc(capsys, "-C", str(example_repo.path), "policy", "test", "--format", "json")
    doc = json.loads(out)
    assert (code, doc["ok"], doc["exit_code"], doc["failed"]) == (1, False, 1, 1)
    assert [c["failures"] for c in doc["cases"] if not c["ok"]] == [
        ["prod-temperature-bounded: expected fail, got pass"]
    ]


# --- verify names what is missing; --store PATH -------------------------------------------------------


def test_verify_lists_the_targets_with_nothing_published_and_a_store_path_is_a_file_store(
    example_repo: GitRepo, demo_identity: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(example_repo.path)
    store = tmp_path / "store"
    assert llmcc(capsys, "-C", root, "publish", *SIGNING, "-t", "prod", "-t", "dev", "--store", str(store))[0] == 0
    assert (store / "prod").is_dir()
    code, out, _ = llmcc(capsys, "-C", root, "verify", "--store", str(store))
    assert code == 0
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["dev", "prod"]
    assert lines[2:] == [
        f"{t}: nothing published (a target of llmcc.yaml)" for t in TARGETS if t not in ("dev", "prod")
    ]
    # a relative PATH is taken from the config repository, like file://PATH in llmcc.yaml
    assert llmcc(capsys, "-C", root, "publish", *SIGNING, "-t", "dev", "--store", "relstore")[0] == 0
    assert (example_repo.path / "relstore" / "dev").is_dir()
    code, _, err = llmcc(capsys, "-C", root, "verify", "--store", "s3:bucket")
    assert code == 2
    assert "s3:bucket: unknown store" in err


# --- colour ---------------------------------------------------------------------------------------------


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """stdout of ``python -m compiler ARGV`` written to a pseudo-terminal."""
    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "compiler", *argv], stdout=child_fd, stderr=subprocess.DEVNULL, env=env
    )
    os.close(child_fd)
    chunks = []
    while True:
        try:
            data = os.read(main_fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main_fd)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode()


@pytest.mark.parametrize(
    ("extra", "coloured"),
    [({"TERM": "xterm"}, True), ({"TERM": "dumb"}, False), ({"TERM": "xterm", "NO_COLOR": "1"}, False)],
)
def test_colour_only_on_a_terminal_that_has_it(example_repo: GitRepo, extra: dict[str, str], coloured: bool) -> None:
    prod = example_repo.path / "environments/prod.yaml"
    prod.write_text(prod.read_text().replace("temperature: 0.3", "temperature: 0.4"))
    example_repo.commit("prod: warmer")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")} | extra
    out = _on_a_terminal(["-C", str(example_repo.path), "diff", "HEAD~1", "HEAD"], env)
    assert "temperature" in out
    assert bool(re.search("\x1b\\[", out)) is coloured
