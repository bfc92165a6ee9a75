"""Is a SOPS file encrypted for exactly the recipients ``.sops.yaml`` names for its path? (issue 9 §5)

Anyone can encrypt for a public age recipient. A SOPS file re-encrypted by
someone who holds only the compiler's recipient compiles as before, with their
value in it. Comparing the file's recipients with the creation rule makes the
lazy case visible (the file then opens for the compiler only, and the team's
own keys are gone); the diff shows the value as changed in every case. What
this does not prove: who wrote the value. A writer who encrypts for every
recipient of the rule passes; review and branch protection cover that.

Rules (sops ``config.go``): the first rule whose ``path_regex`` matches the
path (a rule without one matches every path) gives the recipients, as
comma-separated strings or lists, or as ``key_groups`` with a ``shamir_threshold``
(default: every group; sops writes a rule with one group as a flat list). The
key groups and the threshold are compared, not only the recipients. A recipient is compared
as ``kind:id``: ``age:age1...``, ``pgp:FINGERPRINT``, ``kms:ARN``,
``gcp_kms:RESOURCE``, ``hc_vault:URI``, ``azure_kv:URL/keys/NAME/VERSION``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from compiler.diagnostics import plural
from compiler.errors import InputError
from compiler.load.yaml import Value, load_document
from compiler.secrets.sopsfile import go_regex

SOPS_CONFIG = ".sops.yaml"
KeyGroups = tuple[frozenset[str], ...]  # each group's recipients, groups in sorted order
# Creation-rule keys holding comma-separated recipients, and the kind each names.
_RULE_KEYS = {
    "age": "age",
    "pgp": "pgp",
    "kms": "kms",
    "gcp_kms": "gcp_kms",
    "hc_vault_transit_uri": "hc_vault",
    "azure_keyvault": "azure_kv",
}


def rule_recipients(config: bytes, path: str) -> frozenset[str] | None:
    """The recipients of the first creation rule matching ``path``; None when none matches.

    Raises:
        InputError: ``.sops.yaml`` is not YAML, or a ``path_regex`` is not a regular expression.
    """
    found = rule_key_groups(config, path)
    return None if found is None else _union(found[0])


def rule_key_groups(config: bytes, path: str) -> tuple[KeyGroups, int] | None:
    """The key groups and Shamir threshold of the first creation rule matching ``path``; None when none matches.

    Raises:
        InputError: see ``rule_recipients``.
    """
    doc = load_document(config, path=SOPS_CONFIG, layer="sops-config")
    rules = doc.value.get("creation_rules") if isinstance(doc.value, dict) else None
    for n, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        pattern = rule.get("path_regex")
        if isinstance(pattern, str):
            try:
                if go_regex(pattern).search(path) is None:
                    continue
            except re.error as e:
                where = doc.origin(("creation_rules", n, "path_regex")).location()
                raise InputError(
                    f"{where}: path_regex is not a regular expression llmcc reads as sops does: {e}"
                ) from e
        groups = rule.get("key_groups")
        if isinstance(groups, list):
            found = [frozenset(_group(g, rule_form=True)) for g in groups if isinstance(g, dict)]
            return _normal(found, rule.get("shamir_threshold"))
        return _normal([frozenset(_rule_keys(rule))], None)
    return None


def file_recipients(meta: Mapping[str, Value]) -> frozenset[str]:
    """The recipients a SOPS file's metadata (its ``sops:`` mapping) wraps the data key for."""
    return _union(file_key_groups(meta)[0])


def file_key_groups(meta: Mapping[str, Value]) -> tuple[KeyGroups, int]:
    """The key groups and Shamir threshold of a SOPS file's metadata."""
    groups = meta.get("key_groups")
    if isinstance(groups, list):
        found = [frozenset(_group(g, rule_form=False)) for g in groups if isinstance(g, dict)]
        return _normal(found, meta.get("shamir_threshold"))
    return _normal([frozenset(_group(meta, rule_form=False))], None)


def recipient_mismatch(config: bytes | None, path: str, meta: Mapping[str, Value]) -> str | None:
    """Why the file's recipients differ from its creation rule's, or None when they are the same.

    The same recipients in other key groups, or another Shamir threshold, differ
    too: one group of A and B opens with either key, groups A and B need both.

    Raises:
        InputError: see ``rule_recipients``.
    """
    if config is None:
        return f"no {SOPS_CONFIG}: the recipients of this SOPS file cannot be checked"
    rule = rule_key_groups(config, path)
    if rule is None:
        return f"no creation rule in {SOPS_CONFIG} matches this path: its recipients cannot be checked"
    found = file_key_groups(meta)
    if found == rule:
        return None
    advice = f"re-encrypted by someone else? check the value, then: sops updatekeys {path}"
    wanted, have = _union(rule[0]), _union(found[0])
    if have == wanted:
        return (
            f"encrypted for the recipients of the {SOPS_CONFIG} creation rule for this path, but in "
            f"{_shape(found)} where the rule names {_shape(rule)} (fewer keys may open it); {advice}"
        )
    parts = []
    if wanted - have:
        parts.append("missing " + ", ".join(sorted(wanted - have)))
    if have - wanted:
        parts.append("not in the rule " + ", ".join(sorted(have - wanted)))
    return (
        f"encrypted for other recipients than the {SOPS_CONFIG} creation rule for this path names "
        f"({'; '.join(parts)}); {advice}"
    )


def _normal(groups: list[frozenset[str]], threshold: Value) -> tuple[KeyGroups, int]:
    """Groups in a stable order, and the threshold sops applies (all groups when none is set)."""
    need = threshold if isinstance(threshold, int) and not isinstance(threshold, bool) and threshold > 0 else 0
    if len(groups) < 2:
        need = 1
    return tuple(sorted(groups, key=sorted)), min(need or len(groups), len(groups))


def _union(groups: KeyGroups) -> frozenset[str]:
    return frozenset(r for g in groups for r in g)


def _shape(found: tuple[KeyGroups, int]) -> str:
    groups, threshold = found
    listed = " ".join("[" + ", ".join(sorted(g)) + "]" for g in groups)
    return f"{plural(len(groups), 'key group')} {listed} with threshold {threshold}"


def _rule_keys(rule: Mapping[str, Value]) -> list[str]:
    out = []
    for key, kind in _RULE_KEYS.items():
        value = rule.get(key)
        items = value if isinstance(value, list) else str(value or "").split(",")
        out += [f"{kind}:{_kms_arn(kind, str(i).strip())}" for i in items if str(i).strip()]
    return out


def _kms_arn(kind: str, value: str) -> str:
    return value.split("+", 1)[0] if kind == "kms" else value  # "arn+role" names a role to assume


def _group(group: Mapping[str, Value], *, rule_form: bool) -> list[str]:
    """Recipients of one key group: in ``.sops.yaml`` (``rule_form``) or in a file's metadata."""
    out: list[str] = []
    for entry in _items(group.get("age")):
        r = entry if isinstance(entry, str) else entry.get("recipient") if isinstance(entry, dict) else None
        out += [f"age:{r}"] if isinstance(r, str) else []
    for entry in _items(group.get("pgp")):
        fp = entry if isinstance(entry, str) else entry.get("fp") if isinstance(entry, dict) else None
        out += [f"pgp:{fp}"] if isinstance(fp, str) else []
    for kind, field in (("kms", "arn"), ("gcp_kms", "resource_id")):
        for entry in _items(group.get(kind)):
            v = entry.get(field) if isinstance(entry, dict) else entry
            out += [f"{kind}:{v}"] if isinstance(v, str) else []
    for entry in _items(group.get("hc_vault")):
        if isinstance(entry, str):
            out.append(f"hc_vault:{entry}")
        elif isinstance(entry, dict):
            uri = f"{entry.get('vault_address')}/v1/{entry.get('engine_path')}/keys/{entry.get('key_name')}"
            out.append(f"hc_vault:{uri}")
    for entry in _items(group.get("azure_keyvault" if rule_form else "azure_kv")):
        if isinstance(entry, dict):
            name = entry.get("key") if rule_form else entry.get("name")
            out.append(f"azure_kv:{entry.get('vaultUrl')}/keys/{name}/{entry.get('version')}")
    return out


def _items(value: Value) -> list[Value]:
    return value if isinstance(value, list) else []
