"""ConfigClient on a file store published by the real CLI: reads, swaps, callbacks, secrets (issue 11 §1, §3, §5)."""

from __future__ import annotations

import copy
import json
import logging
import math
import pickle  # noqa: TID251 - only pickles, to show a Secret refuses
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from compiler.client import ConfigClient, NoSuchPathError, NoVersionError, Secret, Snapshot, UnknownTargetError
from compiler.errors import LlmccError, SecretsError, UsageError
from compiler.storage.file import FileStore
from tests.client.conftest import TRUSTED, Platform
from tests.conftest import DEMO_IDENTITY

TEMPERATURE = "inference-engine.model.temperature"
PASSWORD = "data-pipeline.db.password"


def client_for(store: Path, **kwargs: object) -> ConfigClient:
    kwargs.setdefault("identity", DEMO_IDENTITY)
    return ConfigClient(f"file://{store}", "prod", [TRUSTED], **kwargs)  # type: ignore[arg-type]


def test_reads_the_latest_version_read_only(platform: Platform, tmp_path: Path) -> None:
    client = client_for(platform.copy_store(3, tmp_path / "store"))
    assert client.version is None
    with pytest.raises(NoVersionError, match="prod: no verified version yet"):
        client.get(TEMPERATURE)
    assert client.refresh() is True
    assert client.version == 3
    assert client.get(TEMPERATURE) == 0.5
    assert client.get("inference-engine$.model.temperature") == 0.5  # the syntax explain prints
    module = client.module("inference-engine")
    assert isinstance(module, MappingProxyType)
    assert module["model"]["temperature"] == 0.5
    with pytest.raises(TypeError):
        module["model"]["temperature"] = 1.0  # type: ignore[index]
    fallbacks = client.get("inference-engine.routing.fallbacks")
    assert isinstance(fallbacks, tuple)
    assert client.get("inference-engine.no.such", None) is None
    with pytest.raises(NoSuchPathError, match=r"prod version 3: no value at inference-engine\$\.no"):
        client.get("inference-engine.no.such")
    with pytest.raises(NoSuchPathError, match="prod version 3: unknown module 'nope'; modules: api-gateway, "):
        client.get("nope.x")
    with pytest.raises(NoSuchPathError, match="no module 'nope'"):
        client.module("nope")
    assert client.refresh() is False  # nothing newer
    assert client.status.version == 3
    assert client.status.source == "store"
    assert client.status.last_error is None
    assert repr(client) == f"ConfigClient(store='file://{tmp_path / 'store'}', target='prod', version=3)"


def test_a_secret_is_shown_only_when_revealed(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(platform.copy_store(1, tmp_path / "store"))
    client.refresh()
    secret = client.secret(PASSWORD)
    assert isinstance(secret, Secret)
    assert secret.reveal() == platform.canary
    assert client.get(PASSWORD) is secret  # one object per path and version
    assert client.module("data-pipeline")["db"]["password"] is secret
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>80}", "%s" % (secret,)]  # noqa: UP031
    assert all(s == "Secret(data-pipeline$.db.password, <redacted>)".strip() or platform.canary not in s for s in shown)
    assert all("<redacted>" in s for s in shown)
    with caplog.at_level(logging.INFO):
        logging.getLogger("service").info("password is %s", secret)
        logging.getLogger("service").info("config %s", client.module("data-pipeline"))
    assert platform.canary not in caplog.text
    assert "<redacted>" in caplog.text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    with pytest.raises(TypeError, match="cannot be pickled"):
        secret.__reduce__()
    with pytest.raises(TypeError):
        json.dumps(secret)
    assert copy.copy(secret) is secret
    assert copy.deepcopy({"p": secret})["p"] is secret
    with pytest.raises(TypeError, match="no state"):
        secret.__getstate__()  # object's default handed the slots, plaintext included, to serializers
    with pytest.raises(TypeError):
        vars(secret)
    with pytest.raises(SecretsError, match="not an encrypted secret field"):
        client.secret(TEMPERATURE)
    assert Secret.of("x$.y", 3).reveal() == 3


def test_secrets_need_an_identity(platform: Platform, tmp_path: Path) -> None:
    client = client_for(platform.copy_store(1, tmp_path / "store"), identity=None)
    assert client.refresh() is True
    assert client.get(TEMPERATURE) == 0.3  # config without secrets works
    with pytest.raises(SecretsError, match="no identity for secrets"):
        client.secret(PASSWORD)


def test_a_version_the_identity_cannot_open_is_refused_before_the_swap(
    platform: Platform, tmp_path: Path, age_outsider: Path
) -> None:
    client = client_for(platform.copy_store(1, tmp_path / "store"), identity=age_outsider)
    errors: list[LlmccError] = []
    client.on_error(errors.append)
    with pytest.raises(SecretsError):
        client.refresh()
    assert client.version is None
    assert client.metrics().refusals == {"secrets": 1}
    assert len(errors) == 1


def test_change_callbacks_run_after_the_swap_and_cannot_undo_it(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = platform.copy_store(1, tmp_path / "store")
    client = client_for(store)
    calls: list[tuple[int | None, int, frozenset[str], int | None]] = []

    @client.on_change
    def record(old: Snapshot | None, new: Snapshot, changed: frozenset[str]) -> None:
        calls.append((old.version if old else None, new.version, changed, client.version))

    @client.on_change
    def broken(old: Snapshot | None, new: Snapshot, changed: frozenset[str]) -> None:
        raise RuntimeError("a service bug")

    with caplog.at_level(logging.INFO, logger="llmcc.client"):
        assert client.refresh() is True
        shutil.rmtree(store)
        shutil.copytree(platform.stores[3], store)  # two versions on: the chain 1-3 is verified
        assert client.refresh() is True
    assert calls[0][:2] == (None, 1)
    assert "inference-engine$" in calls[0][2]  # from nothing: every module is new
    assert calls[1][:2] == (1, 3)
    assert calls[1][3] == 3  # the callback saw the new version served already
    assert "inference-engine$.model.temperature" in calls[1][2]
    assert "data-pipeline$.db.password" not in calls[1][2]  # unchanged secret, same ciphertext
    assert client.version == 3
    assert "a change callback raised (version 3 stays)" in caplog.text
    swapped = [r for r in caplog.records if getattr(r, "llmcc_event", None) == "swapped"]
    assert [r.llmcc_version for r in swapped] == [1, 3]  # type: ignore[attr-defined]
    assert client.metrics().swaps == 2


def test_snapshot_reads_come_from_one_version(platform: Platform, tmp_path: Path) -> None:
    store = platform.copy_store(1, tmp_path / "store")
    client = client_for(store)
    client.refresh()
    snap = client.snapshot
    shutil.rmtree(store)
    shutil.copytree(platform.stores[2], store)
    client.refresh()
    assert (snap.version, snap.get(TEMPERATURE)) == (1, 0.3)
    assert (client.version, client.get(TEMPERATURE)) == (2, 0.4)
    assert repr(snap).startswith("Snapshot(target='prod', version=1, digest='sha256:")
    assert "inference-engine" in snap.modules
    assert snap.metadata["target"] == "prod"


def test_bad_arguments_are_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(LlmccError, match="no trusted keys"):
        ConfigClient(f"file://{tmp_path}", "prod", [])
    with pytest.raises(LlmccError, match="cannot read the trusted key"):
        ConfigClient(f"file://{tmp_path}", "prod", [tmp_path / "missing.pub"])
    with pytest.raises(LlmccError, match="is not a target name"):
        ConfigClient(f"file://{tmp_path}", "Prod!", [TRUSTED])
    with pytest.raises(LlmccError, match="unknown store"):
        ConfigClient("ftp://x", "prod", [TRUSTED])
    with pytest.raises(LlmccError, match="not a SubjectPublicKeyInfo PEM"):
        ConfigClient(f"file://{tmp_path}", "prod", [b"not a key"])
    assert ConfigClient(f"file://{tmp_path}", "prod", [TRUSTED.read_bytes()]).version is None
    with pytest.raises(SecretsError, match="cannot read identity file"):
        ConfigClient(f"file://{tmp_path}", "prod", [TRUSTED], identity=tmp_path / "none.agekey")


def test_a_target_the_store_never_published_is_unknown(platform: Platform, tmp_path: Path) -> None:
    """Issue 13 "Fragile": ``prdo`` is a typo until proven otherwise, refused by start() and refresh()."""
    store = platform.copy_store(1, tmp_path / "store")
    client = ConfigClient(f"file://{store}", "prdo", [TRUSTED], cache_dir=tmp_path / "cache")
    line = f"unknown target 'prdo' (did you mean 'prod'?); published in file://{store}: prod"
    with pytest.raises(UnknownTargetError) as caught:
        client.start()
    assert (str(caught.value), caught.value.exit_code) == (line, 2)
    with pytest.raises(UnknownTargetError):
        client.refresh()
    assert client.status.last_error == line
    assert client.metrics().fetch_errors == 0  # not an outage
    (tmp_path / "empty").mkdir()  # a store with nothing in it (a missing one is no store: down, not unknown)
    empty = ConfigClient(f"file://{tmp_path / 'empty'}", "prod", [TRUSTED])
    with pytest.raises(UnknownTargetError, match=r"^unknown target 'prod'; published in file://.*: nothing$"):
        empty.refresh()


def test_nothing_published_for_a_target_this_client_accepted_before_is_a_fetch_error(
    platform: Platform, tmp_path: Path
) -> None:
    """A mark proves the target: a store that lost it is an outage or an attack, not a typo."""
    store = platform.copy_store(1, tmp_path / "store")
    assert client_for(store, cache_dir=tmp_path / "cache").refresh() is True
    shutil.rmtree(store / "prod")
    (tmp_path / "cache" / "lastgood").mkdir()
    for cached in (tmp_path / "cache").glob("*.lastgood.json"):
        cached.rename(tmp_path / "cache" / "lastgood" / cached.name)  # no version held: only the mark proves it
    client = client_for(store, cache_dir=tmp_path / "cache")
    assert client.version is None
    with pytest.raises(LlmccError) as caught:
        client.refresh()
    assert not isinstance(caught.value, UnknownTargetError)
    assert client.metrics().fetch_errors + sum(client.metrics().refusals.values()) == 1
    assert client.status.last_error is not None


def test_a_key_provider_object_is_used_as_given(platform: Platform, tmp_path: Path) -> None:
    from compiler.project import KeySpec
    from compiler.secrets.identity import load_identities
    from compiler.secrets.kek import provider_for

    spec = KeySpec(provider="age", recipients=[_recipient()])
    provider = provider_for(spec, load_identities(DEMO_IDENTITY, {}))
    client = client_for(platform.copy_store(1, tmp_path / "store"), identity=provider)
    client.refresh()
    assert client.secret(PASSWORD).reveal() == platform.canary


def _recipient() -> str:
    return next(
        line.split(": ", 1)[1] for line in DEMO_IDENTITY.read_text().splitlines() if line.startswith("# public key")
    )


@pytest.fixture
def age_outsider(tmp_path: Path) -> Path:
    import pyrage

    path = tmp_path / "outsider.agekey"
    path.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    return path


class CountingStore:
    """A file store that records what is read through it."""

    def __init__(self, store: FileStore) -> None:
        self._store = store
        self.reads: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def read(self, target: str, version: int) -> bytes:
        self.reads.append(version)
        return self._store.read(target, version)


def test_held_envelopes_are_not_fetched_again_and_a_new_version_comes_as_a_delta(
    platform: Platform, tmp_path: Path
) -> None:
    path = platform.copy_store(2, tmp_path / "store")
    store = CountingStore(FileStore(path))
    client = ConfigClient(store, "prod", [TRUSTED])  # type: ignore[arg-type]
    assert client.refresh() is True
    assert store.reads == [1, 2]  # the latest and the version it links to
    store.reads.clear()
    assert client.refresh() is False
    assert store.reads == []  # unchanged: the pointer and the listing only
    shutil.rmtree(path)
    shutil.copytree(platform.stores[3], path)
    assert client.refresh() is True
    # version 3 rebuilt from its delta on the held version 2 (issue 11 §7), verified as a whole one
    assert (store.reads, client.metrics().deltas, client.version) == ([], 1, 3)


def test_a_delta_that_does_not_verify_falls_back_to_the_whole_version(platform: Platform, tmp_path: Path) -> None:
    path = platform.copy_store(2, tmp_path / "store")
    store = CountingStore(FileStore(path))
    client = ConfigClient(store, "prod", [TRUSTED])  # type: ignore[arg-type]
    assert client.refresh() is True
    shutil.rmtree(path)
    shutil.copytree(platform.stores[3], path)
    delta = path / ".llmcc-deltas" / "prod" / "00000003.delta.json"
    doc = json.loads(delta.read_bytes())
    doc["signatures"] = []  # a hostile store's delta: the rebuilt envelope carries no signature
    delta.write_text(json.dumps(doc))
    store.reads.clear()
    assert client.refresh() is True
    assert (client.version, client.metrics().deltas) == (3, 0)
    assert 3 in store.reads  # read whole


@pytest.mark.parametrize(
    ("arg", "value"),
    [
        ("poll_interval", 0.0),  # Event.wait(0) returns at once: a hot loop on the store
        ("poll_interval", -1.0),
        ("poll_interval", math.nan),  # also a hot loop: NaN > 0 is false, so the wait does not block
        ("poll_interval", math.inf),  # OverflowError in the poller thread: polling ends silently
        ("poll_interval", 1e300),
        ("max_backoff", 0.0),
        ("max_backoff", math.nan),
        ("jitter", 1.0),  # a delay of 0 when the random draw is 0
        ("jitter", -0.1),
        ("jitter", math.nan),
        ("max_age", math.nan),  # never stale
        ("max_age", -1.0),
    ],
)
def test_timings_that_would_hot_loop_or_never_go_stale_are_refused(
    platform: Platform, tmp_path: Path, arg: str, value: float
) -> None:
    store = platform.copy_store(1, tmp_path / "store")
    with pytest.raises(UsageError, match=arg):
        ConfigClient(f"file://{store}", "prod", [TRUSTED], **{arg: value})  # type: ignore[arg-type]


def test_max_age_zero_and_infinity_are_allowed(platform: Platform, tmp_path: Path) -> None:
    store = platform.copy_store(1, tmp_path / "store")
    now = [datetime.now(UTC)]
    always = ConfigClient(f"file://{store}", "prod", [TRUSTED], max_age=0, clock=lambda: now[0])
    never = ConfigClient(f"file://{store}", "prod", [TRUSTED], max_age=math.inf, clock=lambda: now[0])
    for client in (always, never):
        client.refresh()
    now[0] += timedelta(days=3650)
    assert always.status.stale is True
    assert never.status.stale is False


def test_key_material_given_where_a_path_goes_is_refused_unshown(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A careless service passes the key itself (from an env var): every "cannot read <path>" showed the key."""
    from compiler.cli import main
    from compiler.secrets.identity import load_identities
    from tests.client.conftest import SIGNING
    from tests.secrets._secrets_support import new_canary

    age_key = f"AGE-SECRET-KEY-1{new_canary().upper()}"
    kind = "PRIVATE KEY"  # spelled apart: the repository's own secrets guard scans this file
    pem = f"-----BEGIN {kind}-----\n{new_canary()}\n-----END {kind}-----\n"
    store = f"file://{platform.copy_store(1, tmp_path / 'store')}"
    errors: list[LlmccError] = []
    for build in (
        lambda: ConfigClient(store, "prod", [TRUSTED], identity=age_key),
        lambda: ConfigClient(store, "prod", [pem]),
        lambda: load_identities(None, {"SOPS_AGE_KEY_FILE": age_key}),
    ):
        with pytest.raises(LlmccError) as info:
            build()
        errors.append(info.value)
    assert "SOPS_AGE_KEY_FILE holds key material" in str(errors[2])
    for error in errors:
        assert "not shown" in str(error)
        assert error.__cause__ is None
        assert error.__context__ is None
    text = "\n".join(str(e) for e in errors)
    assert age_key not in text
    assert age_key.lower() not in text
    assert pem not in text

    key_text = SIGNING.read_text()
    argv = ["-C", str(platform.root), "publish", "-q", "--signing-key", key_text, "--store", store, "-t", "prod"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds key material" in err
    assert key_text.splitlines()[1] not in err
