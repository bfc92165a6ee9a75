"""Helpers shared by the storage, publish and signing tests: keys, bundle bodies, store specs.

A ``StoreSpec`` is a JSON-able recipe for opening the same store in a test and
in a publisher subprocess (``tests/storage/_publisher.py``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.bundle.dsse import Keyring, Signer, load_signing_key
from compiler.storage.base import Store
from compiler.storage.file import FileStore
from compiler.storage.oci import OciStore
from compiler.storage.s3 import S3Store


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes

    @property
    def signer(self) -> Signer:
        return load_signing_key(self.private_pem)

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        private, public = directory / f"{name}.pem", directory / f"{name}.pub"
        private.write_bytes(self.private_pem)
        public.write_bytes(self.public_pem)
        return private, public


def new_keypair() -> KeyPair:
    key = Ed25519PrivateKey.generate()
    return KeyPair(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )


def keyring_of(*signers: Signer) -> Keyring:
    return Keyring(s.public_key for s in signers)


def make_body(target: str = "prod", n: int = 1, *, project: str = "llm-platform") -> dict:
    """A small bundle body (no version, no previous) whose content depends on ``n``."""
    return {
        "apiVersion": "llmcc/v1",
        "kind": "Bundle",
        "metadata": {
            "project": project,
            "target": target,
            "source": {
                "commit": f"{n:040x}",
                "author": "Ada Author <ada@example.com>",
                "committed_at": "2026-01-01T00:00:00Z",
                "message": f"change {n}",
                "dirty": False,
            },
            "compiler": "llmcc 0.1.0",
        },
        "modules": {"inference-engine": {"model": {"name": "m", "temperature": 0.5, "max_tokens": 1000 + n}}},
        "encryption": None,
    }


@dataclass(frozen=True)
class StoreSpec:
    kind: str
    path: str = ""
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    registry: str = ""
    repository: str = ""
    lock_dir: str = ""
    settle_seconds: float = 0.3

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> StoreSpec:
        return cls(**json.loads(text))

    def open(self, *, lock_dir: str | None = None) -> Store:
        if self.kind == "file":
            return FileStore(Path(self.path))
        if self.kind == "s3":
            return S3Store(self.bucket, self.prefix, endpoint_url=self.endpoint_url)
        if self.kind == "oci":
            return OciStore(
                self.registry,
                self.repository,
                lock_dir=Path(lock_dir or self.lock_dir),
                settle_seconds=self.settle_seconds,
            )
        raise ValueError(self.kind)
