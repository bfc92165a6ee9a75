"""Numbers in user text are ASCII digits only (issue 14, F9).

``str.isdigit()`` and ``int()`` also take other scripts' digits, so ``--shard`` with
full-width digits ran as shard 1 of 2; ``float`` also takes ``nan`` and ``inf``. Every
number the CLI, the agent, the CI glue, the cache and the policy paths read from user
text is refused (or, where a default stands in, ignored) unless written in 0-9.
"""

from __future__ import annotations

import pytest

from compiler.agent.server import parse_listen
from compiler.ci.forges import _pull_number
from compiler.cli import main
from compiler.errors import UsageError
from compiler.incremental.store import DEFAULT_MAX_BYTES, MAX_BYTES_ENV, max_bytes_from
from compiler.policy.cel import referenced_paths
from compiler.shards import Shard, parse_shard

FULL_ONE, FULL_TWO = "\uff11", "\uff12"  # FULLWIDTH DIGIT ONE, TWO
ARABIC_INDIC_ONE = "\u0661"


@pytest.mark.parametrize("text", [f"{FULL_ONE}/2", f"1/{FULL_TWO}", f"{ARABIC_INDIC_ONE}/2"])
def test_a_shard_in_other_digits_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="is not a shard"):
        parse_shard(text)
    assert parse_shard("1/2") == Shard(1, 2)


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--shard", f"{FULL_ONE}/2"],
        ["validate", "-j", FULL_TWO],
        ["diff", "--format", "markdown", "--max-chars", f"{FULL_ONE}0"],
        ["pull", "dev", "--version", FULL_ONE],
        ["exec", "-t", "dev", "--version", FULL_ONE, "--", "true"],
        ["secrets", "rotate", "m.k", "--target", "dev", "--generate", f"{FULL_TWO}0"],
        ["agent", "--poll-interval", f"{FULL_TWO}0"],
        ["agent", "--poll-interval", "nan"],
        ["agent", "--max-age", "inf"],
        ["agent", "--drain", "1_0"],
        ["agent", "--drain", "soon"],
    ],
)
def test_a_cli_number_in_other_digits_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    flag = [a for a in argv if a.startswith("-") and a != "--"][-1]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err or f"/{flag}: " in err, err
    assert f"{argv[argv.index(flag) + 1]!r} is not a" in err, err


def test_a_port_in_other_digits_is_refused() -> None:
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        parse_listen(f"127.0.0.1:{FULL_TWO}772")
    assert parse_listen("127.0.0.1:2772") == ("127.0.0.1", 2772)


def test_a_pull_request_number_in_other_digits_is_refused() -> None:
    with pytest.raises(UsageError, match="not a pull request"):
        _pull_number({"GITHUB_REF": f"refs/pull/{FULL_ONE}/merge"})
    assert _pull_number({"GITHUB_REF": "refs/pull/1/merge"}) == 1


def test_a_cache_size_in_other_digits_is_the_default() -> None:
    assert max_bytes_from({MAX_BYTES_ENV: f"{FULL_ONE}0"}) == DEFAULT_MAX_BYTES
    assert max_bytes_from({MAX_BYTES_ENV: "10"}) == 10


def test_a_policy_index_in_other_digits_ends_the_literal_path() -> None:
    assert referenced_paths(f"config.m.r[{FULL_ONE}] > 0") == (("m", "r"),)
    assert referenced_paths("config.m.r[1] > 0") == (("m", "r", 1),)
