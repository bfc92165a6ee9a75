#!/usr/bin/env python3
"""Deterministic benchmark workload generator for llmcc.

Emits, from ONE in-memory spec, three things under --out:

  ours/      a config repository in llmcc's layout (llmcc README, "How it works"):
             llmcc.yaml, templates/<m>.yaml (Jinja expressions in scalars),
             schemas/<m>.schema.json (JSON Schema 2020-12, x-secret on secret leaves),
             environments/base.yaml, environments/<env>.yaml,
             environments/tenants/<t>.yaml, environments/<env>/tenants/<t>.yaml,
             and PLAINTEXT secrets in environments/**/<layer>.secrets.yaml
             (to be encrypted with sops later -> <layer>.secrets.sops.yaml).
  kapitan/   an equivalent Kapitan project (reclass inventory + jinja2 input type),
             one output file per module per target (compiled/<target>/<m>.json).
  expected/  <target>.json per target: the effective merged config of all modules,
             computed by this generator (canonical JSON: sorted keys, no whitespace),
             plus index.json (targets, Kapitan target names, secret paths, stats).

Only the Python 3.11 standard library, ruamel.yaml and cryptography (llmcc's own dependency, for
the signing key pair) are used.

ours/ validates and compiles as generated (with --secrets 0, as every bench runs it; with secrets,
encrypt them first, see ours/README.md): keys/ci.pub is the public half of an Ed25519 signing key
derived from --seed, whose private half is written to --out/ci.pem, outside the repository, for
`LLMCC_SIGNING_KEY_FILE` (publish); .gitignore keeps dist/ and .llmcc/ out, as `llmcc init` does.

Semantics implemented (llmcc README, "How it works", merge rules):
  layers, lowest first: rendered template, base, env chain root first,
  tenants/<t>.yaml, <env>/tenants/<t>.yaml; each layer's secrets file sits at
  that layer's precedence.  Maps deep-merge, scalars and lists replace;
  !override replaces a subtree, !append/!prepend extend lists, !delete removes
  a key.  Template scalars "{{ v }}" keep v's native type, mixed text renders
  a string, "{{ v | default(N) }}" falls back to N.

Kapitan translation:
  template scalar "{{ a.b }}"             -> reclass reference "${vars:a:b}"
  "{{ x | default(N) }}"                  -> "${vars:x}" + vars.x: N in the module class
  plain list in a layer (replace)         -> "~key: [...]"  (reclass would append)
  !append [..]                            -> "key: [..]"    (reclass list merge = append)
  !prepend [..]                           -> "~key: new + old" (old precomputed; only
                                             generated in layers whose lower stack is fixed)
  !override {..}                          -> "~key: {..}"
  !delete                                 -> "~key: null" and the template pipes the module
                                             through the prune_null filter (lib/jinja2_filters.py)
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

# --------------------------------------------------------------------------
# tag wrappers (in-memory representation of !override/!append/!prepend/!delete)
# --------------------------------------------------------------------------


class Override:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class Append:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class Prepend:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class Delete:
    __slots__ = ()


class Jinja:
    """A template scalar holding a Jinja expression.

    kind: 'ref' (exactly one expression, native type), 'mixed' (text), 'default'.
    """

    __slots__ = ("default", "kind", "prefix", "suffix", "text", "var")

    def __init__(self, kind, var, prefix="", suffix="", default=None):
        self.kind = kind
        self.var = var  # tuple path into vars
        self.prefix = prefix
        self.suffix = suffix
        self.default = default

    def source(self) -> str:
        name = ".".join(self.var)
        if self.kind == "ref":
            return f"{{{{ {name} }}}}"
        if self.kind == "default":
            return f"{{{{ {name} | default({json.dumps(self.default)}) }}}}"
        return f"{self.prefix}{{{{ {name} }}}}{self.suffix}"

    def reclass(self) -> str:
        ref = "${{vars:{}}}".format(":".join(self.var))
        if self.kind in ("ref", "default"):
            return ref
        return self.prefix + ref + self.suffix

    def render(self, variables: dict):
        cur: Any = variables
        for p in self.var:
            if not isinstance(cur, dict) or p not in cur:
                cur = _MISSING
                break
            cur = cur[p]
        if cur is _MISSING:
            if self.kind == "default":
                return self.default
            raise KeyError("undefined variable {}".format(".".join(self.var)))
        if self.kind in ("ref", "default"):
            return copy.deepcopy(cur)
        return self.prefix + str(cur) + self.suffix


_MISSING = object()

# --------------------------------------------------------------------------
# vocabularies (chosen so that no plain scalar is ambiguous between YAML 1.1
# (PyYAML, used by reclass) and YAML 1.2 (ruamel): no yes/no/on/off/y/n)
# --------------------------------------------------------------------------

CORE_MODULES = [
    "inference-engine",
    "model-router",
    "prompt-registry",
    "observatory",
    "security-guard",
    "data-pipeline",
    "api-gateway",
    "cost-tracker",
]
EXTRA_MODULES = [
    "feature-store",
    "vector-index",
    "eval-harness",
    "rate-limiter",
    "cache-layer",
    "audit-log",
    "billing-export",
    "batch-scheduler",
    "embedding-service",
    "guardrails",
    "session-store",
    "notification-hub",
]
GROUPS = [
    "server",
    "model",
    "routing",
    "cache",
    "limits",
    "logging",
    "metrics",
    "storage",
    "auth",
    "network",
    "scheduler",
    "features",
    "tracing",
    "queue",
    "retry",
    "pool",
    "quota",
    "alerts",
    "backup",
    "cluster",
]
SUBGROUPS = [
    "primary",
    "secondary",
    "fallback",
    "east",
    "west",
    "canary",
    "stable",
    "batch",
    "stream",
    "cold",
    "warm",
    "hot",
    "internal",
    "external",
    "shadow",
    "edge",
    "core",
    "replica",
    "archive",
    "preview",
]
STEMS = [
    "timeout_ms",
    "max_retries",
    "enabled",
    "endpoint",
    "replicas",
    "ratio",
    "threshold",
    "window_s",
    "buffer_size",
    "region",
    "mode",
    "labels",
    "workers",
    "batch_size",
    "ttl_s",
    "weight",
    "owner",
    "tier",
    "zones",
    "backoff",
    "level",
    "format",
    "capacity",
    "interval_s",
    "target",
    "budget",
    "priority",
    "strategy",
    "version",
    "hosts",
]
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basalt",
    "cobalt",
    "dune",
    "ember",
    "fjord",
    "granite",
    "harbor",
    "iris",
    "jade",
    "kelp",
    "lumen",
    "meadow",
    "nimbus",
    "onyx",
    "pine",
    "quartz",
    "river",
    "slate",
    "tundra",
    "umber",
    "vale",
    "willow",
    "zephyr",
]

# global template variables: name -> generator kind
GLOBAL_VARS = {
    "provider": "str",
    "region": "str",
    "cluster": "str",
    "namespace": "str",
    "log_level": "str",
    "temperature": "float",
    "top_p": "float",
    "max_tokens": "int",
    "replicas": "int",
    "timeout_s": "int",
    "debug": "bool",
    "tracing_enabled": "bool",
    "fallback_models": "liststr",
    "allowed_zones": "liststr",
    "limits": {"rpm": "int", "tpm": "int", "burst": "int"},
    "pricing": {"input_per_mtok": "float", "output_per_mtok": "float"},
}


# --------------------------------------------------------------------------
# spec
# --------------------------------------------------------------------------


@dataclass
class Leaf:
    path: tuple  # (group, subgroup, key)
    kind: str  # str|int|float|bool|liststr|listint
    value: Any  # template value: python value or Jinja
    secret: bool = False


@dataclass
class Module:
    name: str
    leaves: list  # non-secret leaves
    secrets: list  # secret leaves
    tree: dict = field(default_factory=dict)  # template tree (values may be Jinja)
    secret_subgroups: set = field(default_factory=set)
    default_vars: dict = field(default_factory=dict)  # var -> default value


@dataclass
class Layer:
    name: str  # e.g. "base", "prod", "tenants/t001", "prod/tenants/t001"
    kind: str  # base|env|tenant|envtenant
    data: dict  # {"vars": {...}, "modules": {...}} with tag wrappers
    secrets: dict  # {"modules": {...}} plaintext secret values
    fixed_stack: list | None  # names of the layers below (when unique) else None


class Gen:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)

    # ---------------- value helpers
    def rand_value(self, kind):
        r = self.rng
        if kind == "str":
            return f"{r.choice(WORDS)}-{r.choice(WORDS)}-{r.randint(1, 999)}"
        if kind == "int":
            return r.randint(0, 100000)
        if kind == "float":
            return round(r.uniform(0.001, 1000.0), 3)
        if kind == "bool":
            return r.random() < 0.5
        if kind == "liststr":
            return [f"{r.choice(WORDS)}-{r.randint(1, 99)}" for _ in range(r.randint(1, 4))]
        if kind == "listint":
            return [r.randint(0, 10000) for _ in range(r.randint(1, 4))]
        raise ValueError(kind)

    def rand_var_value(self, kind):
        r = self.rng
        if kind == "str":
            return f"{r.choice(WORDS)}-{r.choice(WORDS)}"
        if kind == "float":
            return round(r.uniform(0.0, 2.0), 2)
        if kind == "int":
            return r.randint(1, 8192)
        return self.rand_value(kind)

    # ---------------- vars
    def flat_var_kinds(self):
        out = {}
        for k, v in GLOBAL_VARS.items():
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    out[(k, k2)] = v2
            else:
                out[(k,)] = v
        return out

    def make_vars(self, frac, all_=False):
        """A vars block overriding a fraction of the global vars."""
        kinds = self.flat_var_kinds()
        out: dict = {}
        for path, kind in kinds.items():
            if all_ or self.rng.random() < frac:
                d = out
                for p in path[:-1]:
                    d = d.setdefault(p, {})
                d[path[-1]] = self.rand_var_value(kind)
        return out

    # ---------------- modules
    def build_modules(self):
        a = self.a
        names = CORE_MODULES + EXTRA_MODULES
        names = [names[i] if i < len(names) else f"module-{i + 1:02d}" for i in range(a.modules)]
        n1 = max(1, round(a.keys ** (1 / 3)))
        n2 = max(1, round(math.sqrt(a.keys / n1)))
        var_kinds = self.flat_var_kinds()
        var_paths = sorted(var_kinds)
        mods = []
        for mi, name in enumerate(names):
            r = self.rng
            ident = name.replace("-", "_")
            groups = [GROUPS[i % len(GROUPS)] + ("" if i < len(GROUPS) else f"_{i // len(GROUPS)}") for i in range(n1)]
            subs = [
                SUBGROUPS[i % len(SUBGROUPS)] + ("" if i < len(SUBGROUPS) else f"_{i // len(SUBGROUPS)}")
                for i in range(n2)
            ]
            slots = [(g, s) for g in groups for s in subs]
            leaves = []
            counts: dict = {}
            mod = Module(name=name, leaves=leaves, secrets=[])
            n_default = 0
            for i in range(a.keys):
                g, s = slots[i % len(slots)]
                c = counts.get((g, s), 0)
                counts[(g, s)] = c + 1
                key = f"{STEMS[(i // len(slots) + mi) % len(STEMS)]}_{c}"
                x = r.random()
                kind = (
                    "str"
                    if x < 0.35
                    else "int"
                    if x < 0.60
                    else "float"
                    if x < 0.75
                    else "bool"
                    if x < 0.85
                    else "liststr"
                    if x < 0.95
                    else "listint"
                )
                value: Any = self.rand_value(kind)
                if r.random() < a.jinja_frac:
                    y = r.random()
                    if y < 0.5:  # exact reference: native type of the variable
                        vp = r.choice(var_paths)
                        kind = var_kinds[vp]
                        value = Jinja("ref", vp)
                    elif y < 0.8:  # mixed text: string
                        vp = r.choice([p for p in var_paths if var_kinds[p] in ("str", "int")])
                        kind = "str"
                        value = Jinja(
                            "mixed",
                            vp,
                            prefix=r.choice(["", "svc-", "https://"]),
                            suffix=r.choice([f"-{r.choice(WORDS)}", ".api.example.com/v1", f"/{r.randint(1, 99)}"]),
                        )
                    else:  # default(): module-private variable, defined only in some layers
                        n_default += 1
                        vname = f"{ident}_opt_{n_default}"
                        kind = "int"
                        dv = r.randint(1, 1000)
                        value = Jinja("default", (vname,), default=dv)
                        mod.default_vars[vname] = dv
                leaves.append(Leaf((g, s, key), kind, value))
            # secret leaves, placed in a few subgroups that are never !override'n
            for j in range(a.secrets):
                g, s = slots[(j * 7 + mi) % len(slots)]
                key = f"{['api_key', 'password', 'token', 'client_secret', 'signing_key'][j % 5]}_{j}"
                leaves_sec = Leaf((g, s, key), "str", None, secret=True)
                mod.secrets.append(leaves_sec)
                mod.secret_subgroups.add((g, s))
            # template tree
            for lf in leaves:
                set_path(mod.tree, lf.path, lf.value)
            mods.append(mod)
        self.modules = mods
        return mods

    # ---------------- environments / tenants
    def parse_envs(self):
        envs = []
        parents = {}
        for tok in self.a.envs.split(","):
            tok = tok.strip()
            if not tok:
                continue
            if ":" in tok:
                n, p = tok.split(":", 1)
            else:
                n, p = tok, ("base" if tok != "base" else None)
            envs.append(n)
            parents[n] = p
        if not envs or envs[0] != "base":
            sys.exit("--envs must start with base")
        for n, p in parents.items():
            if p is not None and p not in parents:
                sys.exit(f"env {n} extends unknown {p}")
        self.envs = envs
        self.parents = parents
        tenant_envs = [e for e in envs if e in ("staging", "prod")] or [e for e in envs if e != "base"]
        self.tenant_envs = tenant_envs
        self.tenants = [f"t{i + 1:03d}" for i in range(self.a.tenants)]
        return envs

    def chain(self, env):
        out = []
        e = env
        while e is not None:
            out.append(e)
            e = self.parents[e]
        return list(reversed(out))  # root first

    def targets(self):
        """[(target, env, tenant|None)] in a deterministic order."""
        out = []
        for e in self.envs:
            if e != "base":  # base is a layer, not a target
                out.append((e, e, None))
        for t in self.tenants:
            for e in self.tenant_envs:
                out.append((f"{e}@{t}", e, t))
        return out

    def stack(self, env, tenant):
        """layer names, lowest first (excluding the template)."""
        names = list(self.chain(env))
        if tenant:
            names.append(f"tenants/{tenant}")
            if (f"{env}/tenants/{tenant}") in self.layers:
                names.append(f"{env}/tenants/{tenant}")
        return names

    # ---------------- layers
    def build_layers(self):
        a = self.a
        r = self.rng
        layer_specs = []  # (name, kind, frac, fixed_stack)
        for e in self.envs:
            fixed = self.chain(e)[:-1]
            layer_specs.append((e, "base" if e == "base" else "env", a.override_frac, fixed))
        for t in self.tenants:
            layer_specs.append((f"tenants/{t}", "tenant", a.tenant_override_frac, None))
        for i, t in enumerate(self.tenants):
            if a.env_tenant_every and i % a.env_tenant_every == 0:
                e = self.tenant_envs[-1]
                fixed = [*self.chain(e), f"tenants/{t}"]
                layer_specs.append((f"{e}/tenants/{t}", "envtenant", a.tenant_override_frac / 2, fixed))

        # pass 1: structural ops (subgroup !override, leaf !delete) per layer
        deleted = set()  # (module, path)
        overridden_sub = set()  # (module, (g, s))
        struct = {}
        for name, _kind, frac, _fixed in layer_specs:
            ops = []
            for m in self.modules:
                subs = sorted({lf.path[:2] for lf in m.leaves} - m.secret_subgroups)
                for sg in subs:
                    if r.random() < a.tag_frac * frac * 2:
                        ops.append(("override", m.name, sg))
                        overridden_sub.add((m.name, sg))
                for lf in m.leaves:
                    if r.random() < a.delete_frac * frac * 10 and (m.name, lf.path) not in deleted:
                        ops.append(("delete", m.name, lf.path))
                        deleted.add((m.name, lf.path))
            struct[name] = ops
        self.deleted = deleted

        # pass 2: build layer data
        self.layers: dict = {}
        for name, kind, frac, fixed in layer_specs:
            data_mods: dict = {}
            for op, mname, p in struct[name]:
                m = self.mod_by_name[mname]
                if op == "override":
                    sub = {}
                    for lf in m.leaves:
                        if lf.path[:2] == p and (mname, lf.path) not in deleted and r.random() < 0.7:
                            sub[lf.path[2]] = self.rand_value(lf.kind)
                    if not sub:
                        lf0 = next(lf for lf in m.leaves if lf.path[:2] == p)
                        sub[lf0.path[2]] = self.rand_value(lf0.kind)
                    set_path(data_mods.setdefault(mname, {}), p, Override(sub))
            for op, mname, p in struct[name]:
                if op == "delete":
                    if get_path(data_mods.get(mname, {}), p[:2]) is not None:
                        continue  # subgroup already replaced in this layer
                    set_path(data_mods.setdefault(mname, {}), p, Delete())
            for m in self.modules:
                for lf in m.leaves:
                    if (m.name, lf.path) in deleted:
                        continue
                    if r.random() >= frac:
                        continue
                    tgt = data_mods.setdefault(m.name, {})
                    parent = get_path(tgt, lf.path[:2])
                    if isinstance(parent, (Override, Delete)) or get_path(tgt, lf.path) is not None:
                        continue
                    stable = (m.name, lf.path[:2]) not in overridden_sub and not isinstance(lf.value, Jinja)
                    if lf.kind.startswith("list") and stable and r.random() < 2 * a.tag_frac * 10:
                        extra = self.rand_value(lf.kind)[:2]
                        if fixed is not None and r.random() < 0.5:
                            set_path(tgt, lf.path, Prepend(extra))
                        else:
                            set_path(tgt, lf.path, Append(extra))
                    else:
                        set_path(tgt, lf.path, self.rand_value(lf.kind))
            data_mods = {k: v for k, v in data_mods.items() if v}
            # vars
            if kind == "base":
                lvars = self.make_vars(1.0, all_=True)
            elif kind == "env":
                lvars = self.make_vars(0.3)
            else:
                lvars = self.make_vars(0.1)
            # module-private default() vars: defined in the last env and ~1/3 of tenant layers
            if (kind == "env" and name == self.envs[-1]) or (kind == "tenant" and r.random() < 0.33):
                for m in self.modules:
                    for vname in m.default_vars:
                        if r.random() < 0.5:
                            lvars[vname] = r.randint(1001, 5000)
            data = {}
            if lvars:
                data["vars"] = lvars
            if data_mods:
                data["modules"] = data_mods
            # secrets: base sets all; envs set all; tenants/envtenants set ~half
            sec: dict = {}
            for m in self.modules:
                for lf in m.secrets:
                    if kind in ("base", "env") or r.random() < 0.5:
                        v = "{}-{}-{}".format(
                            "sk",
                            name.replace("/", "-"),
                            "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24)),
                        )
                        set_path(sec.setdefault(m.name, {}), lf.path, v)
            self.layers[name] = Layer(name, kind, data, {"modules": sec} if sec else {}, fixed)

    # ---------------- merge semantics (the reference)
    def effective(self, env, tenant):
        names = self.stack(env, tenant)
        # merged vars
        variables: dict = {}
        for n in names:
            deep_merge(variables, copy.deepcopy(self.layers[n].data.get("vars", {})))
        out = {}
        for m in self.modules:
            vs = dict(variables)
            cur = render_tree(m.tree, vs)
            for n in names:
                L = self.layers[n]
                mv = L.data.get("modules", {}).get(m.name)
                if mv is not None:
                    cur = merge_node(cur, mv)
                sv = L.secrets.get("modules", {}).get(m.name) if L.secrets else None
                if sv is not None:
                    cur = merge_node(cur, copy.deepcopy(sv))
            out[m.name] = cur
        return out

    def effective_list_at(self, mname, path, below):
        """effective value of a (stable, non-Jinja) list leaf after the layers in `below`."""
        m = self.mod_by_name[mname]
        val = copy.deepcopy(get_path(m.tree, path))
        for n in below:
            v = get_path(self.layers[n].data.get("modules", {}).get(mname, {}), path)
            if v is None:
                continue
            if isinstance(v, Append):
                val = val + list(v.value)
            elif isinstance(v, Prepend):
                val = list(v.value) + val
            elif isinstance(v, list):
                val = list(v)
            else:
                raise AssertionError(f"unexpected op on stable list {v!r}")
        return val

    # ---------------- run
    def run(self):
        self.parse_envs()
        self.build_modules()
        self.mod_by_name = {m.name: m for m in self.modules}
        self.layers = {}
        self.build_layers()


# --------------------------------------------------------------------------
# tree helpers
# --------------------------------------------------------------------------


def set_path(d, path, value):
    for p in path[:-1]:
        nxt = d.get(p)
        if isinstance(nxt, Override):
            nxt = nxt.value
        elif nxt is None:
            nxt = d[p] = {}
        d = nxt
    d[path[-1]] = value


def get_path(d, path):
    cur = d
    for p in path:
        if isinstance(cur, Override):
            cur = cur.value
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def render_tree(node, variables):
    if isinstance(node, dict):
        return {k: render_tree(v, variables) for k, v in node.items()}
    if isinstance(node, Jinja):
        return node.render(variables)
    return copy.deepcopy(node)


def deep_merge(dst: dict, src: dict):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_merge(dst[k], v)
        else:
            dst[k] = v
    return dst


def strip_tags(node):
    if isinstance(node, Override):
        return strip_tags(node.value)
    if isinstance(node, (Append, Prepend)):
        return list(node.value)
    if isinstance(node, dict):
        return {k: strip_tags(v) for k, v in node.items() if not isinstance(v, Delete)}
    if isinstance(node, list):
        return list(node)
    return node


def merge_node(cur, new):
    """merge layer node `new` (may carry tags) over effective value `cur`."""
    if isinstance(new, Override):
        return strip_tags(new.value)
    if isinstance(new, Append):
        base = cur if isinstance(cur, list) else []
        return list(base) + list(new.value)
    if isinstance(new, Prepend):
        base = cur if isinstance(cur, list) else []
        return list(new.value) + list(base)
    if isinstance(new, dict):
        cur = {} if not isinstance(cur, dict) else dict(cur)
        for k, v in new.items():
            if isinstance(v, Delete):
                cur.pop(k, None)
            else:
                cur[k] = merge_node(cur.get(k), v)
        return cur
    if isinstance(new, list):
        return list(new)
    return new


# --------------------------------------------------------------------------
# emitters
# --------------------------------------------------------------------------


def make_yaml():
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.width = 4096
    y.sort_base_mapping_type_on_output = False
    rep = y.representer
    rep.add_representer(Override, lambda r, d: r.represent_mapping("!override", d.value))
    rep.add_representer(Append, lambda r, d: r.represent_sequence("!append", d.value, flow_style=True))
    rep.add_representer(Prepend, lambda r, d: r.represent_sequence("!prepend", d.value, flow_style=True))
    rep.add_representer(Delete, lambda r, d: r.represent_scalar("!delete", ""))
    rep.add_representer(Jinja, lambda r, d: r.represent_str(d.source()))
    return y


def dump(y, obj, path: Path, header: str | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if header:
            f.write(header)
        y.dump(obj, f)


def leaf_schema(kind, secret=False):
    if secret:
        return {"type": "string", "x-secret": True}
    return {
        "str": {"type": "string"},
        "int": {"type": "integer", "minimum": 0},
        "float": {"type": "number", "minimum": 0},
        "bool": {"type": "boolean"},
        "liststr": {"type": "array", "items": {"type": "string"}},
        "listint": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    }[kind]


def module_schema(m: Module):
    root = {"type": "object", "additionalProperties": False, "properties": {}}
    for lf in m.leaves + m.secrets:
        node = root
        for p in lf.path[:-1]:
            node = node["properties"].setdefault(p, {"type": "object", "additionalProperties": False, "properties": {}})
        node["properties"][lf.path[-1]] = leaf_schema(lf.kind, lf.secret)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://llmcc.example/schemas/{m.name}.schema.json",
        "title": m.name,
        **root,
    }


def canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def kap_translate(node, layer_name, g: Gen, mname, path=(), in_layer=True):
    """translate an llmcc layer node into a reclass parameters node."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            p = (*path, k)
            if isinstance(v, Override):
                out["~" + k] = kap_translate(v.value, layer_name, g, mname, p, in_layer=False)
            elif isinstance(v, Delete):
                out["~" + k] = None
            elif isinstance(v, Append):
                out[k] = list(v.value)
            elif isinstance(v, Prepend):
                L = g.layers[layer_name]
                old = g.effective_list_at(mname, p, L.fixed_stack)
                out["~" + k] = list(v.value) + old
            elif isinstance(v, list) and in_layer:
                out["~" + k] = list(v)
            else:
                out[k] = kap_translate(v, layer_name, g, mname, p, in_layer)
        return out
    if isinstance(node, Jinja):
        return node.reclass()
    if isinstance(node, list):
        return list(node)
    return node


def kap_vars(node):
    """vars blocks: lists replace in llmcc, so they need the reclass override prefix."""
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out[k] = kap_vars(v)
        elif isinstance(v, list):
            out["~" + k] = list(v)
        else:
            out[k] = v
    return out


PRUNE_FILTER = '''"""Custom Jinja2 filters loaded by kapitan from lib/jinja2_filters.py."""


def prune_null(obj):
    """drop keys whose value is None (llmcc's !delete is emitted as `~key: null`)."""
    if isinstance(obj, dict):
        return {k: prune_null(v) for k, v in obj.items() if v is not None}
    return obj
'''


def write_signing_key(seed: int, public: Path, private: Path) -> None:
    """The Ed25519 key pair of ``seed`` (the same workload, the same key): the public half as
    SubjectPublicKeyInfo PEM at ``public`` (what ``signing.trusted`` names), the private half as
    PKCS#8 PEM at ``private``, which must lie outside the repository (the secrets guard refuses
    private key material in it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"llmcc-bench-signing-{seed}".encode()).digest())
    public.parent.mkdir(parents=True, exist_ok=True)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private.write_bytes(pem)
    private.chmod(0o600)


def emit(g: Gen, out: Path, a):
    y = make_yaml()
    ours = out / "ours"
    kap = out / "kapitan"
    exp = out / "expected"
    for d in (ours, kap, exp):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)

    # ---------------- ours
    manifest = {
        "project": "llm-platform-bench",
        "environments": {
            e: ({} if g.parents[e] in (None, "base") else {"extends": g.parents[e]}) for e in g.envs if e != "base"
        },
    }
    if g.tenants:
        manifest["tenants"] = {t: {"environments": list(g.tenant_envs)} for t in g.tenants}
    manifest["keys"] = {
        "compiler": {"provider": "age", "recipients": [a.age_recipient]},
        "targets": {"*": {"provider": "age", "recipients": [a.age_recipient]}},
    }
    manifest["signing"] = {"trusted": ["keys/ci.pub"]}
    write_signing_key(a.seed, ours / "keys" / "ci.pub", out / "ci.pem")
    (ours / ".gitignore").write_text("dist/\n.llmcc/\n", encoding="utf-8")  # what `llmcc init` writes
    manifest["storage"] = {"default": "file://.llmcc/store"}
    dump(y, manifest, ours / "llmcc.yaml")
    for m in g.modules:
        dump(y, m.tree, ours / "templates" / (f"{m.name}.yaml"))
        sp = ours / "schemas" / (f"{m.name}.schema.json")
        sp.parent.mkdir(parents=True, exist_ok=True)
        sp.write_text(json.dumps(module_schema(m), indent=2) + "\n", encoding="utf-8")
    for name, L in g.layers.items():
        dump(y, L.data or {}, ours / "environments" / (f"{name}.yaml"))
        if L.secrets:
            dump(
                y,
                L.secrets,
                ours / "environments" / (f"{name}.secrets.yaml"),
                header="# PLAINTEXT benchmark secrets: encrypt with sops before use (-> {}.secrets.sops.yaml)\n".format(
                    name.split("/")[-1]
                ),
            )
    (ours / "README.md").write_text(OURS_README % vars(a), encoding="utf-8")

    # ---------------- kapitan
    inv = kap / "inventory"
    mod_classes = []
    compile_items = []
    for m in g.modules:
        params: dict = {}
        if m.default_vars:
            params["vars"] = dict(m.default_vars)
        params["modules"] = {m.name: kap_translate(m.tree, None, g, m.name, in_layer=False)}
        dump(y, {"parameters": params}, inv / "classes" / "modules" / (f"{m.name}.yml"))
        mod_classes.append(f"modules.{m.name}")
        tp = kap / "templates" / (f"{m.name}.json")
        tp.parent.mkdir(parents=True, exist_ok=True)
        tp.write_text(f'{{{{ inventory.parameters.modules["{m.name}"] | prune_null | tojson }}}}\n', encoding="utf-8")
        compile_items.append({"output_path": ".", "input_type": "jinja2", "input_paths": [f"templates/{m.name}.json"]})
    (kap / "lib").mkdir(parents=True, exist_ok=True)
    (kap / "lib" / "jinja2_filters.py").write_text(PRUNE_FILTER, encoding="utf-8")
    dump(y, {"parameters": {"kapitan": {"compile": compile_items}}}, inv / "classes" / "common.yml")

    def layer_class(name):
        return name.replace("/", ".")

    for name, L in g.layers.items():
        classes = []
        if L.kind == "base":
            classes = ["common", *mod_classes]
        elif L.kind == "env":
            classes = [g.parents[name]]
        if L.secrets:
            sec = {"parameters": {"modules": kap_translate(L.secrets["modules"], name, g, None, in_layer=True)}}
            dump(y, sec, inv / "classes" / "secrets" / (f"{name}.yml"))
            classes.append(f"secrets.{layer_class(name)}")
        params = {}
        if "vars" in L.data:
            params["vars"] = kap_vars(L.data["vars"])
        if "modules" in L.data:
            params["modules"] = {mn: kap_translate(mv, name, g, mn) for mn, mv in L.data["modules"].items()}
        body: dict = {}
        if classes:
            body["classes"] = classes
        body["parameters"] = params
        if L.kind == "envtenant":
            path = inv / "classes" / "env_tenants" / ("{}.yml".format(name.replace("/tenants/", "/")))
        else:
            path = inv / "classes" / (f"{name}.yml")
        dump(y, body, path)

    index = {
        "targets": [],
        "modules": [m.name for m in g.modules],
        "secret_paths": {m.name: [".".join(lf.path) for lf in m.secrets] for m in g.modules},
        "params": {k: v for k, v in vars(a).items() if k != "out"},
    }
    for tname, env, tenant in g.targets():
        kname = env if tenant is None else f"{env}-{tenant}"
        classes = [env]
        if tenant:
            classes.append(f"tenants.{tenant}")
            if f"{env}/tenants/{tenant}" in g.layers:
                classes.append(f"env_tenants.{env}.{tenant}")
        dump(
            y,
            {"classes": classes, "parameters": {"target_name": kname, "kapitan": {"vars": {"target": kname}}}},
            inv / "targets" / (f"{kname}.yml"),
        )
        eff = g.effective(env, tenant)
        (exp / (f"{tname}.json")).write_text(canon(eff) + "\n", encoding="utf-8")
        index["targets"].append(
            {"target": tname, "env": env, "tenant": tenant, "kapitan_target": kname, "layers": g.stack(env, tenant)}
        )
    (kap / "README.md").write_text(KAP_README, encoding="utf-8")

    # stats
    def tree_bytes(root, exts):
        n = b = 0
        for dp, _, fs in os.walk(root):
            for f in fs:
                if f.endswith(exts):
                    n += 1
                    b += os.path.getsize(os.path.join(dp, f))
        return n, b

    st = {}
    st["ours_yaml_files"], st["ours_yaml_bytes"] = tree_bytes(ours, (".yaml",))
    st["ours_schema_files"], st["ours_schema_bytes"] = tree_bytes(ours / "schemas", (".json",))
    st["kapitan_yaml_files"], st["kapitan_yaml_bytes"] = tree_bytes(inv, (".yml",))
    st["expected_files"], st["expected_bytes"] = tree_bytes(exp, (".json",))
    st["targets"] = len(index["targets"])
    st["leaves_per_target"] = a.modules * (a.keys + a.secrets)
    index["stats"] = st
    (exp / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return st


OURS_README = """# llmcc benchmark workload (generated)

Generated by `bench/workload/gen_workload.py` (seed %(seed)s, modules %(modules)s, keys %(keys)s,
tenants %(tenants)s, secrets %(secrets)s, override-frac %(override_frac)s).  Do not edit by hand.

Layout follows llmcc's repository layout (see llmcc's README.md).

**Secrets are PLAINTEXT here.**  Every layer's secret values live in a file
beside it, `environments/<layer>.secrets.yaml` (same `modules:` layout as a layer
file, only fields marked `x-secret: true` in the schemas).  For a real run
encrypt them with sops and rename to `<layer>.secrets.sops.yaml`, e.g.

    sops --disable-version-check encrypt --age $RECIPIENT \\
        environments/prod.secrets.yaml > environments/prod.secrets.sops.yaml

With `--secrets 0` (no secrets files) `llmcc validate` and `llmcc compile` pass as generated.
`keys/ci.pub` is the signing key `signing.trusted` names; its private half is `../ci.pem`,
outside the repository: `LLMCC_SIGNING_KEY_FILE=../ci.pem llmcc publish`.

The expected effective config per target (with secret values in plaintext) is in
`../expected/<target>.json`; `../expected/index.json` lists targets, layers and secret paths.
"""

KAP_README = """# Kapitan equivalent of the llmcc benchmark workload (generated)

    kapitan compile            # -> compiled/<target>/<module>.json

* inventory/classes/modules/<m>.yml  the module template (llmcc templates/<m>.yaml);
  Jinja `{{ a.b }}` became reclass references `${vars:a:b}`; `default(N)` became a
  lowest-precedence `vars` entry.
* inventory/classes/{base,<env>,tenants/<t>}.yml, env_tenants/<env>/<t>.yml  the layers;
  lists that replace use reclass's `~key` override prefix; `!delete` is `~key: null`
  and is pruned by the `prune_null` filter in lib/jinja2_filters.py.
* inventory/classes/secrets/<layer>.yml  secret values (plain values; a baseline).
* inventory/targets/<env>[-<tenant>].yml  one target per llmcc target (`prod@t001` -> `prod-t001`).
* templates/<m>.json  jinja2 input: `{{ inventory.parameters.modules["<m>"] | prune_null | tojson }}`.
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory (ours/, kapitan/, expected/ are recreated)")
    ap.add_argument("--modules", type=int, default=20)
    ap.add_argument("--keys", type=int, default=500, help="non-secret leaf keys per module (3 levels deep)")
    ap.add_argument(
        "--envs",
        default="base,dev,staging,prod:staging",
        help="comma list; NAME:PARENT sets extends (default parent: base)",
    )
    ap.add_argument("--tenants", type=int, default=0, help="tenants (apply to staging and prod)")
    ap.add_argument("--secrets", type=int, default=5, help="secret leaves per module")
    ap.add_argument("--override-frac", type=float, default=0.1, help="fraction of leaves overridden per env layer")
    ap.add_argument("--tenant-override-frac", type=float, default=0.02, help="fraction overridden per tenant layer")
    ap.add_argument(
        "--env-tenant-every",
        type=int,
        default=4,
        help="every Nth tenant also gets environments/<env>/tenants/<t>.yaml (0: none)",
    )
    ap.add_argument("--jinja-frac", type=float, default=0.1, help="fraction of template leaves that are Jinja")
    ap.add_argument(
        "--tag-frac", type=float, default=0.01, help="scales how many !override/!append/!prepend ops the layers carry"
    )
    ap.add_argument("--delete-frac", type=float, default=0.002, help="scales how many !delete ops the layers carry")
    ap.add_argument(
        "--age-recipient",
        default="age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
        help="age recipient written into llmcc.yaml keys.compiler and keys.targets['*']",
    )
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    g = Gen(a)
    g.run()
    st = emit(g, Path(a.out), a)
    print(json.dumps(st, sort_keys=True))


if __name__ == "__main__":
    main()
