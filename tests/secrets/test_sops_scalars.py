"""``compiler.secrets.scalars`` against the real sops binary: every plain scalar sops reads otherwise
than llmcc is refused, and the YAML 1.1 type repository's forms are refused too (issue 9 §5)."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pyrage
import pytest

from compiler.load.yaml import load_document
from compiler.secrets.editcheck import check_edited, editor_command, main
from compiler.secrets.scalars import ambiguous_scalars, disagreement, go_yaml_reading, yaml11_reading
from compiler.secrets.sops import sops_binary

# Candidates from the YAML 1.1 type repository (yaml.org/type: bool, int, float, null, timestamp,
# merge, value), go-yaml v3's resolve.go, and YAML 1.2 core: each read as "v: <text>".
CORPUS = [
    *[
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
    ],
    *["~", "null", "Null", "NULL"],
    *[
        "0",
        "00",
        "07",
        "0755",
        "012",
        "-012",
        "+012",
        "08",
        "09",
        "0b101",
        "-0b1",
        "0B11",
        "0o17",
        "0O17",
        "0x1F",
        "-0x1f",
        "0X1F",
        "0x_1F",
        "1_000",
        "-1_000",
        "1__0",
    ],
    *[
        "12",
        "+12",
        "-12",
        "-0",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
    ],
    *["18446744073709551615", "18446744073709551616", "123456789012345678901234", "0xFFFFFFFFFFFFFFFFFF"],
    *["1:30", "-1:30", "190:20:30", "1:30.5", "1:61", "0:30"],
    *[
        "1.0",
        "1.",
        ".5",
        ".1_0",  # Go's ParseFloat allows "_" between digits
        "._5",
        ".5_",
        "-.5",
        "+.5",
        "1e3",
        "1E3",
        "1e+3",
        "1.5e-3",
        "1_000.5",
        "6.8523015e+5",
        "685.230_15e+03",
        "1e400",
        "-1e400",
        "1.2.3",
    ],
    *[".inf", "-.inf", "+.inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", "inf", "nan"],
    "2024-01-01",
    "2024-1-1",
    "2024-01-01T10:00:00Z",
    "2024-01-01t10:00:00Z",
    "2001-12-14 21:59:43.10",
    "2001-12-14 21:59:43.10 -5",
    "2024-01-01 foo",
    *["<<", "=", "-", "+", ".", "_", "1:", "a:b", "10:00", "0x", "0b", "0o"],
    *["hello", "1a", "a1", "x1_000", "0755abc"],
]


def _sops_round_trip(tmp_path: Path, texts: list[str]) -> dict[str, object]:
    """Each text through the real sops (encrypt, then decrypt as llmcc does): text -> value or 'FAILS'."""
    ident = pyrage.x25519.Identity.generate()
    key = tmp_path / "k.txt"
    key.write_text(f"{ident}\n")
    env = {"PATH": os.environ.get("PATH", ""), "SOPS_AGE_KEY_FILE": str(key), "HOME": str(tmp_path)}
    out: dict[str, object] = {}
    for text in texts:
        enc = subprocess.run(
            [sops_binary(), "--disable-version-check", "encrypt", "--age", str(ident.to_public()),
             "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"],
            input=f"v: {text}\n".encode(), capture_output=True, env=env, cwd=tmp_path, check=False,
        )  # fmt: skip
        if enc.returncode != 0:
            out[text] = "FAILS"
            continue
        dec = subprocess.run(
            [sops_binary(), "--disable-version-check", "decrypt", "--input-type", "yaml", "--output-type", "json",
             "/dev/stdin"],
            input=enc.stdout, capture_output=True, env=env, cwd=tmp_path, check=False,
        )  # fmt: skip
        if dec.returncode != 0:
            out[text] = "FAILS"
            continue
        value = json.loads(dec.stdout)["v"]
        kind = enc.stdout.decode().split("type:", 1)[1].split("]", 1)[0] if "type:" in enc.stdout.decode() else ""
        out[text] = (float(value) if kind == "float" else value, kind)
    return out


def _llmcc(text: str) -> object:
    try:
        return load_document(f"v: {text}\n".encode(), path="x", layer="x").value["v"]  # type: ignore[index,call-overload]
    except Exception:  # noqa: BLE001 - llmcc refuses it itself (e.g. infinity): not a silent change
        return "REFUSED"


def test_every_scalar_the_real_sops_changes_is_refused(tmp_path: Path) -> None:
    """No false negatives against the real binary: what sops changes, llmcc refuses before encrypting."""
    through_sops = _sops_round_trip(tmp_path, CORPUS)
    changed = []
    for text in CORPUS:
        mine = _llmcc(text)
        theirs = through_sops[text]
        if mine == "REFUSED":
            continue
        if theirs == "FAILS":
            changed.append(text)
            continue
        value, kind = theirs  # type: ignore[misc]
        same = type(value) is type(mine) and (value == mine or (isinstance(mine, float) and math.isnan(mine)))
        if kind == "time" or not same:
            changed.append(text)
    missed = [t for t in changed if disagreement(t) is None]
    assert missed == []
    # the ones the issue names, and the tally, so a sops upgrade that changes its reader shows up here
    assert {"0755", "012", "1_000", "2024-01-01"} <= set(changed)
    assert len(changed) >= 20


# A tag that sops (go-yaml v3) resolves like a plain scalar: "!" on a plain scalar means no tag
# to go-yaml and a string to llmcc; "!!int 0755" is 755 to llmcc and 493 to sops, quoted or not.
TAGGED = [
    f"{tag} {text}"
    for tag in ("!", "!!int", "!!float", "!!bool", "!!null", "!!str")
    for text in ("0755", '"0755"', "012", "1_000", ".1_0", "0b101", "0x1F", "12", "1e3", "true", "~", "2024-01-01")
]


def test_every_tagged_scalar_the_real_sops_changes_is_refused(tmp_path: Path) -> None:
    """Tags do not hide a value from the check: ``! 0755`` and ``!!int "0755"`` reach sops as 493."""
    through_sops = _sops_round_trip(tmp_path, TAGGED)
    changed = []
    for text in TAGGED:
        mine = _llmcc(text)
        theirs = through_sops[text]
        if mine == "REFUSED" or theirs == "FAILS":
            continue  # refused by llmcc's loader, or sops will not encrypt it: nothing changes silently
        value, kind = theirs  # type: ignore[misc]
        if kind == "time" or type(value) is not type(mine) or value != mine:
            changed.append(text)
    missed = [t for t in changed if not ambiguous_scalars(f"v: {t}\n".encode(), path="x")]
    assert missed == []
    assert {"! 0755", '!!int "0755"', "!!int 012", "! 2024-01-01", "!!float 0755"} <= set(changed)
    assert ambiguous_scalars(b"v: ! 0755\n", path="x") == [
        "x:1:4: sops ignores the tag ! and reads this value as an octal integer, llmcc (YAML 1.2) as a string: quote it"
    ]
    assert ambiguous_scalars(b'v: !!int "0755"\n', path="x") == [
        "x:1:4: with the tag !!int, sops reads this value as an octal integer, llmcc (YAML 1.2) as a decimal "
        "integer: drop the tag and quote it"
    ]
    assert ambiguous_scalars(b'v: ! "0755"\nw: !!str 0755\nz: !!int 12\n', path="x") == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("yes", "a boolean"),
        ("Off", "a boolean"),
        ("y", "a boolean"),
        ("1:30", "a base-60 integer"),
        ("-1:30", "a base-60 integer"),
        ("1:30.5", "a base-60 float"),
        ("-1:30.5", "a base-60 float"),
        ("0b1_0", "a binary integer"),
        ("0x_1F", "a hexadecimal integer"),
        ("0755", "an octal integer"),
        ("1_000", "an integer"),
        ("1.5", "a float"),
        ("1.2.3", "a float"),
        ("-.inf", "infinity"),
        (".NaN", "NaN"),
        ("~", "null"),
        ("2001-12-14t21:59:43.10-05:00", "a timestamp"),
        ("<<", "a merge key"),
        ("=", "a value key"),
        ("1e3", "a string"),  # YAML 1.1 floats need a dot
    ],
)
def test_yaml11_type_repository(text: str, kind: str) -> None:
    assert yaml11_reading(text)[0] == kind


def test_yaml11_values() -> None:
    assert yaml11_reading("1:30")[1] == 90
    assert yaml11_reading("-1:30.5")[1] == -90.5
    assert yaml11_reading("0755")[1] == 493
    assert yaml11_reading("0x1F")[1] == 31
    assert yaml11_reading("-0b11")[1] == -3
    assert math.isnan(yaml11_reading("1.2.3")[1])  # type: ignore[arg-type]
    assert yaml11_reading(".inf")[1] == math.inf


def test_go_yaml_readings() -> None:
    assert go_yaml_reading("0755") == ("an octal integer", 493)
    assert go_yaml_reading("-0o17") == ("an integer", -15)
    assert go_yaml_reading("08") == ("a float", 8.0)
    assert go_yaml_reading("1e400") == ("a string", "1e400")
    assert go_yaml_reading(".inf") == ("a float", math.inf)
    assert go_yaml_reading("yes") == ("a string", "yes")
    assert go_yaml_reading("~") == ("null", None)
    assert go_yaml_reading("true") == ("a boolean", True)
    assert go_yaml_reading("<<") == ("a merge key", "<<")
    assert go_yaml_reading("-") == ("a string", "-")
    assert go_yaml_reading(".1_0") == ("a float", 0.1)
    assert disagreement("-0.0") == (
        "sops reads this unquoted value as negative zero (sops decrypts it as 0), llmcc (YAML 1.2) as a float"
    )
    assert disagreement("-0") is None  # an integer: no sign to lose
    assert go_yaml_reading("._5") == ("a string", "._5")


def test_the_edit_check_loads_like_llmcc(tmp_path: Path) -> None:
    assert check_edited(b"a: 'x'\n", path="f") == []
    assert check_edited(b"- a\n", path="f") == ["f:1:1: a secrets file must be a mapping (modules: ...)"]
    assert check_edited(b"a: !!int 'x-secret-text'\n", path="f") == ["f:1:4: not a valid !!int"]
    assert check_edited(b"a: 0755\n", path="f") == [
        "f:1:4: sops reads this unquoted value as an octal integer, llmcc (YAML 1.2) as a decimal integer: quote it"
    ]
    assert editor_command()[1:] == ["-m", "compiler.secrets.editcheck"]


def test_the_editor_shim(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """In process, as sops runs it: the user's editor, then the check; the report names lines only."""
    file = tmp_path / "plain.yaml"
    report = tmp_path / "report"
    file.write_text("a: 'x'\n")
    env = {"LLMCC_USER_EDITOR": "true", "LLMCC_EDIT_REPORT": str(report), "LLMCC_EDIT_PATH": "env/x.sops.yaml"}
    assert main([str(file)], env) == 0
    assert not report.exists()
    file.write_text("a: 2024-01-01\n")
    assert main([str(file)], env) == 1
    assert report.read_text() == (
        "env/x.sops.yaml:1:4: sops reads this unquoted value as a timestamp, llmcc (YAML 1.2) as a string: quote it\n"
    )
    assert main([str(file)], {**env, "LLMCC_USER_EDITOR": "false"}) == 1  # the editor's own failure
    assert main([str(file)], {**env, "LLMCC_USER_EDITOR": str(tmp_path / "missing")}) == 127
    assert main([str(file)], {"LLMCC_USER_EDITOR": "true"}) == 1  # no report asked for: still refused
    assert main([], env) == 2
    # no editor named: vim, nano or vi from PATH, as sops does
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    assert main([str(file)], {}) == 2
    (bin_dir / "nano").write_text('#!/bin/sh\necho "a: \'fixed\'" > "$1"\n')
    (bin_dir / "nano").chmod(0o755)
    assert main([str(file)], {}) == 0
    err = capsys.readouterr().err
    assert "no file to edit" in err
    assert "no editor: set $EDITOR" in err


def test_every_encryption_path_refuses_ambiguous_values(tmp_path: Path) -> None:
    """``encrypt_sops`` itself refuses, so ``init``, ``rotate`` and any later caller cannot skip the check."""
    from compiler.errors import ConfigCheckError
    from compiler.secrets.sops import encrypt_sops

    with pytest.raises(ConfigCheckError, match="1 value would change meaning") as info:
        encrypt_sops(b"modules:\n  m:\n    pin: 0755\n", path="x.sops.yaml", cwd=tmp_path)
    assert [d.origin.location() for d in info.value.diagnostics if d.origin] == ["x.sops.yaml:3:10"]
