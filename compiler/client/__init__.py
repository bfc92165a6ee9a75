"""The runtime client: a service's verified, decrypted, hot-reloaded config (issue 11).

    from compiler.client import ConfigClient

    with ConfigClient("s3://bucket/prefix", "prod@acme", ["keys/ci.pub"],
                      identity="/run/secrets/acme.agekey", cache_dir="/var/cache/llmcc") as client:
        client.get("inference-engine.model.temperature")
        client.secret("data-pipeline.db.password").reveal()

Runtime tier: this package imports the reader, verification, bundle, storage
and secrets-reading modules only, never the compile-time stack (README
"Consuming config in a service").
"""

from __future__ import annotations

import logging

from compiler.client.configclient import ChangeCallback, ConfigClient, NoVersionError
from compiler.client.keys import FROM_ENVIRONMENT
from compiler.client.metrics import REASONS, ClientMetrics, ClientStatus
from compiler.client.poller import next_delay
from compiler.client.secret import Secret
from compiler.client.snapshot import NoSuchPathError, Snapshot
from compiler.errors import UnknownTargetError
from compiler.storage.base import NoStoreError

# A library's logger: records go where the service's logging config sends them, nowhere otherwise.
logging.getLogger("llmcc.client").addHandler(logging.NullHandler())

__all__ = [
    "FROM_ENVIRONMENT",
    "REASONS",
    "ChangeCallback",
    "ClientMetrics",
    "ClientStatus",
    "ConfigClient",
    "NoStoreError",
    "NoSuchPathError",
    "NoVersionError",
    "Secret",
    "Snapshot",
    "UnknownTargetError",
    "next_delay",
]
