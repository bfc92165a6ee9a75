"""The names llmcc.yaml gives environments, tenants and targets ("prod", "prod@acme").

A leaf module: the manifest (compile time) and the stores (runtime) both check
names, and a service that only reads bundles must not load the manifest's
pydantic models for a regular expression (issue 11, install footprint).
"""

from __future__ import annotations

import re

# Environment and tenant names become file names, storage keys and AAD:
# lowercase identifiers only, so "prod@acme" is unambiguous everywhere.
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
_NAME_BODY = NAME_PATTERN[1:-1]
# "prod" or "prod@acme": a target is an environment, optionally @ a tenant.
TARGET_NAME = re.compile(_NAME_BODY + "(@" + _NAME_BODY + ")?")

__all__ = ["NAME_PATTERN", "TARGET_NAME"]
