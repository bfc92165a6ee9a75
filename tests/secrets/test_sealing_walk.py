"""One sealing walk (issue 14 §5): ``build`` (``KeyFileSealer``) and ``seal_modules`` are the same walk.

The two copies each sealed a secret path again when it lay inside another
secret path: a schema can mark both ``$.a`` and ``$.a.b`` (two ``allOf``
branches), and ``$.a.b``'s ciphertext was then sealed a second time, so the
reader opened it to ``ENC[...]`` text instead of the value.
"""

from __future__ import annotations

from pathlib import Path

from compiler.jsontypes import JSONObject
from compiler.project import Target
from compiler.secrets.envelope import is_enc
from compiler.secrets.reader import open_secrets, seal_modules
from compiler.validate.secretwalk import secret_paths
from tests.core.test_schema_engine import module_schema
from tests.secrets._secrets_support import AgeKeys, new_canary
from tests.secrets.test_secret_reader import consumer, make_bundle

OVERLAP = {
    "allOf": [
        {"properties": {"a": {"x-secret": True}}},
        {"properties": {"a": {"properties": {"b": {"x-secret": True}}}}},
    ]
}


def test_a_schema_can_mark_a_secret_inside_a_secret() -> None:
    schema = module_schema(OVERLAP)
    assert sorted(secret_paths(schema, {"a": {"b": "x", "c": "y"}})) == [("a",), ("a", "b")]


def test_a_secret_inside_a_secret_is_sealed_once_and_opens_to_its_value(repo: Path, age_keys: AgeKeys) -> None:
    plain: JSONObject = {"m": {"a": {"b": new_canary(), "c": new_canary()}, "plain": 1}}
    paths = [("m", ("a",)), ("m", ("a", "b"))]
    bundle = make_bundle(repo, age_keys, Target("prod"), plain, paths)
    sealed = bundle["modules"]["m"]  # type: ignore[index,call-overload]
    assert is_enc(sealed["a"]["b"])
    assert is_enc(sealed["a"]["c"])
    provider = consumer(age_keys.default.file, age_keys.default.recipient)
    assert open_secrets(bundle, provider) == plain  # before: a.b opened to the ENC[...] of its first sealing


def test_the_order_of_the_paths_does_not_matter() -> None:
    plain: JSONObject = {"m": {"a": {"b": "x"}, "l": [1, {"k": "v"}]}}
    paths = [("m", ("a", "b")), ("m", ("l", 1)), ("m", ("a",)), ("m", ("l",))]
    dek = b"\x02" * 32
    assert seal_modules(plain, paths, dek, "prod") == seal_modules(plain, paths[::-1], dek, "prod")
    assert plain == {"m": {"a": {"b": "x"}, "l": [1, {"k": "v"}]}}  # never changed
