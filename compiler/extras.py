"""The optional parts of the ``llm-config-compiler`` distribution, and the one line when one is missing.

``pip install llm-config-compiler`` installs the runtime tier only: reading,
verifying and decrypting published bundles from file and OCI stores with age
keys (cryptography, pyrage). The rest comes with extras (pyproject.toml):

- ``cli``: everything ``llmcc`` needs to compile, validate and publish
  (pydantic, ruamel.yaml, Jinja, jsonschema-rs, GitPython, CEL, sops, ...);
- ``agent``: the ``llmcc agent`` sidecar's server (uvicorn, Starlette,
  prometheus_client), on top of ``cli``;
- ``s3``: the S3 store (boto3); ``kms``: the AWS KMS key provider (boto3);
  ``vault``: the Vault transit key provider (hvac).

Where such a package is imported lazily, a missing one becomes one line naming
every extra the command needs (exit 2), never a traceback, and never one extra
now and the next after it is installed (issue 11, install footprint).
A leaf module: standard library only.
"""

from __future__ import annotations

from collections.abc import Collection

DISTRIBUTION = "llm-config-compiler"

# Top-level import names of what each extra installs (and what those packages
# import themselves), for telling "the extra is missing" from a bug.
CLI_PACKAGES = frozenset(
    {
        "pydantic",
        "pydantic_core",
        "annotated_types",
        "ruamel",
        "jinja2",
        "markupsafe",
        "jsonschema_rs",
        "git",
        "gitdb",
        "smmap",
        "deepdiff",
        "orderly_set",
        "cel",
        "detect_secrets",
        "yaml",
        "boto3",
        "botocore",
        "hvac",
        "requests",
    }
)
AWS_PACKAGES = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})
VAULT_PACKAGES = frozenset({"hvac", "requests"})


def install_hint(*extras: str) -> str:
    """``pip install 'llm-config-compiler[cli]'``; several extras in one command: ``[cli,agent]``."""
    return f"pip install '{DISTRIBUTION}[{','.join(extras)}]'"


def needs_extra(what: str, *extras: str) -> str:
    """The one message for missing extras, naming every extra ``what`` needs, so one install is enough.

    ``compile needs the cli extra: pip install '...[cli]'``;
    ``agent needs the cli and agent extras: pip install '...[cli,agent]'``.
    """
    if len(extras) == 1:
        return f"{what} needs the {extras[0]} extra: {install_hint(*extras)}"
    names = f"{', '.join(extras[:-1])} and {extras[-1]}"
    return f"{what} needs the {names} extras: {install_hint(*extras)}"


def is_missing(error: ModuleNotFoundError, packages: Collection[str]) -> bool:
    """Whether ``error`` is one of ``packages`` not being installed (not a bug of ours)."""
    return (error.name or "").partition(".")[0] in packages


__all__ = [
    "AWS_PACKAGES",
    "CLI_PACKAGES",
    "DISTRIBUTION",
    "VAULT_PACKAGES",
    "install_hint",
    "is_missing",
    "needs_extra",
]
