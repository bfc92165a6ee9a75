"""Parsed documents and rendered scalars kept in the result cache: exact round trips, and any doubt is a miss."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.errors import InputError
from compiler.incremental.documents import decode_document, encode_document
from compiler.incremental.entry import EntryError
from compiler.incremental.parsed import (
    ParsedDocuments,
    RenderedScalars,
    decode_rendered,
    document_key,
    encode_rendered,
)
from compiler.incremental.store import CACHE_DIR, ResultCache
from compiler.load.yaml import Document, load_document

REPO_ROOT = Path(__file__).resolve().parents[2]

# Documents whose encoding has something to get wrong: tags (nested, on scalars, at the root),
# aliases, floats that look like integers, big integers, escapes, key order, empty documents.
CRAFTED = {
    "tags": "a: !override\n  b: !append [1, 2]\n  c: !delete\nd: !prepend [x]\ne: !override 3\n",
    "tag-in-list": "l:\n  - !override {k: v}\n  - plain\n",
    "tagged-root": "!override {a: 1}\n",
    "aliases": "x: &a {k: [1, 2, {deep: true}]}\ny: *a\nz: [*a, *a]\n",
    "tagged-alias": "x: &a !append [1]\ny: *a\n",
    "numbers": "f: 1.0\ng: -0.0\nh: 1e300\ni: 123456789012345678901234567890\nj: 0x1f\nk: .5\n",
    "escapes": 'a: "nbsp\\u00a0"\nb: "tab\\there \\u00e9 \\U0001F600"\n"\\0key": 1\n',
    "order": "zeta: 1\nalpha: 2\nmid: {b: 1, a: 2}\n",
    "empty": "",
    "null-root": "~\n",
    "scalar-root": "just text\n",
    "list-root": "- 1\n- [2, [3]]\n",
    "strings": "a: '{{ x }}'\nb: \"yes\"\nc: !!str 12\nd: 2024-01-01\n",
}


def real_yaml_files() -> list[Path]:
    found = [*REPO_ROOT.glob("environments/**/*.yaml"), *REPO_ROOT.glob("templates/*.yaml")]
    found += REPO_ROOT.glob("tests/cases/*/*/environments/**/*.yaml")
    found += REPO_ROOT.glob("tests/cases/*/*/templates/*.yaml")
    return sorted(p for p in found if not p.name.endswith(".sops.yaml"))


def parsed(text: str | bytes, path: str = "environments/x.yaml", rev: str | None = None) -> Document:
    data = text.encode() if isinstance(text, str) else text
    return load_document(data, path=path, layer="x", rev=rev)


def assert_same(a: Document, b: Document) -> None:
    assert a == b
    assert list(a.positions) == list(b.positions)
    assert json.dumps(a.value, default=repr) == json.dumps(b.value, default=repr)  # key order, int vs float


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_document_comes_back_exactly(name: str) -> None:
    doc = parsed(CRAFTED[name], rev="abc123")
    data = encode_document(doc)
    assert data is not None
    assert_same(decode_document(data, path=doc.path, layer="x", rev="abc123"), doc)


def test_every_yaml_file_of_this_repository_comes_back_exactly() -> None:
    files = real_yaml_files()
    assert len(files) > 20
    for path in files:
        try:
            doc = parsed(path.read_bytes(), path=path.name)
        except InputError:  # negative cases hold files that do not load: not this test's subject
            continue
        data = encode_document(doc)
        assert data is not None, path
        assert_same(decode_document(data, path=path.name, layer="x", rev=None), doc)


def good_encoding() -> dict[str, object]:
    """The encoding of a tagged document as one map (``encoded`` writes it back, positions apart)."""
    doc = parsed(CRAFTED["tags"])
    data = encode_document(doc)
    assert data is not None
    head, _, positions = data.partition(b"\n")
    raw = json.loads(head)
    assert isinstance(raw, dict)
    raw["positions"] = json.loads(positions)
    return raw


def encoded(raw: object) -> bytes:
    """``raw`` as ``encode_document`` lays it out: the map without its positions, then they on a line."""
    if not (isinstance(raw, dict) and "positions" in raw):
        return json.dumps(raw).encode()
    head = {k: v for k, v in raw.items() if k != "positions"}
    return json.dumps(head).encode() + b"\n" + json.dumps(raw["positions"]).encode()


def _set(key: str, value: object) -> Callable[[dict[str, object]], object]:
    def change(raw: dict[str, object]) -> object:
        raw[key] = value
        return raw

    return change


def _tag(entry: list[object]) -> Callable[[dict[str, object]], object]:
    def change(raw: dict[str, object]) -> object:
        raw["tags"] = [entry]
        return raw

    return change


def _position(entry: object) -> Callable[[dict[str, object]], object]:
    def change(raw: dict[str, object]) -> object:
        raw["positions"] = [*raw["positions"], entry]  # type: ignore[misc]
        return raw

    return change


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_set("scheme", "document/0"), id="other-scheme"),
        pytest.param(_set("path", "environments/other.yaml"), id="another-file"),
        pytest.param(_set("layer", "prod"), id="another-layer"),
        pytest.param(_set("rev", "deadbeef"), id="another-revision"),
        pytest.param(_set("nodes", "12"), id="nodes-not-a-number"),
        pytest.param(_set("nodes", True), id="nodes-a-boolean"),
        pytest.param(_set("tagged", 1), id="tagged-not-a-boolean"),
        pytest.param(lambda r: {**r, "tagged": False}, id="tags-without-tagged"),
        pytest.param(lambda r: {**r, "extra": 1}, id="unknown-key"),
        pytest.param(lambda r: {k: v for k, v in r.items() if k != "positions"}, id="missing-key"),
        pytest.param(lambda r: [r], id="not-an-object"),
        pytest.param(_tag([["a"], "exec", 1, 1]), id="not-a-merge-tag"),
        pytest.param(_tag([["a", "b"], "delete", 1, 1]), id="delete-with-a-value"),
        pytest.param(_tag([["a", "c"], "append", 1, 1]), id="append-on-a-scalar"),
        pytest.param(_tag([["nowhere"], "override", 1, 1]), id="tag-path-missing"),
        pytest.param(_tag([["a", 0], "override", 1, 1]), id="tag-path-index-into-a-map"),
        pytest.param(_tag([["a"], "override", "1", 1]), id="tag-line-a-string"),
        pytest.param(_tag([["a"], "override", 1]), id="tag-entry-short"),
        pytest.param(_tag(["a", "override", 1, 1]), id="tag-path-not-a-list"),
        pytest.param(lambda r: {**r, "tags": [*r["tags"], r["tags"][0]]}, id="a-node-tagged-twice"),  # type: ignore[index]
        pytest.param(_set("tags", {}), id="tags-not-a-list"),
        pytest.param(_position(["1", 1, "a"]), id="line-a-string"),
        pytest.param(_position([1, 1.5, "a"]), id="column-a-float"),
        pytest.param(_position([1, True, "a"]), id="column-a-boolean"),
        pytest.param(_position([1, 1, ["a"]]), id="path-holds-a-list"),
        pytest.param(_position([1, 1, 2.5]), id="path-holds-a-float"),
        pytest.param(_position([1, 1, None]), id="path-holds-null"),
        pytest.param(_position([1]), id="position-short"),
        pytest.param(_position("ab"), id="position-a-string"),
        pytest.param(_position({"a": 1}), id="position-a-map"),
        pytest.param(_set("positions", {}), id="positions-not-a-list"),
    ],
)
def test_a_decoded_document_of_another_shape_is_refused(damage: Callable[[dict[str, object]], object]) -> None:
    data = encoded(damage(good_encoding()))
    with pytest.raises(EntryError):  # positions are checked when first read
        dict(decode_document(data, path="environments/x.yaml", layer="x", rev=None).positions)


@pytest.mark.parametrize(
    "positions",
    [b"", b"[[1,1,", b"[[1,NaN]]", b'{"a":1}', b'[[1,"1","a"]]', b"[[1,1,[]]]"],
    ids=["empty", "truncated", "nan", "a-map", "column-a-string", "path-holds-a-list"],
)
def test_damaged_positions_are_refused_when_read_or_taken_from_the_parser(positions: bytes) -> None:
    doc = parsed(CRAFTED["tags"])
    data = encode_document(doc)
    assert data is not None
    damaged = data.partition(b"\n")[0] + b"\n" + positions
    lazy = decode_document(damaged, path=doc.path, layer="x", rev=None)
    assert lazy.value == doc.value  # the rest decodes at once; the positions only when read
    with pytest.raises(EntryError):
        lazy.origin(("a",))
    again = decode_document(damaged, path=doc.path, layer="x", rev=None, reparse=lambda: doc.positions)
    assert again.origin(("a", "b")) == doc.origin(("a", "b"))
    assert (len(again.positions), repr(again.positions)) == (len(doc.positions), repr(doc.positions))
    assert_same(again, doc)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"scheme": NaN}', id="nan"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-past-the-recursion-limit"),
        pytest.param(b'{"value": 1', id="truncated"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b'{"value": ' + b"9" * 5000 + b"}", id="over-long-number"),
        pytest.param(b'{"scheme": NaN}\n[]', id="nan-before-the-positions"),
    ],
)
def test_bytes_that_are_not_strict_json_are_refused(data: bytes) -> None:
    with pytest.raises(EntryError):
        decode_document(data, path="environments/x.yaml", layer="x", rev=None)
    with pytest.raises(EntryError):
        decode_rendered(data)


def test_a_nan_in_a_value_is_refused_even_with_the_right_shape() -> None:
    raw = good_encoding()
    raw["value"] = {"a": float("nan")}
    with pytest.raises(EntryError):
        decode_document(json.dumps(raw).encode(), path="environments/x.yaml", layer="x", rev=None)


def test_a_document_that_cannot_be_written_exactly_is_not_encoded() -> None:
    doc = parsed("a: !override 1\n")
    assert encode_document(Document(**{**_fields(doc), "tagged": False})) is None  # a Tagged nobody announced
    foreign = parsed("a: !override 1\n", path="environments/y.yaml")
    assert encode_document(Document(**{**_fields(doc), "value": foreign.value})) is None  # another file's origin


def _fields(doc: Document) -> dict[str, object]:
    return {f: getattr(doc, f) for f in ("path", "layer", "value", "positions", "nodes", "tagged", "rev")}


# --- through the store -------------------------------------------------------------------------

TEXT = b"vars:\n  a: 1\nmodules:\n  engine: !override {x: [1, 2]}\n"
PATH = "environments/base.yaml"


def entry_path(store: ResultCache, key: str) -> Path:
    path = store._path(key)
    assert path is not None
    return path


def key_of(text: bytes = TEXT, path: str = PATH) -> str:
    return document_key(text, path=path, layer="base", rev=None, quote_values=True)


@pytest.fixture
def store(tmp_path: Path) -> ResultCache:
    return ResultCache(tmp_path / CACHE_DIR)


def test_a_document_is_parsed_once_then_read(store: ResultCache) -> None:
    first = ParsedDocuments(store)
    doc = first.load(TEXT, path=PATH, layer="base")
    assert (first.parsed, first.hits) == (1, 0)
    second = ParsedDocuments(ResultCache(store.root))
    assert_same(second.load(TEXT, path=PATH, layer="base"), doc)
    assert (second.parsed, second.hits) == (0, 1)
    assert_same(doc, load_document(TEXT, path=PATH, layer="base"))


def test_the_key_holds_everything_the_document_is_a_function_of() -> None:
    keys = {
        key_of(),
        key_of(TEXT + b"# more\n"),
        key_of(path="environments/other.yaml"),
        document_key(TEXT, path=PATH, layer="prod", rev=None, quote_values=True),
        document_key(TEXT, path=PATH, layer="base", rev="HEAD", quote_values=True),
        document_key(TEXT, path=PATH, layer="base", rev="", quote_values=True),
        document_key(TEXT, path=PATH, layer="base", rev=None, quote_values=False),
    }
    assert len(keys) == 7


def _rewrite(path: Path, body: bytes, *, fix_digest: bool, **header: object) -> None:
    head = json.loads(path.read_bytes().partition(b"\n")[0])
    if fix_digest:
        head.update(sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    head.update(header)
    path.write_bytes(json.dumps(head).encode() + b"\n" + body)


def _body(path: Path) -> bytes:
    return path.read_bytes().partition(b"\n")[2]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:-10]), id="truncated"),
        pytest.param(lambda p: p.write_bytes(b""), id="empty"),
        pytest.param(lambda p: _rewrite(p, _body(p).replace(b'"a":1', b'"a":2'), fix_digest=False), id="tampered"),
        pytest.param(lambda p: _rewrite(p, _body(p), fix_digest=True, compiler="0.0.0"), id="foreign-version"),
        pytest.param(lambda p: _rewrite(p, _body(p), fix_digest=True, format="llmcc-cache/0"), id="foreign-format"),
        pytest.param(lambda p: _rewrite(p, b'{"scheme":"document/2"}', fix_digest=True), id="wrong-shape-digest-right"),
        pytest.param(lambda p: _rewrite(p, b"\x80\x04K\x01.", fix_digest=True), id="a-pickle-digest-right"),
        pytest.param(
            lambda p: _rewrite(p, _body(p).replace(b'"override"', b'"os.system"'), fix_digest=True),
            id="unknown-tag-digest-right",
        ),
    ],
)
def test_a_damaged_foreign_or_tampered_entry_is_parsed_again_and_replaced(
    store: ResultCache, damage: Callable[[Path], None]
) -> None:
    ParsedDocuments(store).load(TEXT, path=PATH, layer="base")
    path = entry_path(store, key_of())
    damage(path)
    again = ParsedDocuments(ResultCache(store.root))
    assert_same(again.load(TEXT, path=PATH, layer="base"), load_document(TEXT, path=PATH, layer="base"))
    assert again.parsed == 1
    after = ParsedDocuments(ResultCache(store.root))
    after.load(TEXT, path=PATH, layer="base")
    assert (after.hits, after.parsed) == (1, 0)  # rewritten good


def test_a_kept_document_whose_positions_do_not_decode_is_parsed_again_when_one_is_read(store: ResultCache) -> None:
    ParsedDocuments(store).load(TEXT, path=PATH, layer="base")
    path = entry_path(store, key_of())
    _rewrite(path, _body(path).partition(b"\n")[0] + b"\n[[1,", fix_digest=True)
    loader = ParsedDocuments(ResultCache(store.root))
    doc = loader.load(TEXT, path=PATH, layer="base")
    assert_same(doc, load_document(TEXT, path=PATH, layer="base"))  # positions read: the parser's
    after = ParsedDocuments(ResultCache(store.root))
    after.load(TEXT, path=PATH, layer="base")
    assert (after.hits, after.parsed) == (0, 1)  # the damaged entry was dropped and written again


def test_an_entry_of_another_file_under_this_key_is_refused(store: ResultCache) -> None:
    other = b"vars:\n  a: 1\n"
    ParsedDocuments(store).load(other, path="environments/other.yaml", layer="base")
    planted = _body(entry_path(store, key_of(other, "environments/other.yaml")))
    ParsedDocuments(store).load(TEXT, path=PATH, layer="base")
    _rewrite(entry_path(store, key_of()), planted, fix_digest=True)
    again = ParsedDocuments(ResultCache(store.root))
    assert_same(again.load(TEXT, path=PATH, layer="base"), load_document(TEXT, path=PATH, layer="base"))
    assert again.parsed == 1


def test_a_symlinked_entry_or_a_cache_others_can_write_is_not_read(store: ResultCache) -> None:
    ParsedDocuments(store).load(TEXT, path=PATH, layer="base")
    path = entry_path(store, key_of())
    real = path.with_suffix(".real")
    path.rename(real)
    path.symlink_to(real)
    again = ParsedDocuments(ResultCache(store.root))
    again.load(TEXT, path=PATH, layer="base")
    assert again.parsed == 1
    store.root.chmod(0o777)  # writable by others: the cache is off, every file parsed
    try:
        off = ParsedDocuments(ResultCache(store.root))
        off.load(TEXT, path=PATH, layer="base")
        off.load(TEXT, path=PATH, layer="base")
        assert off.parsed == 2
    finally:
        store.root.chmod(0o700)


def test_a_file_that_does_not_parse_raises_each_time_and_stores_nothing(store: ResultCache) -> None:
    bad = b"a: [1\n"
    for _ in range(2):
        with pytest.raises(Exception, match="invalid YAML"):
            ParsedDocuments(store).load(bad, path=PATH, layer="base")
    assert store.written == 0


# --- rendered scalars --------------------------------------------------------------------------

VALUES = [
    (("{{ a }}", ("s1",)), "1"),
    (("{{ b | join(',') }}", ('j["x","y"]',)), "x,y"),
    (("{{ c }}", ("f1.0",)), 1.0),
    (("{{ d }}", ("i7",)), [1, {"k": None}]),
]
EXPRS = ["{{ b | join(',') }}"]


def test_rendered_scalars_round_trip_with_their_types() -> None:
    values, exprs = decode_rendered(encode_rendered(VALUES, EXPRS))
    assert list(values.items()) == VALUES
    assert isinstance(values[("{{ c }}", ("f1.0",))], float)
    assert exprs == EXPRS


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"scheme": "rendered/0", "values": [], "exprs": []}, id="other-scheme"),
        # the shape before: expressions with a type and the names read, which the cache must not decide
        pytest.param({"scheme": "rendered/1", "values": [], "exprs": [["s", True, ["a"]]]}, id="names-kept-before"),
        pytest.param({"scheme": "rendered/2", "values": []}, id="missing-key"),
        pytest.param([], id="not-an-object"),
        pytest.param({"scheme": "rendered/2", "values": [["s", ["p"]]], "exprs": []}, id="row-short"),
        pytest.param({"scheme": "rendered/2", "values": [[1, ["p"], 1]], "exprs": []}, id="source-a-number"),
        pytest.param({"scheme": "rendered/2", "values": [["s", "p", 1]], "exprs": []}, id="prints-not-a-list"),
        pytest.param({"scheme": "rendered/2", "values": [["s", [1], 1]], "exprs": []}, id="print-a-number"),
        pytest.param({"scheme": "rendered/2", "values": {}, "exprs": []}, id="values-not-a-list"),
        pytest.param({"scheme": "rendered/2", "values": [], "exprs": [["s", True, ["a"]]]}, id="expr-with-names"),
        pytest.param({"scheme": "rendered/2", "values": [], "exprs": {}}, id="exprs-not-a-list"),
        pytest.param({"scheme": "rendered/2", "values": [], "exprs": [1]}, id="expr-source-a-number"),
    ],
)
def test_rendered_scalars_of_another_shape_are_refused(raw: object) -> None:
    with pytest.raises(EntryError):
        decode_rendered(json.dumps(raw).encode())


def test_kept_scalars_load_and_a_damaged_entry_is_an_empty_cache(store: ResultCache) -> None:
    kept = RenderedScalars(store)
    assert kept.load() == {}
    cache = kept.load()
    cache.update(VALUES)
    kept.save(cache)
    assert store.written == 1
    again = RenderedScalars(ResultCache(store.root))
    loaded = again.load()
    assert list(loaded.items()) == VALUES
    again.save(loaded)  # nothing new: not written again
    assert again.store.written == 0
    path = entry_path(store, RenderedScalars.key())
    _rewrite(path, _body(path).replace(b"x,y", b"x,z"), fix_digest=False)
    assert RenderedScalars(ResultCache(store.root)).load() == {}


def test_a_document_its_reader_says_not_to_keep_is_parsed_each_time(store: ResultCache) -> None:
    def refuses(doc: Document) -> bool:
        return False

    def fails(doc: Document) -> bool:
        raise InputError("schemas/engine.schema.json: does not load")

    for keep in (refuses, fails):
        for _ in range(2):
            docs = ParsedDocuments(ResultCache(store.root))
            doc = docs.load(TEXT, path=PATH, layer="base", keep=keep)
            assert_same(doc, load_document(TEXT, path=PATH, layer="base"))
            assert docs.parsed == 1
    assert store.written == 0
    kept = ParsedDocuments(store)
    kept.load(TEXT, path=PATH, layer="base", keep=lambda doc: True)
    assert store.written == 1


@pytest.mark.parametrize(
    "dist", ["ruamel.yaml", "ruamel.yaml.clib", "jinja2", "markupsafe", "MarkupSafe", "jsonschema-rs"]
)
def test_dist_version_reads_what_importlib_metadata_reads(dist: str) -> None:
    from importlib import metadata

    from compiler.incremental.parsed import dist_version

    assert dist_version(dist) == metadata.version(dist)


def test_dist_version_of_a_distribution_not_installed_is_a_question_mark() -> None:
    from compiler.incremental.parsed import dist_version

    assert dist_version("no-such-distribution-llmcc") == "?"
