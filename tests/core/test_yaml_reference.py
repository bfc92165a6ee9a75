"""The event-loop loader against the plain builder it replaced (issue 14 §3).

``tests/core/_yaml_reference.py`` is the builder as it was before the loader was made
faster. Over random documents, near-valid and broken ones included, both give the same
values (types included), the same position of every node, the same node count and the
same error, at the same line and column.
"""

from __future__ import annotations

import copy
import math
import pickle  # noqa: TID251 (a round trip of our own object, to show positions survive it)
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.errors import InputError
from compiler.load import yaml as loader
from compiler.load.yaml import Document, Tagged, Value, load_document, resolve_plain
from tests.conftest import REPO_ROOT
from tests.core._yaml_reference import load_reference
from tests.core._yaml_reference import resolve_plain as resolve_reference

PATH = "environments/prod.yaml"

SCALARS = [
    "a", "b", "word", "two words", "t", "true", "True", "FALSE", "null", "Null", "~", "", "yes", "no",
    "0", "7", "-12", "+7", "007", "0o17", "0x1F", "0xg", "1.5", "-2.", ".5", "1e3", "0e0", "1_000", "٣",
    "2024-01-01", "'quoted'", '"dq"', "'1'", '"true"', "!!str 1", "!!int 3", "!!float 2", "!!bool true",
    "!!null ~", "! 12", "!override 3", "!override 'x'", "!delete", "!delete ''", "*a", "*b", "&a 1", "&b word",
    "&a !override 1", "&b [*a, *a]", "&b {k: *a}", "|\n  block", ">-\n  folded", "[]", "{}", "[1, 2]",
    "{x: 1}", "[a, *a]", "[1, [2, [3]]]",
    "!append [1]", "!override {k: v}", "!!seq []", "!!map {}", "&a [1, 2]", "&b {k: [1]}", "!delete []",
]  # fmt: skip
ODD_SCALARS = [
    "1e400", "1e-400", ".inf", "-.Inf", ".nan", "!!int 1.5", "!!float x", "!!bool 1", "!!null x", "!delete 1",
    "!append 1", "!prepend x", "!unknown x", "!!map x", "!!timestamp 2024-01-01", "*nope", "{<<: 1}",
    "{a: 1, a: 2}", "!!seq {}", "? x", "2: x", "- 1", "@bad",
]  # fmt: skip
KEYS = ["a", "b", "c", "d", "e", "k", "t", "key_1", "name", "'a'", '"q"', "!!str 2", "&a a", "a b", "-x"]
ODD_KEYS = ["<<", "'<<'", "1", "true", "null", "~", "*a", "!override a", "[x]", "{k: v}", "? a", "-", "!!str <<"]
TOKENS = [":", "- ", "\n", "  ", "[", "}", "&a ", "*a", "!append ", "\t", "'", "#", "\x07"]
PREFIXES = ["&a ", "&b ", "!override ", "!append ", "!prepend ", "!delete ", "!!map ", "!!seq ", "! "]


def _mostly(usual: list[str], odd: list[str], *, with_odd: bool) -> st.SearchStrategy[str]:
    """Usually one of ``usual``, now and then one of ``odd`` (never without ``with_odd``)."""
    if not with_odd:
        return st.sampled_from(usual)
    return st.one_of(st.sampled_from(usual), st.sampled_from(usual), st.sampled_from(usual), st.sampled_from(odd))


Tree = tuple[object, ...]


def _trees(*, odd: bool) -> st.SearchStrategy[Tree]:
    leaf = st.builds(lambda s: ("s", s), _mostly(SCALARS, ODD_SCALARS, with_odd=odd))
    prefixes = _mostly([""], PREFIXES, with_odd=odd)
    return st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.builds(
                lambda p, items: ("m", p, items),
                prefixes,
                st.lists(st.tuples(_mostly(KEYS, ODD_KEYS, with_odd=odd), kids), max_size=4),
            ),
            st.builds(lambda p, items: ("q", p, items), prefixes, st.lists(kids, max_size=4)),
        ),
        max_leaves=20,
    )


def _render(node: Tree, indent: int) -> str:
    """The text after ``key:`` or ``-`` for one node, in block style."""
    kind = node[0]
    if kind == "s":
        text = str(node[1])
        return " " + text.replace("\n", "\n" + " " * (indent + 2)) if text else ""
    prefix, items = str(node[1]), node[2]
    assert isinstance(items, list)
    if not items:
        return f" {prefix}{'{}' if kind == 'm' else '[]'}"
    head = " " + prefix.strip() if prefix else ""
    pad = " " * indent
    if kind == "m":
        lines = [f"{pad}{key}:{_render(child, indent + 2)}" for key, child in items]
    else:
        lines = [f"{pad}-{_render(child, indent + 2)}" for child in items]
    return head + "\n" + "\n".join(lines)


@st.composite
def documents(draw: st.DrawFn, *, odd: bool = True) -> str:
    """A block-style document; with ``odd``, now and then a node, key or token that is refused."""
    tree = draw(_trees(odd=odd))
    body = _render(tree, 0)
    text = body[1:] if body.startswith(" ") else body
    text = draw(st.sampled_from(["", "---\n", "--- ", "%YAML 1.2\n---\n", "# c\n"])) + text
    ends = ["\n", "", "\n...\n", "\n# end\n"]
    text += draw(st.sampled_from([*ends, "\n---\nx\n", "\n  bad: indent\n"] if odd else ends))
    # near-valid and broken documents too: a few tokens dropped in anywhere
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2] if odd else [0]))):
        at = draw(st.integers(0, len(text)))
        token = draw(
            st.sampled_from([":", "- ", "\n", "  ", "[", "}", "&a ", "*a", "!append ", "\t", "'", "#", "\x07"])
        )
        text = text[:at] + token + text[at:]
    return text


def _shape(value: Value) -> object:
    """The value with every scalar's type made visible (True != 1 here)."""
    if isinstance(value, Tagged):
        return ("tagged", value.tag, _shape(value.value), value.origin)
    if isinstance(value, dict):
        return ("map", [(k, _shape(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_shape(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def _outcome(load: Callable[..., Document], data: bytes, **kwargs: object) -> object:
    try:
        doc = load(data, path=PATH, layer="prod", rev="abc123", **kwargs)
    except InputError as e:
        return ("error", str(e))
    positions = dict(doc.positions.items())
    origins = [doc.origin(p).location() for p in [*positions, ("not", "there"), ()]]
    return ("ok", _shape(doc.value), positions, origins, doc.nodes, doc.tagged, doc.path, doc.layer, doc.rev)


def _same(data: bytes, *, quote_values: bool = True) -> None:
    ours = _outcome(load_document, data, quote_values=quote_values)
    theirs = _outcome(load_reference, data, quote_values=quote_values)
    assert ours == theirs


@settings(max_examples=200, deadline=None)
@given(documents(), st.booleans())
def test_random_documents_load_as_with_the_plain_builder(text: str, quote: bool) -> None:
    _same(text.encode(), quote_values=quote)


@settings(max_examples=200, deadline=None)
@given(documents(odd=False))
def test_random_valid_documents_load_as_with_the_plain_builder(text: str) -> None:
    _same(text.encode())


@settings(max_examples=100, deadline=None)
@given(documents(), st.integers(1, 4), st.integers(1, 12))
def test_random_documents_meet_the_same_bounds(text: str, depth: int, nodes: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loader, "MAX_DEPTH", depth)
        mp.setattr(loader, "MAX_NODES", nodes)
        _same(text.encode())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from([*SCALARS, *ODD_SCALARS, *KEYS, *ODD_KEYS, ": ", "\n", "- ", "  ", ", ", "[", "]", "{", "}"]),
        max_size=30,
    )
)
def test_token_soup_loads_as_with_the_plain_builder(tokens: list[str]) -> None:
    _same("".join(tokens).encode())


@pytest.mark.parametrize(
    "text",
    [
        "'<<': 1\n<<: 2\n",  # merge key refused before the duplicate
        "<<: 1\n'<<': 2\n",
        "a: &a [1, [2, 3]]\nb: &b [*a, *a, x]\nc: &c {k: *b}\nd: [*c, *c]\n",  # alias sizes add up
        "a: &a [1, 2]\nb: &b\n- *a\n- *a\nc: *b\n",
        "a: &a {x: 1}\n*a : 2\n",  # an alias as a key
        "- &a !override 1\n- *a\n- &b !append [1]\n- *b\n",
        "!append\n- 1\n",
        "&a [1, *a]\n",
        "a: !!float 1e400\n",
        "? [a]\n: 1\n",
        "a:\n  - - - x\n    - y\n  - {b: [c, {d: e}]}\n",
    ],
)
def test_tricky_documents_load_as_with_the_plain_builder(text: str) -> None:
    for nodes in (3, 5, 8, 13, 1000):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(loader, "MAX_NODES", nodes)
            _same(text.encode())


NUMBERISH = st.text(alphabet="0123456789+-._eEoxXabcfinINFtTrRuUlLN~٣ ", max_size=12)
FLOATISH = st.from_regex(r"[-+]?[0-9]*\.?[0-9]*([eE][-+]?[0-9]+)?", fullmatch=True)


@settings(max_examples=500)
@given(
    st.one_of(NUMBERISH, st.text(max_size=8), st.from_regex(r"[-+]?[0-9]*\.?[0-9]*([eE][-+]?[0-9]+)?", fullmatch=True))
)
def test_plain_scalars_resolve_as_with_the_plain_builder(text: str) -> None:
    ours, theirs = resolve_plain(text), resolve_reference(text)
    assert type(ours) is type(theirs)
    assert ours == theirs or (isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs))


def test_every_yaml_file_of_the_repository_loads_as_with_the_plain_builder() -> None:
    files = [p for p in REPO_ROOT.rglob("*.y*ml") if ".venv" not in p.parts and ".git" not in p.parts]
    assert len(files) > 50
    for path in files:
        _same(Path(path).read_bytes())


def test_positions_are_built_once_and_compare_as_a_dict() -> None:
    doc = load_document(b"a:\n  - 1\n  - {b: 2}\n", path=PATH, layer="prod")
    assert doc.positions == load_reference(b"a:\n  - 1\n  - {b: 2}\n", path=PATH, layer="prod").positions
    assert repr(doc.positions) == repr(dict(doc.positions))
    assert len(doc.positions) == 5
    assert ("a", 1, "b") in doc.positions
    assert doc.origin(("a", 1, "b", "c")).location() == f"{PATH}:3:6"


def test_a_copied_document_still_builds_its_positions() -> None:
    data = b"a:\n  - 1\n  - {b: [2]}\n"
    want = load_reference(data, path=PATH, layer="prod").positions
    assert copy.deepcopy(load_document(data, path=PATH, layer="prod")).positions == want
    assert pickle.loads(pickle.dumps(load_document(data, path=PATH, layer="prod"))).positions == want  # noqa: S301


def test_a_value_changed_by_a_caller_does_not_shift_positions() -> None:
    # Positions come from the loader's own record, not from walking the value.
    doc = load_document(b"a: 1\nb: [x, y]\nc: 2\n", path=PATH, layer="prod")
    assert isinstance(doc.value, dict)
    del doc.value["a"]
    assert doc.positions[("c",)] == (3, 1)
    assert doc.positions[("b", 1)] == (2, 8)
