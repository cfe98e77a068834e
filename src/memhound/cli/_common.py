"""What the sub-commands share: option checks, errors, output files, and the
report of a capture (``report_capture``), which ``memhound run`` prints once the
program has ended and ``memhound report`` prints for any capture."""
from __future__ import annotations

import argparse
import os
import sys
from typing import IO, Any, Dict, List, Optional, Tuple

#: Exit code of --fail-on-leak when the verdict is a leak.
EXIT_LEAK = 3
#: Exit code of memhound's own errors (bad options, missing script, unwritable output).
EXIT_ERROR = 2


class CommandError(Exception):
    """A problem memhound reports in one line, exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR):
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str) -> int:
    sys.stderr.write(f"memhound: error: {message}\n")
    return EXIT_ERROR


def positive_int(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return v


#: What each output option writes, as error and status messages name it.
OUTPUTS = (("json", "the JSON report"), ("html", "the HTML report"),
           ("pprof", "the pprof profile"), ("speedscope", "the speedscope profile"))


def add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="FILE", help="write the JSON report (schema 1) to FILE")
    p.add_argument("--html", metavar="FILE",
                   help="write the HTML report (one self-contained page) to FILE")
    p.add_argument("--pprof", metavar="FILE",
                   help="write live memory by stack as a gzipped pprof profile to FILE "
                        "(go tool pprof, Pyroscope, Parca)")
    p.add_argument("--speedscope", metavar="FILE",
                   help="write live memory by stack as a speedscope JSON file to FILE")
    p.add_argument("--top", type=positive_int, default=5, metavar="N",
                   help="leak sites shown (default %(default)s)")
    p.add_argument("--fail-on-leak", action="store_true",
                   help=f"exit with {EXIT_LEAK} when any process leaks (for CI)")
    p.add_argument("--quiet", "-q", action="store_true", help="no terminal report")


def check_writable(path: str, what: str = "the JSON report") -> Optional[str]:
    d = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        return f"cannot write {what} to {path}: it is a directory"
    if not os.path.isdir(d):
        return f"cannot write {what} to {path}: no such directory {d}"
    if not os.access(d, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return f"cannot write {what} to {path}: permission denied"
    return None


def check_outputs(args: argparse.Namespace) -> Optional[str]:
    """Make the report paths (--json, --html, --pprof, --speedscope) absolute, so
    that they are relative to where memhound started whatever the program does
    with its cwd, and check each can be written; the first problem, or None."""
    for option, what in OUTPUTS:
        out = getattr(args, option, None)
        if out:
            out = os.path.abspath(out)
            setattr(args, option, out)
            problem = check_writable(out, what)
            if problem:
                return problem
    return None


def write_outputs(args: argparse.Namespace, report: Optional[Dict[str, Any]], snapshot: Any,
                  rc: int) -> Tuple[int, List[Tuple[str, str]]]:
    """Write the --json and --html reports (from ``report``, the JSON report's
    dict) and the --pprof and --speedscope files (from the final snapshot).
    Returns the exit code, made EXIT_ERROR if a write failed and it was 0, and
    (what, path) of each file written."""
    written: List[Tuple[str, str]] = []
    writers: List[Tuple[Optional[str], str, Any]] = []
    if report is not None:
        from ..reports import json_report

        writers.append((args.json, "JSON report", lambda path: json_report.write(path, report)))
        if args.html:
            try:
                from ..reports import html
            except ImportError as e:  # Jinja2 missing from a broken install
                fail(f"cannot write the HTML report: {e} (memhound needs Jinja2 for it)")
                rc = rc or EXIT_ERROR
            else:
                writers.append((args.html, "HTML report", lambda path: html.write(path, report)))
    if args.pprof or args.speedscope:
        from ..reports import pprof, speedscope

        writers.append((args.pprof, "pprof profile", lambda path: pprof.write(path, snapshot)))
        writers.append((args.speedscope, "speedscope profile",
                        lambda path: speedscope.write(path, snapshot)))
    for path, what, write in writers:
        if not path:
            continue
        try:
            write(path)
        except OSError as e:
            fail(f"cannot write the {what} to {path}: {e.strerror or e}")
            rc = rc or EXIT_ERROR
        else:
            written.append((what, path))
    return rc, written


# -- the report of a capture ---------------------------------------------------

def notes_of(run: Any, verdict: Any) -> Tuple[Any, Optional[Dict[str, Any]]]:
    """The retention analysis and census a process stored at its end (a process
    that was killed has none: they need its live objects)."""
    from ..analysis.retention import RetentionResult

    retention = census = None
    doc = run.notes.get("retention")
    if isinstance(doc, dict):
        try:
            retention = RetentionResult.load(doc, {tuple(v.site): v.site for v in verdict.leaks})
        except (KeyError, TypeError, ValueError, IndexError):
            retention = None
    c = run.notes.get("census")
    if isinstance(c, dict):
        try:
            census = {"start": int(c["start"]), "end": int(c["end"]),
                      "growth": [(str(t), int(n), int(d)) for t, n, d in c["growth"]]}
        except (KeyError, TypeError, ValueError):
            census = None
    return retention, census


class ProcessReport:
    """One process of a capture, analysed."""

    def __init__(self, run: Any):
        from ..analysis import analyze

        self.run = run
        self.process = run.process
        result = run.result
        unit = "epoch" if result.epoch_kind == "time" else "call"
        self.verdict = analyze(result.snapshot, timeline=result.timeline,
                               units_per_epoch=result.units_per_epoch, epoch_unit=unit)
        note = run.partial_note()
        if note:
            self.verdict.summary = f"({note}) {self.verdict.summary}"
        self.retention, self.census = notes_of(run, self.verdict)

    @property
    def leaking(self) -> bool:
        return bool(self.verdict.leaking)

    def json(self, version: str) -> Dict[str, Any]:
        from ..reports import json_report

        run, proc = self.run, self.process
        report = json_report.build(run.result, self.verdict, argv=run.argv, duration=run.duration,
                                   exit_status=proc.state, exit_code=proc.exit_code,
                                   version=run.version or version, pid=proc.pid,
                                   python=run.python or None)
        report["program"]["signal"] = proc.signal
        report["program"]["ended"] = proc.ended_how()
        json_report.add_retention(report, self.verdict, self.retention, self.census)
        return report

    def summary_json(self) -> Dict[str, Any]:
        proc, v = self.process, self.verdict
        return {"pid": proc.pid, "ppid": proc.ppid, "argv": self.run.argv,
                "status": proc.state, "exit_code": proc.exit_code, "signal": proc.signal,
                "ended": proc.ended_how(), "duration_s": self.run.duration,
                "verdict": {"leaking": v.leaking, "summary": v.summary,
                            "bytes_per_second": v.bytes_per_second,
                            "diagnosis": v.diagnosis},
                "leaks": [{"site": {"file": s.site.filename, "line": s.site.lineno,
                                    "function": s.site.function},
                           "bytes_per_second": s.bytes_per_second, "live_bytes": s.live_bytes}
                          for s in v.leaks]}


def report_capture(path: str, args: argparse.Namespace, out: IO[str], *,
                   pid: Optional[int] = None, version: str = "") -> Tuple[int, bool]:
    """Print and write the reports of a capture: the full report of one
    process (``pid``, or the first), a line for every other process with its
    verdict, the full report of every other process that leaks, and which
    leak sites several processes share. Returns (exit code: 0, or EXIT_ERROR if
    an output could not be written; whether any process leaks). Raises
    CaptureError."""
    from ..capture import Capture, CaptureError

    with Capture(path) as cap:
        main_proc = cap.process(pid)
        runs: List[Any] = []
        skipped: List[Any] = []
        for p in cap.processes():
            try:
                runs.append(cap.load(p.pid))
            except CaptureError:
                if p.pid == main_proc.pid:
                    raise
                skipped.append(p)
    reports = [ProcessReport(r) for r in runs]
    main = next(r for r in reports if r.process.pid == main_proc.pid)
    others = [r for r in reports if r is not main]

    report = None
    if args.json or args.html:
        report = main.json(version)
        report["processes"] = [r.summary_json() for r in reports]
        for p in skipped:
            report["processes"].append({"pid": p.pid, "ppid": p.ppid, "status": p.state,
                                        "exit_code": p.exit_code, "signal": p.signal,
                                        "ended": p.ended_how(), "verdict": None, "leaks": []})
        shared = shared_sites(reports)
        report["shared_leaks"] = [{"site": {"file": f, "line": line, "function": fn},
                                   "pids": pids, "processes": len(reports)}
                                  for (f, line, fn), pids in shared]
    rc, written = write_outputs(args, report, main.run.result.snapshot, 0)
    if not args.quiet:
        render_all(main, others, skipped, out, top=args.top)
        for what, where in written:
            sys.stderr.write(f"memhound: {what} written to {where}\n")
    return rc, any(r.leaking for r in reports)


def shared_sites(reports: List[ProcessReport]) -> List[Tuple[Tuple[str, int, str], List[int]]]:
    """Leak sites found in more than one process, with those processes' pids."""
    by_site: Dict[Tuple[str, int, str], List[int]] = {}
    for r in reports:
        for s in r.verdict.leaks:
            key = (s.site.filename, s.site.lineno, s.site.function)
            pids = by_site.setdefault(key, [])
            if r.process.pid not in pids:
                pids.append(r.process.pid)
    return [(k, v) for k, v in by_site.items() if len(v) > 1]


def render_all(main: ProcessReport, others: List[ProcessReport], skipped: List[Any],
               out: IO[str], *, top: int) -> None:
    from ..reports import terminal

    def render(r: ProcessReport) -> None:
        program = r.run.argv[0] if r.run.argv else None
        terminal.render(r.run.result, r.verdict, out, top=top, program=program,
                        retention=r.retention, census=r.census)

    render(main)
    if not others and not skipped:
        return
    total = 1 + len(others) + len(skipped)
    pids = {r.process.pid for r in [main] + others} | {p.pid for p in skipped}
    out.write(f"\nmemhound: {total} processes:\n")
    for r in [main] + others:
        out.write(f"  {process_line(r.process, pids)}: {r.verdict.summary}\n")
    for p in skipped:
        out.write(f"  {process_line(p, pids)}: nothing recorded (it ended before its first flush)\n")
    for (f, line, fn), pids in shared_sites([main] + others):
        out.write(f"  {os.path.basename(f)}:{line} in {fn} leaks in {len(pids)} of "
                  f"{1 + len(others)} processes ({', '.join(map(str, pids))})\n")
    for r in others:
        if r.leaking:
            out.write(f"\nmemhound: process {process_line(r.process, pids)}:")
            render(r)


def process_line(p: Any, pids: Any) -> str:
    from ..capture import real_pid

    role = f"child of {p.ppid}" if p.ppid in pids else "first"
    if p.pid <= 0:
        return f"{real_pid(p.pid)} before its exec ({role}, {p.ended_how()})"
    return f"{p.pid} ({role}, {p.ended_how()})"
