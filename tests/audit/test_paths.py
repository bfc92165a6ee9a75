"""Issue 10 §5: every key is addressable, and what one command prints another accepts back.

``labels: {"app.kubernetes.io/name": gateway}`` and ``error_pages: {"404": ...}``:
``diff``, ``validate --format json``, ``history`` and ``explain`` print paths that
``explain`` and ``history`` take back as input, in every spelling people type.
"""

from __future__ import annotations

import json
import uuid

import pytest

from compiler.cli import diff as diff_cmd
from compiler.cli import explain as explain_cmd
from compiler.cli import history as history_cmd
from compiler.cli import main
from compiler.errors import UsageError
from tests.conftest import GitRepo
from tests.diff._support import FILES, encrypt, run_command, seed, write

PROD = """\
modules:
  engine:
    labels:
      app.kubernetes.io/name: {name}
      "it's a [key]": quoted
      "": empty
      'say "hi"': hello
      "a\\nb": control
    error_pages:
      "404": /{page}.html
    ports: [80, 443]
    routes:
      - {{name: chat, timeout: {timeout}}}
      - {{name: embed, timeout: 10}}
"""


def _prod(name: str, page: str, timeout: int) -> str:
    return PROD.format(name=name, page=page, timeout=timeout)


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    seed(git_repo)
    write(git_repo, {"environments/prod.yaml": _prod("gateway", "404", 30)})
    git_repo.commit("labels and error pages", author="Bob Example <bob@example.com>")
    write(git_repo, {"environments/prod.yaml": _prod("gateway-v2", "missing", 45)})
    git_repo.commit("rename the gateway", author="Carol Example <carol@example.com>")
    return git_repo


def _diff_paths(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert run_command(diff_cmd, repo.path, "HEAD~1", "HEAD", "--format", "json", "-t", "prod") == 0
    doc = json.loads(capsys.readouterr().out)
    (target,) = doc["targets"]
    return sorted(c["path"] for c in target["changes"])


def test_what_diff_prints_explain_and_history_accept(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _diff_paths(repo, capsys)
    assert paths == ["$.error_pages['404']", "$.labels['app.kubernetes.io/name']", "$.routes[name=chat].timeout"]
    for path in paths:
        assert run_command(explain_cmd, repo.path, "prod", "engine", path) == 0, path
        first = capsys.readouterr().out.splitlines()[0]
        assert first.startswith(f"prod engine {path.replace('[name=chat]', '[0]')} = ")
        assert run_command(explain_cmd, repo.path, "prod", f"engine{path}") == 0, path
        assert capsys.readouterr().out.splitlines()[0] == first
        assert run_command(history_cmd, repo.path, "prod", "engine", path) == 0, path
        out = capsys.readouterr().out
        assert out.startswith(f"prod engine {path.replace('[name=chat]', '[0]')}: 2 changes"), out


@pytest.mark.parametrize(
    ("address", "shown", "value"),
    [
        ("engine.labels['app.kubernetes.io/name']", "$.labels['app.kubernetes.io/name']", '"gateway-v2"'),
        ('engine.labels["app.kubernetes.io/name"]', "$.labels['app.kubernetes.io/name']", '"gateway-v2"'),
        ("engine$.labels['app.kubernetes.io/name']", "$.labels['app.kubernetes.io/name']", '"gateway-v2"'),
        ("engine.labels.app.kubernetes.io/name", None, None),  # dots inside a key need quotes
        ("engine.error_pages.404", "$.error_pages['404']", '"/missing.html"'),  # a map: 404 is a key
        ("engine.error_pages[404]", "$.error_pages['404']", '"/missing.html"'),
        ("engine.error_pages['404']", "$.error_pages['404']", '"/missing.html"'),
        ("engine.ports.1", "$.ports[1]", "443"),  # a list: 1 is an index
        ("engine.ports['1']", None, None),  # a quoted key is never an index
        ('engine.labels["it\'s a [key]"]', "$.labels['it\\'s a [key]']", '"quoted"'),
        ("engine.labels['']", "$.labels['']", '"empty"'),
        ("engine.labels['a\\nb']", "$.labels['a\\nb']", '"control"'),
        ("engine.routes[name=chat].timeout", "$.routes[0].timeout", "45"),
        ('config["engine"].labels["app.kubernetes.io/name"]', "$.labels['app.kubernetes.io/name']", '"gateway-v2"'),
        ('config.engine.error_pages["404"]', "$.error_pages['404']", '"/missing.html"'),
    ],
)
def test_explain_accepts_every_spelling(
    repo: GitRepo, capsys: pytest.CaptureFixture[str], address: str, shown: str | None, value: str | None
) -> None:
    code = run_command(explain_cmd, repo.path, "prod", address)
    out, err = capsys.readouterr()
    if shown is None:
        assert code == 2
        assert err.startswith("llmcc: prod: engine$")
        assert ": no value in this target" in err
        return
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"prod engine {shown} = {value}"
    assert run_command(explain_cmd, repo.path, "prod", "engine", shown, "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["path"] == shown


def test_history_of_a_digit_key_and_of_a_path_that_never_existed(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(history_cmd, repo.path, "prod", "engine.error_pages.404", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["path"] == "$.error_pages['404']"
    assert [(c["kind"], c["new"]) for c in doc["changes"]] == [
        ("changed", "/missing.html"),
        ("introduced", "/404.html"),
    ]
    assert run_command(history_cmd, repo.path, "prod", "engine.error_pages.500") == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("llmcc: prod: engine$.error_pages[500]: no value in the 3 commits that touched its files\n")
    assert run_command(history_cmd, repo.path, "prod", "engine.labels[app.kubernetes.io/name]") == 2
    assert "is not a path: expected a list index, a quoted key" in capsys.readouterr().err
    assert run_command(history_cmd, repo.path, "prod", "engine.x", "$.y") == 2
    assert "give the path once" in capsys.readouterr().err


def test_a_path_in_commits_that_do_not_compile_only_is_exit_2(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, {"environments/prod.yaml": "modules: [\n"})
    repo.commit("broken", author="Dan Example <dan@example.com>")
    assert run_command(history_cmd, repo.path, "prod", "engine.nothing") == 2
    assert capsys.readouterr().err.endswith("in the 4 commits that touched its files; 1 did not compile\n")


def test_validation_diagnostics_print_paths_explain_accepts(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads(FILES["schemas/engine.schema.json"])
    schema["properties"]["labels"] = {"type": "object", "additionalProperties": {"type": "integer"}}
    write(repo, {"schemas/engine.schema.json": json.dumps(schema, indent=2)})
    assert main(["-C", str(repo.path), "validate", "--target", "prod", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    paths = sorted({d["path"] for d in doc["diagnostics"] if d.get("path")})
    assert "$.labels['app.kubernetes.io/name']" in paths
    assert "$.labels['']" in paths
    for path in paths:
        assert run_command(explain_cmd, repo.path, "prod", "engine", path) == 0, path
        assert capsys.readouterr().out.startswith(f"prod engine {path} = ")


def test_policy_note_finds_the_line_of_a_quoted_key(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """The finding's ``config[...]`` selection, escapes included, is read with the one path parser."""
    rule = 'config["engine"].labels["say \\"hi\\""] == "bye"'
    write(repo, {"policies/names.yaml": f"- name: greeting\n  rule: |-\n    {rule}\n"})
    assert main(["-C", str(repo.path), "validate", "--target", "prod"]) == 1
    err = capsys.readouterr().err
    assert 'policy greeting failed: config["engine"].labels["say \\"hi\\""] is "hello"' in err
    assert "    environments/prod.yaml:7:7: the value is set here (layer prod)\n" in err


def test_policy_note_for_a_selection_in_dot_form(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo, {"policies/ports.yaml": '- name: low-ports\n  rule: config.engine.error_pages["404"] == "/"\n'})
    assert main(["-C", str(repo.path), "validate", "--target", "prod"]) == 1
    err = capsys.readouterr().err
    assert 'policy low-ports failed: config.engine.error_pages["404"] is "/missing.html"' in err
    assert "    environments/prod.yaml:10:7: the value is set here (layer prod)\n" in err


def test_history_below_a_secret_is_the_secret(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """A path under a secret field stands for the secret: its history is the secret's, masked."""
    encrypt(repo, "environments/prod.secrets.sops.yaml", f"modules:\n  engine:\n    api_key: canary-{uuid.uuid4()}\n")
    repo.commit("prod key", author="Sam Secops <sam@example.com>")
    assert run_command(history_cmd, repo.path, "prod", "engine.api_key[0].x") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "prod engine $.api_key[0].x: 1 change in 2 commits that touched its files"
    assert out[-1] == "    <secret added>"


@pytest.mark.parametrize(
    "message",
    [
        'config["nomodule"].x is 1',  # not a module of the target
        'config["engine"].labels["\\x41"] is 1',  # a CEL escape the path syntax does not share
        'config["engine"].nothing.here is 1',  # no value there
    ],
)
def test_policy_note_is_left_out_when_the_finding_names_no_value(repo: GitRepo, message: str) -> None:
    from compiler.compile.pipeline import compile_target
    from compiler.compile.repository import Repository
    from compiler.diagnostics import Diagnostic, Severity
    from compiler.policy import PolicyCheck
    from compiler.project import Target
    from compiler.sources.worktree import WorkTree

    rendered = Repository(WorkTree(repo.path))
    result = compile_target(rendered, Target("prod"), validate=False)
    diag = Diagnostic(message=message, severity=Severity.ERROR, rule="r")
    assert PolicyCheck(rendered, policies=None)._locate(diag, result) == diag


def test_value_history_checks_its_own_arguments(repo: GitRepo) -> None:
    """The library call checks what the command checks before it (the command needs the modules first)."""
    from compiler.audit.history import value_history
    from compiler.compile.repository import Repository
    from compiler.errors import UsageError
    from compiler.project import Target
    from compiler.sources.gitrev import GitRevTree

    def open_repo(commit: str) -> Repository:
        return Repository(GitRevTree(repo.path, commit))

    def call(module: str, start: str) -> None:
        value_history(repo.path, Target("prod"), module, ("x",), open_repo=open_repo, key=b"k" * 32, start=start)

    with pytest.raises(UsageError, match="unknown revision 'nope'"):
        call("engine", "nope")
    with pytest.raises(UsageError, match="unknown module 'nomodule'; modules: engine"):
        call("nomodule", "HEAD")


def test_explain_never_selects_a_list_item_by_a_secret_field(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """``[name=GUESS]`` on a secret field answered exit 0 for the right guess: an oracle for the secret."""
    from tests.conftest import DEMO_IDENTITY

    schema = json.loads((repo.path / "schemas/engine.schema.json").read_text())
    item = {"type": "object", "properties": {"name": {"type": "string", "x-secret": True}}}
    schema["properties"]["tokens"] = {"type": "array", "items": item}
    repo.write("schemas/engine.schema.json", json.dumps(schema))
    canary = f"canary-{uuid.uuid4()}"
    body = f"modules:\n  engine:\n    tokens:\n      - {{name: {canary}, scope: read}}\n"
    encrypt(repo, "environments/prod.secrets.sops.yaml", body)
    repo.commit("a token")
    for guess in (canary, "wrong"):
        for extra in ([], ["--identity", str(DEMO_IDENTITY)]):
            assert run_command(explain_cmd, repo.path, "prod", f"engine.tokens[name={guess}].scope", *extra) == 2
            err = capsys.readouterr().err
            assert err == "llmcc: $.tokens[name=...]: name is a secret field; select the item by its index\n"
    assert run_command(explain_cmd, repo.path, "prod", "engine.tokens[0].scope", "--identity", str(DEMO_IDENTITY)) == 0


def test_an_item_selection_below_a_whole_secret_list_is_refused_too() -> None:
    from compiler.jsonpath import ItemKey

    value = {"tokens": [{"name": "x"}], "open": [{"name": "y"}]}
    with pytest.raises(UsageError, match=r"\$\.tokens\[name=\.\.\.\]: name is a secret field"):
        explain_cmd._refuse_secret_items(value, ("tokens", ItemKey("name", "x")), [("tokens",)])
    explain_cmd._refuse_secret_items(value, ("open", ItemKey("name", "y")), [("tokens",), ("open", 0, "v")])
    explain_cmd._refuse_secret_items(value, ("gone", ItemKey("name", "y")), [])
