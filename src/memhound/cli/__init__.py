"""memhound's command line: ``memhound SUBCOMMAND ...`` and ``python -m memhound``.

Each sub-command module has ``prepare_parser(parser)`` and ``run(args) -> int``.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ._common import CommandError
from . import diff as diff_cmd
from . import report as report_cmd
from . import run as run_cmd

SUBCOMMANDS = {"run": run_cmd, "report": report_cmd, "diff": diff_cmd}

#: Exit codes of memhound's own errors (the program's own exit code passes through).
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, non-zero exit
        sys.stderr.write(f"memhound: error: {message}\n")
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="memhound", description="Find memory leaks in Python programs.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"memhound {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, mod in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.prepare_parser(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    program: Optional[List[str]] = None
    if argv and argv[0] == "run":
        # Everything after the script (or -m MODULE) is the program's, as with python.
        options, program = run_cmd.split_argv(argv[1:])
        argv = ["run"] + options
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if program is not None:
        args.module = None
        args.target = program
    try:
        return int(args._run(args))
    except CommandError as e:
        sys.stderr.write(f"memhound: error: {e}\n")
        return e.exit_code
