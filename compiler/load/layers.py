"""Which files make up a target, lowest precedence first (README "How it works")."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.project import Project, Target

ENVIRONMENTS = "environments"


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerRef:
    """One layer file of a target's stack."""

    name: str  # "base", "prod", "tenants/acme", "prod/tenants/acme"; secrets add " (secrets)"
    path: str  # repository-relative
    secrets: bool
    required: bool


def layer_names(project: Project, target: Target) -> list[tuple[str, bool]]:
    """(layer name, required) pairs, lowest precedence first, without secrets."""
    names = [("base", False)]
    names += [(env, True) for env in project.env_chain(target.environment)]
    if target.tenant:
        names.append((f"tenants/{target.tenant}", False))
        names.append((f"{target.environment}/tenants/{target.tenant}", False))
    return names


def layer_paths(name: str) -> tuple[str, str]:
    """The plain file and the secrets file of the layer called ``name`` (``layer_names``)."""
    return f"{ENVIRONMENTS}/{name}.yaml", f"{ENVIRONMENTS}/{name}.secrets.sops.yaml"


def resolve_layers(project: Project, target: Target) -> list[LayerRef]:
    """Every layer file of ``target``; each layer's secrets file right after it."""
    refs = []
    for name, required in layer_names(project, target):
        plain, secrets = layer_paths(name)
        refs.append(LayerRef(name=name, path=plain, secrets=False, required=required))
        refs.append(LayerRef(name=f"{name} (secrets)", path=secrets, secrets=True, required=False))
    return refs
