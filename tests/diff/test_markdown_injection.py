"""A value cannot escape the markdown the diff comment puts it in (issue 13 §3, the pull-request comment).

The author of a pull request writes the values the comment shows. A value that
closes its code span or fence early turns the rest of its line into markdown and
HTML: ``<!--`` would hide every later change of the comment from the reviewer.
Rendered with a CommonMark parser (GitHub's tables on), as the platform renders it.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from compiler.cli import diff as diff_cmd
from tests.conftest import GitRepo
from tests.diff._support import PROMPT, run_command, seed, write

markdown_it = pytest.importorskip("markdown_it")

HIDE = "<!-- hidden"


def _html(markdown: str) -> str:
    return str(markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown))


def _outside_code(html: str) -> str:
    """The rendered HTML without its code spans and code blocks: where a value's text must never be."""
    return re.sub(r"<pre><code[^>]*>.*?</code></pre>|<code>.*?</code>", "", html, flags=re.DOTALL)


@pytest.mark.parametrize(
    ("temperature", "prompt_line"),
    [
        ("a`` " + HIDE, "Line 18 of the system prompt."),  # closes a double-backtick code span
        ("a``` " + HIDE, "Line 18 of the system prompt."),
        ("a\\r" + HIDE, "Line 18 of the system prompt."),  # a carriage return ends a markdown line
        ("0.3", "  ````"),  # an unchanged line of a multi-line value, indented: closes the diff's fence
        ("0.3", "```"),
    ],
)
def test_a_value_cannot_escape_its_code_span_or_block(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str], temperature: str, prompt_line: str
) -> None:
    seed(git_repo)
    before = PROMPT.replace("Line 18 of the system prompt.", prompt_line)
    base = "vars:\n  model: big\n  temperature: 0.5\nmodules:\n  engine:\n    prompt: |\n"
    write(
        git_repo,
        {"environments/base.yaml": base + textwrap.indent(before, "      "), "environments/dev.yaml": "vars: {}\n"},
    )
    git_repo.commit("a prompt line")
    after = before + f"{HIDE} in a prompt\n"
    changed = base.replace("temperature: 0.5", f'temperature: "{temperature}"')
    write(git_repo, {"environments/base.yaml": changed + textwrap.indent(after, "      ")})
    git_repo.commit("the attack")
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD", "--format", "markdown", "--max-chars", "0") == 0
    html = _html(capsys.readouterr().out)
    assert "hidden in a prompt" in html
    assert "hidden" not in _outside_code(html)


@pytest.mark.parametrize("module", ["evil<!--", "evil`<!--", "evil|<!--", "evil_*<!--"])
def test_a_module_name_cannot_escape_the_table_summary_or_heading(
    git_repo: GitRepo, capsys: pytest.CaptureFixture[str], module: str
) -> None:
    """A module is named by its schema's file name, which a pull request chooses: ``<`` and ``|`` included."""
    seed(git_repo)
    write(
        git_repo,
        {
            f"schemas/{module}.schema.json": '{"type": "object"}\n',
            f"templates/{module}.yaml": "note: hidden in a module\n",
            "environments/dev.yaml": "vars:\n  model: tiny\n  temperature: 0.9\n",
        },
    )
    git_repo.commit("a module")
    assert run_command(diff_cmd, git_repo.path, "HEAD~1", "HEAD", "--format", "markdown", "--max-chars", "0") == 0
    out = capsys.readouterr().out
    html = _html(out)
    assert "hidden in a module" in html  # nothing after the name is swallowed by a comment
    assert "0.9" in html  # dev's own change, in the section after the module's
    assert "<!--" not in html


def test_a_revision_name_cannot_escape_the_heading(git_repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    seed(git_repo)
    git_repo.git("tag", "v1`<b>x")
    write(git_repo, {"environments/dev.yaml": "vars:\n  model: tiny\n  temperature: 0.9\n"})
    git_repo.commit("cooler")
    assert run_command(diff_cmd, git_repo.path, "v1`<b>x", "HEAD", "--format", "markdown", "--max-chars", "0") == 0
    html = _html(capsys.readouterr().out)
    assert "<b>" not in html
    assert "v1`&lt;b&gt;x" in html
