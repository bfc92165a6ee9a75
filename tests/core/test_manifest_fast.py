"""The manifest's exact check (compiler.project) against its pydantic models (compiler.manifest_schema).

The exact check reads a valid llmcc.yaml without building the models (issue 14 §1). It may
leave a value to the models, never accept one they refuse, and never build other values.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from compiler import manifest_schema, project
from compiler.errors import InputError
from compiler.project import load_project, manifest_from
from tests._near_valid import Shapes, often

PAIRS = [
    (getattr(project, name), getattr(manifest_schema, name))
    for name in (
        "EnvironmentSpec",
        "TenantSpec",
        "KeySpec",
        "KeysSpec",
        "SigningSpec",
        "StorageSpec",
        "AllowedFile",
        "SecretsGuardSpec",
        "UnpairedSpec",
        "Manifest",
    )
]

NAMES = ["dev", "prod", "acme", "p_1-x", "a" * 63, "a" * 64, "Dev", "1dev", "", "dev\n", "dév"]
TEXTS = [*NAMES, "x", "age", "awskms", "vault-transit", "AGE", "transit", "7d", "36h", "366d", "367d", "8785h"]
TEXTS += ["8784h", "0d", "99999h", "7w", "7d\n", "0" * 64, "f" * 64, "F" * 64, "0" * 63, "*", "*@acme", "dev@acme"]
ATOM = st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1, 1.5]), st.sampled_from(TEXTS))
JUNK = st.one_of(ATOM, st.lists(ATOM, max_size=2), st.dictionaries(st.sampled_from(TEXTS), ATOM, max_size=2))
SHAPES = Shapes(ATOM, JUNK)
mapping, field_value = SHAPES.mapping, SHAPES.field_value


def texts(strategy: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    return often(st.lists(st.sampled_from(TEXTS) if strategy is None else strategy, max_size=3), JUNK)


name = field_value(NAMES[:5])
key_spec = mapping(
    {},
    {
        "provider": field_value(["age", "awskms", "vault-transit"]),
        "recipients": texts(),
        "key_id": ATOM,
        "region": ATOM,
        "endpoint_url": ATOM,
        "address": ATOM,
        "mount": ATOM,
    },
)
MANIFESTS = mapping(
    {"project": name, "environments": often(st.dictionaries(name, mapping({}, {"extends": name})), JUNK)},
    {
        "tenants": often(st.dictionaries(name, mapping({"environments": texts(name)}, {})), JUNK),
        "keys": mapping(
            {}, {"compiler": st.one_of(st.none(), key_spec, key_spec), "targets": st.dictionaries(name, key_spec)}
        ),
        "signing": mapping({}, {"trusted": texts()}),
        "storage": mapping({}, {"default": ATOM, "pointer_expiry": field_value(["7d", "36h", "366d", "367d"])}),
        "secrets_guard": mapping(
            {}, {"allow": texts(mapping({"path": ATOM, "sha256": field_value(["0" * 64]), "reason": ATOM}, {}))}
        ),
        "unpaired": mapping({}, {"schemas": texts(), "templates": texts(), "layers": texts()}),
    },
)


def models_accept(value: Any) -> BaseModel | None:
    try:
        return manifest_schema.Manifest.model_validate(value)
    except PydanticValidationError:
        return None


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(MANIFESTS)
def test_the_exact_check_accepts_only_what_the_models_accept_and_builds_the_same(value: Any) -> None:
    fast = manifest_from(value)
    model = models_accept(value)
    if fast is not None:
        assert model is not None, "the exact check accepted what the models refuse"
    if model is not None:
        # what the models accept, in the form they give it, the exact check builds the same way
        assert manifest_from(model.model_dump()) == (fast if fast is not None else manifest_from(model.model_dump()))
        assert manifest_from(model.model_dump()) is not None
        assert dataclasses.asdict(manifest_from(model.model_dump())) == model.model_dump()  # type: ignore[arg-type]


@pytest.mark.parametrize(("runtime", "model"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_the_runtime_types_have_the_models_fields_and_defaults(runtime: type, model: type[BaseModel]) -> None:
    fields = dataclasses.fields(runtime)
    assert [f.name for f in fields] == list(model.model_fields)
    assert runtime.__doc__ == model.__doc__ or model.__doc__ is None or runtime.__name__ == "Manifest"
    for f in fields:
        info = model.model_fields[f.name]
        if f.default is not dataclasses.MISSING:
            assert info.default == f.default
        elif f.default_factory is not dataclasses.MISSING:
            made = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
            made = made.model_dump() if isinstance(made, BaseModel) else made
            built = f.default_factory()
            assert (dataclasses.asdict(built) if dataclasses.is_dataclass(built) else built) == made
        else:
            assert info.is_required()


VALID = b"""\
project: demo
environments:
  dev: {}
  prod: {extends: dev}
tenants:
  acme: {environments: [prod]}
keys:
  compiler: {recipients: [age1x]}
  targets:
    prod: {provider: awskms, key_id: arn, region: eu-west-1}
signing: {trusted: [keys/a.pub]}
storage: {default: "s3://b/p", pointer_expiry: 36h}
secrets_guard:
  allow:
    - {path: a.pem, sha256: "%s", reason: a test fixture}
unpaired: {schemas: [a], templates: [b.yaml], layers: [environments/x.yaml]}
""" % (b"0" * 64)


def test_a_valid_manifest_takes_the_exact_path_with_every_section() -> None:
    doc_value = load_project(VALID).document.value
    fast = manifest_from(doc_value)
    assert fast is not None
    assert dataclasses.asdict(fast) == manifest_schema.Manifest.model_validate(doc_value).model_dump()


def test_loading_a_valid_manifest_builds_no_pydantic_model() -> None:
    probe = (
        "import sys; from compiler.project import load_project;"
        f"load_project({VALID!r});"
        "print(sorted(m for m in ('pydantic', 'compiler.manifest_schema') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"project: demo\nenvironments: {dev: {}}\nstorage: {pointer_expiry: 367d}\n", "storage.pointer_expiry"),
        (b"project: Demo\nenvironments: {dev: {}}\n", "names must be lowercase identifiers"),
        (b"project: demo\nenviroments: {dev: {}}\n", "unknown field (did you mean 'environments'?)"),
    ],
)
def test_what_the_exact_check_leaves_the_models_refuse_with_their_message(text: bytes, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        load_project(text)
