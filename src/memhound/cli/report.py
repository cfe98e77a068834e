"""``memhound report CAPTURE``: rebuild the reports of a run from its capture file
alone (the terminal report, ``--json``), even when the process was killed before
it finished: the report then covers the run up to the last flush and says so."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, Optional, Tuple

from .. import __version__
from .run import EXIT_LEAK, _fail, _positive_int, check_outputs, write_outputs

HELP = "rebuild the reports of a run from its capture file"


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="CAPTURE", help="a capture file written by memhound run")
    p.add_argument("--pid", type=_positive_int, default=None,
                   help="the process to report on, when several wrote the capture (default: the first)")
    p.add_argument("--json", metavar="FILE", help="write the JSON report (schema 1) to FILE")
    p.add_argument("--html", metavar="FILE",
                   help="write the HTML report (one self-contained page) to FILE")
    p.add_argument("--pprof", metavar="FILE",
                   help="write live memory by stack as a gzipped pprof profile to FILE")
    p.add_argument("--speedscope", metavar="FILE",
                   help="write live memory by stack as a speedscope JSON file to FILE")
    p.add_argument("--top", type=_positive_int, default=5, metavar="N",
                   help="leak sites shown (default %(default)s)")
    p.add_argument("--fail-on-leak", action="store_true",
                   help=f"exit with {EXIT_LEAK} when the verdict is a leak")
    p.add_argument("--quiet", "-q", action="store_true", help="no terminal report")


def run(args: argparse.Namespace) -> int:
    from ..capture import Capture, CaptureError

    problem = check_outputs(args)
    if problem:
        return _fail(problem)
    try:
        with Capture(args.capture) as cap:
            procs = cap.processes()
            loaded = cap.load(args.pid)
    except CaptureError as e:
        return _fail(str(e))

    from ..analysis import analyze
    from ..reports import json_report, terminal

    proc = loaded.process
    result = loaded.result
    unit = "epoch" if result.epoch_kind == "time" else "call"
    verdict = analyze(result.snapshot, timeline=result.timeline,
                      units_per_epoch=result.units_per_epoch, epoch_unit=unit)
    note = loaded.partial_note()
    if note:
        verdict.summary = f"({note}) {verdict.summary}"
    retention, census = _notes(loaded.notes, verdict)
    report = None
    if args.json or args.html:
        report = json_report.build(result, verdict, argv=loaded.argv, duration=loaded.duration,
                                   exit_status=proc.state, exit_code=proc.exit_code,
                                   version=loaded.version or __version__, pid=proc.pid,
                                   python=loaded.python or None)
        json_report.add_retention(report, verdict, retention, census)
    rc, written = write_outputs(args, report, result.snapshot, 0)
    if not args.quiet:
        if len(procs) > 1:
            others = ", ".join(f"{p.pid} ({'first' if p.ppid == 0 else f'child of {p.ppid}'})"
                               for p in procs)
            sys.stderr.write(f"memhound: the capture holds {len(procs)} processes: {others};"
                             f" this is {proc.pid} (choose with --pid)\n")
        program = loaded.argv[0] if loaded.argv else None
        terminal.render(result, verdict, sys.stdout, top=args.top, program=program,
                        retention=retention, census=census)
        for what, out in written:
            sys.stderr.write(f"memhound: {what} written to {out}\n")
    if rc == 0 and args.fail_on_leak and verdict.leaking:
        rc = EXIT_LEAK
    return rc


def _notes(notes: Dict[str, Any], verdict: Any) -> Tuple[Any, Optional[Dict[str, Any]]]:
    """The retention analysis and census the run stored at its end (a run that
    was killed has none: they need the program's live objects)."""
    from ..analysis.retention import RetentionResult

    retention = census = None
    doc = notes.get("retention")
    if isinstance(doc, dict):
        try:
            retention = RetentionResult.load(doc, {tuple(v.site): v.site for v in verdict.leaks})
        except (KeyError, TypeError, ValueError, IndexError):
            retention = None
    c = notes.get("census")
    if isinstance(c, dict):
        try:
            census = {"start": int(c["start"]), "end": int(c["end"]),
                      "growth": [(str(t), int(n), int(d)) for t, n, d in c["growth"]]}
        except (KeyError, TypeError, ValueError):
            census = None
    return retention, census
