"""Flattening and escaping for ``pull --format env|dotenv|yaml`` and ``exec`` (compiler/exports.py)."""

from __future__ import annotations

import io
import json
import subprocess

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from compiler.errors import UsageError
from compiler.exports import env_name, flatten, render_dotenv, render_env, render_json, render_yaml

MODULES = {
    "inference-engine": {
        "model": {"temperature": 0.3, "max_tokens": 1024, "name": "llama", "stop": ["\n\n", "END"]},
        "enabled": True,
        "fallback": None,
        "labels": {"app.kubernetes.io/name": "ie", "tier": "1.0"},
        "empty": {},
        "none": [],
        "ratio": 1.0,
    },
    "9lives": {"x": "y"},
}


def test_names_values_and_order() -> None:
    got = flatten(MODULES)
    assert got == {
        "_9LIVES_X": "y",
        "INFERENCE_ENGINE_EMPTY": "{}",
        "INFERENCE_ENGINE_ENABLED": "true",
        "INFERENCE_ENGINE_FALLBACK": "null",
        "INFERENCE_ENGINE_LABELS_APP_KUBERNETES_IO_NAME": "ie",
        "INFERENCE_ENGINE_LABELS_TIER": "1.0",
        "INFERENCE_ENGINE_MODEL_MAX_TOKENS": "1024",
        "INFERENCE_ENGINE_MODEL_NAME": "llama",
        "INFERENCE_ENGINE_MODEL_STOP_0": "\n\n",
        "INFERENCE_ENGINE_MODEL_STOP_1": "END",
        "INFERENCE_ENGINE_MODEL_TEMPERATURE": "0.3",
        "INFERENCE_ENGINE_NONE": "[]",
        "INFERENCE_ENGINE_RATIO": "1.0",
    }
    assert list(flatten({"m": {"x": 1}}, prefix="APP_")) == ["APP_M_X"]
    assert env_name("", "a.b", ("c-d", 0)) == "A_B_C_D_0"


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"m": {"a-b": 1, "a_b": 2}}, "m$.a-b and m$.a_b both flatten to M_A_B; rename one, or use --format json"),
        ({"m": {"Key": 1, "key": 2}}, "m$.Key and m$.key both flatten to M_KEY"),
        ({"m": {"a": {"b": 1}, "a_b": 2}}, "m$.a.b and m$.a_b both flatten to M_A_B"),
        ({"m": {"x": "a\0b"}}, "m$.x: the value holds a NUL byte, which no environment variable can carry"),
    ],
)
def test_refused(modules: dict, message: str) -> None:
    with pytest.raises(UsageError) as e:
        flatten(modules)
    assert message in str(e.value)
    assert "a\0b" not in str(e.value)


@pytest.mark.parametrize("prefix", ["1X", "A-B", "A B", "é"])
def test_bad_prefix(prefix: str) -> None:
    with pytest.raises(UsageError, match="--prefix"):
        flatten({"m": {"x": 1}}, prefix=prefix)


TRICKY = ["plain", "it's", 'say "hi"', "a\nb", "tab\there", "$HOME ${HOME} $$", "back\\slash", "", " spaced ", "ü€😀"]


def test_env_is_read_back_exactly_by_sh() -> None:
    variables = {f"V{i}": v for i, v in enumerate(TRICKY)}
    script = render_env(variables) + "".join(f'printf "%s\\0" "$V{i}"\n' for i in range(len(TRICKY)))
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    assert out.decode().split("\0")[:-1] == TRICKY


def test_dotenv_is_read_back_exactly_by_python_dotenv() -> None:
    ok = [v for v in TRICKY if "$" not in v] + ["$HOME $$ a$"]
    variables = {f"V{i}": v for i, v in enumerate(ok)}
    text = render_dotenv(variables)
    for interpolate in (True, False):
        assert dict(dotenv_values(stream=io.StringIO(text), interpolate=interpolate)) == variables
    assert "V0='plain'\n" in text
    assert 'V1="it\'s"\n' in text


@pytest.mark.parametrize("value", ["it's $HOME", "line\n$X", "bell\x07'", "bell\x07", "${HOME}", "a ${B} c"])
def test_dotenv_refuses_what_readers_read_differently(value: str) -> None:
    with pytest.raises(UsageError) as e:
        render_dotenv({"SECRET_X": value})
    assert str(e.value).startswith(("SECRET_X: dotenv readers differ", "SECRET_X: python-dotenv expands"))
    assert value not in str(e.value)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")))
def test_env_round_trip_law(value: str) -> None:
    out = subprocess.run(["sh", "-c", render_env({"V": value}) + 'printf "%s" "$V"'], capture_output=True, check=True)
    assert out.stdout.decode() == value


def test_yaml_reads_back_the_same_for_yaml_1_1_words() -> None:
    modules = {"m": {"yes": "no", "on": "off", "hex": "0x10", "num": 1e3, "n": 1, "f": 1.5, "b": False, "z": None,
                     "404": "x", "k": ["y", "1.0"], "long": "x" * 200, "ml": "a\nb"}}  # fmt: skip
    text = render_yaml(modules)
    assert YAML(typ="safe", pure=True).load(text) == modules
    assert '"yes": "no"' in text
    assert 'hex: "0x10"' in text
    assert json.loads(render_json(modules)) == modules


@pytest.mark.parametrize("value", ["trail\\", "two\\\\back", "C:\\\\share\\", "\\\\"])
def test_dotenv_backslashes_are_read_back(value: str) -> None:
    # python-dotenv reads \\ as \ and \' as ' even in single quotes ('trail\' did not parse at all)
    text = render_dotenv({"V": value})
    assert text.startswith('V="')
    assert dotenv_values(stream=io.StringIO(text), interpolate=False) == {"V": value}


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")))
def test_dotenv_round_trip_law(value: str) -> None:
    try:
        text = render_dotenv({"V": value})
    except UsageError:
        return  # refused, by name: fine
    for interpolate in (True, False):
        assert dotenv_values(stream=io.StringIO(text), interpolate=interpolate) == {"V": value}
