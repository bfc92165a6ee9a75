"""Bounds that the manifest (when it is loaded) and the readers (when they verify) both enforce.

A leaf module, so the runtime tier checks them without loading llmcc.yaml's models.
"""

from __future__ import annotations

from datetime import timedelta

# The longest a signed pointer may stay valid: readers refuse one expiring later
# (compiler/freshness.py), so one mistaken setting cannot make a store's state
# replayable to new readers for years.
MAX_POINTER_EXPIRY = timedelta(days=366)

__all__ = ["MAX_POINTER_EXPIRY"]
