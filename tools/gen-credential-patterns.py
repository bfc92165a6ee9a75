#!/usr/bin/env python3
"""Regenerate compiler/validate/_credential_patterns.py from the installed detect-secrets.

.venv/bin/python tools/gen-credential-patterns.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from compiler.validate.credentials import dump_patterns, library_detectors

OUT = Path(__file__).resolve().parent.parent / "compiler" / "validate" / "_credential_patterns.py"

if __name__ == "__main__":
    OUT.write_text(dump_patterns(library_detectors()))
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(OUT)], check=True)
    print(f"wrote {OUT}")
