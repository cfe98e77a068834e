"""``memhound report CAPTURE``: rebuild the reports of a run from its capture file
alone (the terminal report, ``--json``, ``--html``, the exports), even when the
process was killed before it finished: the report then covers the run up to the
last flush and says so. Every process that wrote to the capture gets a line;
``--pid`` chooses the one reported in full."""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from ._common import EXIT_LEAK, add_output_options, check_outputs, fail, positive_int, report_capture

HELP = "rebuild the reports of a run from its capture file"


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="CAPTURE", help="a capture file written by memhound run")
    p.add_argument("--pid", type=positive_int, default=None,
                   help="the process reported in full, when several wrote the capture "
                        "(default: the first)")
    add_output_options(p)


def run(args: argparse.Namespace) -> int:
    from ..capture import CaptureError

    problem = check_outputs(args)
    if problem:
        return fail(problem)
    try:
        rc, leaking = report_capture(args.capture, args, sys.stdout, pid=args.pid,
                                     version=__version__)
    except CaptureError as e:
        return fail(str(e))
    if rc == 0 and args.fail_on_leak and leaking:
        rc = EXIT_LEAK
    return rc
