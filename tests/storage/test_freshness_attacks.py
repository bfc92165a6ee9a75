"""Issue 9 §2-§3, attacked: races, re-pointed store paths, a reader state others can touch, a widened keyring.

Each test failed before its fix; the README section "What a reader refuses" says what they guarantee.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compiler.bundle.dsse import load_public_key
from compiler.errors import LlmccError
from compiler.freshness import Seen
from compiler.publish import publish_target
from compiler.reader import read_target
from compiler.storage.base import Listing
from compiler.storage.file import FileStore
from compiler.storage.seen import SeenFile
from tests.conftest import GitRepo
from tests.storage._cli import llmcc
from tests.storage._support import KeyPair, keyring_of, make_body

D = "sha256:" + "ab" * 32


def test_a_publish_between_a_readers_two_reads_is_not_a_rollback(tmp_path: Path, keypair: KeyPair) -> None:
    """Publish claims N+1, then moves the pointer: a reader listing first and reading the pointer second
    saw a pointer above its listing and called a concurrent publish a rollback (exit 3 during every deploy)."""
    path = tmp_path / "store"
    publish_target(FileStore(path), "prod", make_body("prod", 1), keypair.signer)

    class PublishAfterListing(FileStore):
        """The real file store, where another publisher's whole publish lands right after the first listing."""

        landed = False

        def listing(self, target: str) -> Listing:
            listing = super().listing(target)
            if not self.landed:
                self.landed = True
                publish_target(FileStore(path), "prod", make_body("prod", 2), keypair.signer)
            return listing

    state = read_target(PublishAfterListing(path), "prod", keyring_of(keypair.signer), now=datetime.now(UTC))
    assert state.latest is not None
    assert state.latest.version == 1
    again = read_target(FileStore(path), "prod", keyring_of(keypair.signer), now=datetime.now(UTC), seen=state.seen)
    assert again.latest is not None
    assert again.latest.version == 2
