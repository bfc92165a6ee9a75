"""Run ``llmcc`` commands in tests, through main() once they are registered in compiler/cli/_commands.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from compiler.cli import Context, _commands, error_boundary, main
from compiler.cli import publish as publish_cmd
from compiler.cli import pull as pull_cmd
from compiler.cli import verify as verify_cmd

MODULES = {"publish": publish_cmd, "verify": verify_cmd, "pull": pull_cmd}


def llmcc(root: Path, *argv: str) -> int:
    """``llmcc -C root ARGV``: through main() once the command is registered, else the same boundary."""
    if argv[0] in _commands.COMMANDS:
        return main(["-C", str(root), *argv])
    parser = argparse.ArgumentParser(prog=f"llmcc {argv[0]}")
    MODULES[argv[0]].add_arguments(parser)
    with error_boundary(debug=False) as result:
        args = parser.parse_args(argv[1:])
        result.code = MODULES[argv[0]].run(args, Context(root=root, quiet=True, debug=False))
    return result.code
