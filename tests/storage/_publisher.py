"""A publisher in its own process, for the concurrency and crash tests.

    python -m tests.storage._publisher SPEC TARGET BODY_FILE KEY_FILE [CRASH]

SPEC is a ``StoreSpec`` as JSON. CRASH (JSON: patch, match, when, nth) kills
this process with SIGKILL just before or after the nth call of the patched
callable whose arguments' repr contains ``match``: a publisher dying at that
step. Prints the ``PublishResult`` as JSON, or the error and exits 1.
"""

from __future__ import annotations

import json
import os
import pkgutil
import signal
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from compiler.bundle.dsse import load_signing_key
from compiler.errors import LlmccError
from compiler.publish import publish_target
from tests.storage._support import StoreSpec


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_crash(crash: dict[str, Any]) -> None:
    """mock.patch only injects the failure we cannot cause for real: a kill at an exact step."""
    original = pkgutil.resolve_name(crash["patch"])
    seen = 0

    def step(*args: Any, **kwargs: Any) -> Any:
        nonlocal seen
        if crash.get("match", "") in repr(args) + repr(kwargs):
            seen += 1
            if seen == crash.get("nth", 1):
                if crash["when"] == "before":
                    _die()
                try:
                    return original(*args, **kwargs)
                finally:
                    _die()
        return original(*args, **kwargs)

    mock.patch(crash["patch"], step).start()


def main(argv: list[str]) -> int:
    spec, target, body_file, key_file = StoreSpec.from_json(argv[0]), argv[1], Path(argv[2]), Path(argv[3])
    if len(argv) > 4:
        install_crash(json.loads(argv[4]))
    try:
        result = publish_target(
            spec.open(), target, json.loads(body_file.read_text()), load_signing_key(key_file.read_bytes())
        )
    except LlmccError as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps({"version": result.version, "created": result.created, "digest": result.digest}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
