#!/usr/bin/env python3
"""Compare compiled outputs against the generator's expected/<target>.json.

  check_outputs.py kapitan WORKLOAD_DIR [COMPILED_DIR]
      COMPILED_DIR defaults to WORKLOAD_DIR/kapitan/compiled; reads
      compiled/<kapitan_target>/<module>.json (JSON or YAML).
  check_outputs.py bundles WORKLOAD_DIR OUT_DIR
      reads OUT_DIR/<target>.json holding {module: config} (e.g. ref_compile.py output)

Exit 0 when every target matches, 1 otherwise (first differences are printed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def diff(a, b, path="", out=None, limit=10):
    if out is None:
        out = []
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: missing in actual")
            elif k not in b:
                out.append(f"{path}.{k}: unexpected in actual")
            else:
                diff(a[k], b[k], f"{path}.{k}", out, limit)
    elif type(a) is not type(b) or a != b:
        out.append(f"{path}: expected {b!r} ({type(b).__name__}) got {a!r} ({type(a).__name__})")
    return out


def load(p: Path):
    text = p.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        from ruamel.yaml import YAML  # only for YAML-emitting compilers

        return YAML(typ="safe", pure=True).load(text)


def main(argv):
    if len(argv) < 2 or argv[0] not in ("kapitan", "bundles"):
        print(__doc__)
        return 2
    mode, wl = argv[0], Path(argv[1])
    index = json.loads((wl / "expected" / "index.json").read_text())
    bad = 0
    for t in index["targets"]:
        exp = json.loads((wl / "expected" / ("{}.json".format(t["target"]))).read_text())
        if mode == "kapitan":
            comp = Path(argv[2]) if len(argv) > 2 else wl / "kapitan" / "compiled"
            act = {}
            for m in index["modules"]:
                for ext in (".json", ".yml", ".yaml"):
                    f = comp / t["kapitan_target"] / (m + ext)
                    if f.exists():
                        act[m] = load(f)
                        break
        else:
            act = load(Path(argv[2]) / ("{}.json".format(t["target"])))
        d = diff(act, exp)
        if d:
            bad += 1
            print(f"MISMATCH {t['target']} ({len(d)}+ differences):")
            for line in d:
                print("   ", line)
    n = len(index["targets"])
    print(f"{n - bad}/{n} targets match")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
