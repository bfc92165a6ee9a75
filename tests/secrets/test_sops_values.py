"""Secret values sops treats specially: each works from SOPS file to ``pull --decrypt``, or is refused
with its real cause (issue 10 §7).

Found with the real sops 3.11 binary (tests/secrets/test_sops_scalars.py holds the scalar corpus):

- an empty string and null are never encrypted: an empty secret is refused (anyone can read that it
  is empty); null stays null;
- a float with an integral value (``1.0``, ``1e3``) comes back from sops as an integer: llmcc
  restores the float from the type sops recorded;
- strings that look like numbers, dates or booleans, multi-line, long, control characters, astral
  Unicode, a value shaped like sops or llmcc ciphertext, keys with dots, slashes, brackets, quotes,
  digits only or named ``sops``, comments, lists of secrets: exact end to end;
- ``!!binary`` (not UTF-8) comes back from sops with U+FFFD in place of its bytes: refused;
- an unquoted date becomes a sops timestamp and is rewritten: refused at validate and compile;
- NaN and infinity have no JSON form: sops fails, the error says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.secrets.sops import sops_binary
from tests.conftest import DEMO_IDENTITY, GitRepo
from tests.secrets._secrets_support import new_canary
from tests.storage._cli import llmcc

DEV = "environments/dev.secrets.sops.yaml"
EDGE_SCHEMA = '{"type": "object", "properties": {"s": {"type": "object", "additionalProperties": {"x-secret": true}}}}'


def edge_values() -> dict[str, object]:
    """Secret values (and keys) sops treats differently from a plain string; canaries where a string."""
    c = new_canary
    return {
        "multiline": f"line one\nline two\n  indented {c()}\n",
        "long": " ".join([c()] * 3000),  # ~130 kB with spaces: sops's emitter would fold it
        "unicode": f"é✓𝄞 {c()}",
        "controls": f"tab\there\r\nbell\x07esc\x1bnul\x00{c()}",
        "spaces": f"  {c()}  ",
        "sops_lookalike": f"ENC[AES256_GCM,data:{c()[7:15]}=,iv:abc=,tag:abc=,type:str]",
        "llmcc_lookalike": "ENC[AES256_GCM_SIV,data:,iv:,tag:,type:str]",
        "number_text": "0755",
        "date_text": "2024-01-01",
        "bool_text": "yes",
        "null_text": "null",
        "tilde": "~",
        "hash": f"a # not a comment {c()}",
        "dotted.key": c(),
        "slash/key": c(),
        "[bracket]": c(),
        'quote"key': c(),
        "404": c(),
        "sops": c(),
        "ünïcode key": c(),
        "int": 42,
        "neg": -7,
        "big": 2**62,
        "float_integral": 1.0,
        "float_exp": 1e3,
        "float": 0.1,
        "bool": True,
        "nothing": None,
        "list": [c(), c(), 3],
    }


def sops_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "SOPS_AGE_KEY_FILE": str(DEMO_IDENTITY), "HOME": "/nonexistent"}


def sops(root: Path, *argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sops_binary(), "--disable-version-check", *argv],
        input=stdin,
        capture_output=True,
        cwd=root,
        env=sops_env(),
        check=False,
    )


def put_edge(root: Path, plaintext: str) -> None:
    """dev's secrets plus an ``edge`` module from ``plaintext``, encrypted straight by sops (no llmcc checks)."""
    current = sops(root, "decrypt", "--output-type", "json", DEV)
    assert current.returncode == 0
    modules = json.loads(current.stdout)["modules"]
    edge = "modules:\n" + "".join(f"  {json.dumps(k)}: {json.dumps(v)}\n" for k, v in modules.items())
    edge += "  edge:\n" + plaintext
    proc = sops(root, "encrypt", "--filename-override", DEV, "--input-type", "yaml", "--output-type", "yaml",
                "/dev/stdin", stdin=edge.encode())  # fmt: skip
    assert proc.returncode == 0, proc.returncode
    (root / DEV).write_bytes(proc.stdout)


def at(root: Path, key: str) -> str:
    """``path:line:col`` of the one ``key:`` in dev's secrets file."""
    lines = (root / DEV).read_text().splitlines()
    (n,) = [i for i, line in enumerate(lines) if line.lstrip().startswith(f"{key}:")]
    return f"{DEV}:{n + 1}:{lines[n].index(key) + 1}"


@pytest.fixture
def edge_repo(example_repo: GitRepo, demo_identity: Path) -> GitRepo:
    example_repo.write("schemas/edge.schema.json", EDGE_SCHEMA + "\n")
    example_repo.write("templates/edge.yaml", "{}\n")  # every schema has its template (issue 10 §1)
    return example_repo


def test_special_values_reach_pull_decrypt_exactly(
    edge_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = edge_repo.path
    values = edge_values()
    # Through `llmcc secrets edit`: the editor appends the values as JSON (quoted, so YAML 1.1 and 1.2 agree).
    body = "    edge:\n        # a comment sops encrypts\n        s:\n" + "".join(
        f"            {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}\n" for k, v in values.items()
    )
    script = tmp_path / "editor.py"
    script.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        "path = sys.argv[-1]\ntext = open(path, encoding='utf-8').read()\n"
        "edge = open(os.environ['EDGE'], encoding='utf-8').read()\n"
        "open(path, 'w', encoding='utf-8').write(text.replace('modules:\\n', 'modules:\\n' + edge, 1))\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(script))
    edge = tmp_path / "edge.yaml"
    edge.write_text(body, encoding="utf-8")
    monkeypatch.setenv("EDGE", str(edge))
    try:
        assert llmcc(root, "secrets", "edit", DEV) == 0
    finally:
        edge.unlink()  # plaintext: not left for the canary sweep
    assert not any(str(v) in (root / DEV).read_text() for v in values.values() if isinstance(v, str) and "canary" in v)
    edge_repo.commit("edge values")

    assert llmcc(root, "publish", "-t", "dev", "--signing-key", "keys/demo-signing.pem") == 0
    out = tmp_path / "dev.json"
    assert llmcc(root, "pull", "dev", "--decrypt", "--out", str(out)) == 0
    capsys.readouterr()
    pulled = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()  # plaintext: not left for the canary sweep
    got = pulled["edge"]["s"]
    assert got == values
    # same types, not only equal values: 1.0 stays a float, 42 an integer
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in values.items()}
    assert got["list"] == values["list"]


def refused(root: Path, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = llmcc(root, *argv)
    err = capsys.readouterr().err
    return code, err


def test_an_empty_secret_is_refused_with_its_cause(edge_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = edge_repo.path
    put_edge(root, '    s:\n      edgepw: ""\n')
    for command in ("validate", "compile"):
        code, err = refused(root, command, "-t", "dev", capsys=capsys)
        assert code == 1
        assert f"{at(root, 'edgepw')}: edge $.s.edgepw: empty secret: sops does not encrypt an empty string" in err


def test_a_sops_timestamp_is_refused_at_validate_and_compile(
    edge_repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    """``password: 2024-01-01`` encrypted by sops itself: a string schema would take the rewritten text."""
    root = edge_repo.path
    put_edge(root, "    s:\n      edgepw: 2024-01-01\n")
    for command in ("validate", "compile"):
        code, err = refused(root, command, "-t", "dev", capsys=capsys)
        assert code == 1
        assert f"{at(root, 'edgepw')}: edge $.s.edgepw: sops stored this value as a timestamp" in err
        assert "quote it" in err


def test_a_binary_secret_is_refused_with_its_cause(edge_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    root = edge_repo.path
    put_edge(root, "    s:\n      edgekey: !!binary /w==\n")
    code, err = refused(root, "compile", "-t", "dev", capsys=capsys)
    assert code == 2
    assert f"{at(root, 'edgekey')}: $.modules.edge.s.edgekey: not UTF-8 text" in err


@pytest.mark.parametrize("value", [".inf", ".nan"])
def test_nan_and_infinity_are_refused_with_their_cause(
    edge_repo: GitRepo, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    root = edge_repo.path
    put_edge(root, f"    s:\n      ratio: {value}\n")
    code, err = refused(root, "compile", "-t", "dev", capsys=capsys)
    assert code == 2
    assert f"{DEV}: sops could not decrypt: a decrypted value has no JSON form (NaN or infinity)" in err


def test_a_string_schema_gets_a_typed_sops_value_masked(edge_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """Any other type that disagrees with the schema is the schema's error, the value masked."""
    root = edge_repo.path
    edge_repo.write(
        "schemas/edge.schema.json",
        '{"type": "object", "properties": {"pin": {"type": "string", "x-secret": true}}}\n',
    )
    put_edge(root, "    pin: 0755\n")
    for command in ("validate", "compile"):
        code, err = refused(root, command, "-t", "dev", capsys=capsys)
        assert code == 1
        assert "edge $.pin: the secret value is not of type " in err
        assert "493" not in err
        assert "755" not in err
