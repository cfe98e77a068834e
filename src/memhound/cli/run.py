"""``memhound run [options] script.py [args]`` / ``memhound run -m module [args]``:
run a program under memhound and end with a verdict: is it leaking, where, how
fast, how sure. The program's own output, traceback and exit code pass through."""
from __future__ import annotations

import argparse
import importlib.util
import os
import runpy
import sys
import threading
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

from .. import __version__, tracker
from ..session import Session, parse_function_spec
from ..snapshot import Snapshot

# The analysis and the reports (rich among them) are imported once the program
# has run, so that their memory is not part of the program's run.

HELP = "run a Python program under memhound and report whether, where and how fast it leaks"

#: Exit code of --fail-on-leak when the verdict is a leak.
EXIT_LEAK = 3
#: Exit code of memhound's own errors (bad options, missing script, unwritable output).
EXIT_ERROR = 2

#: Default sampling rate of ``memhound run``: see docs/verdict.md ("sampling rate").
RUN_SAMPLE_BYTES = 2048

#: Where memhound started (the program may change directory).
_START_CWD = os.getcwd()


def prepare_parser(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sample-bytes", type=_positive_int, default=None, metavar="N",
                      help=f"mean bytes between samples (default {RUN_SAMPLE_BYTES})")
    mode.add_argument("--exact", action="store_true", help="record every allocation")
    p.add_argument("--max-frames", type=_frames, default=tracker.DEFAULT_MAX_FRAMES,
                   metavar="N", help="deepest stack kept per sample (default %(default)s)")
    ep = p.add_mutually_exclusive_group()
    ep.add_argument("--epoch-on", metavar="FUNC",
                    help="close an epoch each time FUNC returns (a name, or module:qualname): "
                         "one pass of your loop, one request")
    ep.add_argument("--manual-epochs", action="store_true",
                    help="epochs only where the program calls memhound.next_epoch()")
    cap = p.add_mutually_exclusive_group()
    cap.add_argument("-o", "--output", metavar="FILE",
                     help="write the capture (SQLite) to FILE (default: "
                          "memhound-<script>.<pid>.db in the current directory)")
    cap.add_argument("--no-capture", action="store_true", help="write no capture file")
    p.add_argument("-f", "--force", action="store_true",
                   help="overwrite the capture file if it exists")
    p.add_argument("--json", metavar="FILE", help="write the JSON report (schema 1) to FILE")
    p.add_argument("--html", metavar="FILE",
                   help="write the HTML report (one self-contained page) to FILE")
    p.add_argument("--pprof", metavar="FILE",
                   help="write live memory by stack as a gzipped pprof profile to FILE "
                        "(go tool pprof, Pyroscope, Parca)")
    p.add_argument("--speedscope", metavar="FILE",
                   help="write live memory by stack as a speedscope JSON file to FILE")
    p.add_argument("--fail-on-leak", action="store_true",
                   help=f"exit with {EXIT_LEAK} when the verdict is a leak (for CI)")
    p.add_argument("--top", type=_positive_int, default=5, metavar="N",
                   help="leak sites shown (default %(default)s)")
    p.add_argument("--quiet", "-q", action="store_true", help="no terminal report")
    p.add_argument("--no-retention", action="store_true",
                   help="skip the analysis of what holds the leaked objects (and the census)")
    p.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    p.add_argument("target", nargs=argparse.REMAINDER, metavar="script.py [args]",
                   help="the program and its arguments")


def _positive_int(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return v


def _frames(value: str) -> int:
    v = _positive_int(value)
    if v > tracker.MAX_FRAMES_CAP:
        raise argparse.ArgumentTypeError(f"at most {tracker.MAX_FRAMES_CAP}, got {v}")
    return v


def _fail(message: str) -> int:
    sys.stderr.write(f"memhound: error: {message}\n")
    return EXIT_ERROR


#: What each output option writes, as error and status messages name it.
_OUTPUTS = (("json", "the JSON report"), ("html", "the HTML report"),
            ("pprof", "the pprof profile"), ("speedscope", "the speedscope profile"))


def _check_writable(path: str, what: str = "the JSON report") -> Optional[str]:
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
    for option, what in _OUTPUTS:
        out = getattr(args, option, None)
        if out:
            out = os.path.abspath(out)
            setattr(args, option, out)
            problem = _check_writable(out, what)
            if problem:
                return problem
    return None


def _capture_path(args: argparse.Namespace, target: List[str]) -> Optional[str]:
    """Where the capture goes: -o, or memhound-<script>.<pid>.db here."""
    if args.no_capture:
        return None
    if args.output:
        return os.path.abspath(args.output)
    if args.module is not None:
        stem = args.module
    else:
        stem = os.path.splitext(os.path.basename(target[0]))[0] or "program"
    return os.path.abspath(f"memhound-{stem}.{os.getpid()}.db")


def _remove_capture(path: str) -> None:
    for p in (path, path + "-wal", path + "-shm"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


class _Progress:
    """A status line on stderr while a long run goes on (only on a terminal)."""

    def __init__(self, session: Session):
        self.session = session
        self.stop = threading.Event()
        self.shown = False
        self.thread = threading.Thread(target=self._run, name="memhound-progress", daemon=True)

    def _run(self) -> None:
        from .. import _core

        _core.ignore_thread(True)
        t0 = time.monotonic()
        while not self.stop.wait(1.0):
            if time.monotonic() - t0 < 3.0:
                continue
            point = self.session.last_point()
            if point is None:
                continue
            t, rss, tracked = point[:3]
            sys.stderr.write(f"\x1b[2K\rmemhound: {t:5.0f} s · tracked {tracked / 1e6:.1f} MB"
                             f" · RSS {rss / 1e6:.1f} MB\r")
            sys.stderr.flush()
            self.shown = True

    def start(self) -> None:
        if sys.stderr.isatty():
            self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        if self.shown:
            sys.stderr.write("\x1b[2K\r")


def run(args: argparse.Namespace) -> int:
    target: List[str] = list(args.target)
    if target and target[0] == "--":
        target = target[1:]
    if args.module is None and not target:
        return _fail("missing the script to run (memhound run script.py [args])")
    problem = check_outputs(args)
    if problem:
        return _fail(problem)
    if args.epoch_on:
        try:
            parse_function_spec(args.epoch_on)
        except ValueError as e:
            return _fail(f"--epoch-on: {e}")
    path: Optional[str] = None
    if args.module is not None:
        # As `python -m`: the current directory comes first on the module path.
        sys.path.insert(0, os.getcwd())
        try:
            spec = importlib.util.find_spec(args.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return _fail(f"no module named {args.module!r}")
        argv = [args.module] + target
    else:
        path = os.path.abspath(target[0])
        if not os.path.isfile(path):
            return _fail(f"no such file: {target[0]}")
        argv = [path] + target[1:]

    capture = _capture_path(args, target)
    if capture is not None:
        problem = _check_writable(capture, "the capture")
        if problem:
            return _fail(problem)
        if os.path.exists(capture):
            if not args.force:
                return _fail(f"{capture} already exists (use --force to overwrite it)")
            try:
                _remove_capture(capture)
            except OSError as e:
                return _fail(f"cannot overwrite {capture}: {e.strerror or e}")

    sample_bytes = 1 if args.exact else (args.sample_bytes or RUN_SAMPLE_BYTES)
    session = Session(sample_bytes, args.max_frames, epoch_on=args.epoch_on,
                      manual_epochs=args.manual_epochs, capture=capture,
                      meta={"argv": argv, "memhound": __version__})
    saved_argv = sys.argv
    sys.argv = argv
    if path is not None:
        sys.path.insert(0, os.path.dirname(path))
    status, code = "completed", 0
    # What the program left alive stays alive until the snapshot, as it would
    # until the interpreter exits: its module globals (which runpy hands back),
    # or the exception that ended it (whose traceback holds its frames).
    program_globals: Optional[Dict[str, Any]] = None
    program_exc: Optional[BaseException] = None
    t0 = time.monotonic()
    progress = _Progress(session)
    census_start = None if args.no_retention else _census()
    try:
        session.start()
    except OSError as e:
        sys.argv = saved_argv
        return _fail(f"cannot write the capture {capture}: {e}")
    my_pid = os.getpid()
    progress.start()
    try:
        if path is not None:
            program_globals = runpy.run_path(path, run_name="__main__")
        else:
            program_globals = runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        program_exc = e
        program_globals = _program_globals(e)
        status, code = "exited", _exit_code(e.code)
        _join_program_threads()
    except BaseException as e:
        program_exc = e
        program_globals = _program_globals(e)
        # The program's own traceback, as Python prints it, without memhound's frames.
        tb = e.__traceback__
        while tb is not None and _is_runner_file(tb.tb_frame.f_code.co_filename):
            tb = tb.tb_next
        traceback.print_exception(type(e), e, tb)
        status, code = ("interrupted", 130) if isinstance(e, KeyboardInterrupt) else ("raised", 1)
        if status == "raised":
            _join_program_threads()  # as the interpreter does before it exits
    else:
        _join_program_threads()
    finally:
        sys.argv = saved_argv
        progress.finish()
        duration = time.monotonic() - t0
        result = session.finish(status, code, duration)
    sys.stdout.flush()
    if os.getpid() != my_pid:
        # A forked child that returned from the program: its rows are in the
        # capture under its pid; the report is the parent's to print.
        return code

    from ..analysis import analyze
    from ..reports import json_report, terminal

    unit = "epoch" if result.epoch_kind == "time" else "call"
    verdict = analyze(result.snapshot, timeline=result.timeline,
                      units_per_epoch=result.units_per_epoch, epoch_unit=unit)
    if status != "completed" and not (status == "exited" and code == 0):
        verdict.summary = f"(the program {_ended(status, code)}; partial run) " + verdict.summary
    retention, census = None, None
    if not args.no_retention:
        retention, census = _who_holds_it(result, verdict, program_globals, census_start,
                                          top=args.top)
    program_globals = None  # the program's objects may go now
    del program_exc
    if result.capture and (retention is not None or census is not None):
        from ..capture import write_notes

        problem = write_notes(result.capture, os.getpid(),
                              {"retention": retention.dump() if retention is not None else None,
                               "census": census})
        if problem:
            result.capture_error = result.capture_error or f"cannot add the retention analysis: {problem}"
    rc = code
    report = None
    if args.json or args.html:
        report = json_report.build(result, verdict, argv=argv, duration=duration,
                                   exit_status=status, exit_code=code, version=__version__)
        json_report.add_retention(report, verdict, retention, census)
    rc, written = write_outputs(args, report, result.snapshot, rc)
    if not args.quiet:
        terminal.render(result, verdict, sys.stderr, top=args.top, program=argv[0],
                        retention=retention, census=census)
        for what, out in written:
            sys.stderr.write(f"memhound: {what} written to {out}\n")
    if result.capture_error:
        sys.stderr.write(f"memhound: warning: the capture is incomplete: {result.capture_error}\n")
    if result.capture and not args.quiet:
        sys.stderr.write(f"memhound: capture written to {_display(result.capture)}"
                         f" (memhound report {_display(result.capture)})\n")
    if rc == 0 and args.fail_on_leak and verdict.leaking:
        rc = EXIT_LEAK
    return rc


def _display(path: str) -> str:
    """The path as the user's shell sees it (relative to where memhound started)."""
    rel = os.path.relpath(path, _START_CWD)
    return rel if not rel.startswith("..") else path


def write_outputs(args: argparse.Namespace, report: Optional[Dict[str, Any]], snapshot: Snapshot,
                  rc: int) -> Tuple[int, List[Tuple[str, str]]]:
    """Write the --json and --html reports (from ``report``, the JSON report's
    dict) and the --pprof and --speedscope files (from the final snapshot); their
    modules are imported only now, after the program has run. Returns the exit
    code, made EXIT_ERROR if a write failed and it was 0, and (what, path) of
    each file written. Shared by ``run`` and ``report``."""
    written: List[Tuple[str, str]] = []
    writers: List[Tuple[Optional[str], str, Any]] = []
    if report is not None:
        from ..reports import json_report

        writers.append((args.json, "JSON report", lambda path: json_report.write(path, report)))
        if args.html:
            try:
                from ..reports import html
            except ImportError as e:  # Jinja2 missing from a broken install
                _fail(f"cannot write the HTML report: {e} (memhound needs Jinja2 for it)")
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
            _fail(f"cannot write the {what} to {path}: {e.strerror or e}")
            rc = rc or EXIT_ERROR
        else:
            written.append((what, path))
    return rc, written


# -- who holds it (analysis/retention.py, analysis/census.py) ----------------

def _census() -> Optional[dict]:
    from ..analysis.census import census

    try:
        return census()
    except (OverflowError, MemoryError):
        return None


def _program_globals(e: BaseException) -> Optional[dict]:
    """The program's globals when it ended with an exception: those of the
    outermost frame of its traceback that runs module code."""
    tb = e.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "<module>" and not _is_runner_file(frame.f_code.co_filename):
            return frame.f_globals
        tb = tb.tb_next
    return None


def _who_holds_it(result, verdict, program_globals: Optional[dict],  # type: ignore[no-untyped-def]
                  census_start: Optional[dict], *, top: int):
    """The retention analysis of the top leak sites and the census growth, run
    while the program's objects are still alive. Never fails the run."""
    from ..analysis.census import census_growth
    from ..analysis.retention import analyze_retention

    retention, growth = None, None
    try:
        census_end = _census()
        if census_start is not None and census_end is not None:
            growth = {"start": sum(census_start.values()), "end": sum(census_end.values()),
                      "growth": census_growth(census_start, census_end, top=10)}
        leaks = verdict.leaks[:top]
        if leaks and result.snapshot.live_samples is not None:
            retention = analyze_retention([(v.site, v.stack_ids) for v in leaks],
                                          result.snapshot.live_samples,
                                          program_globals=program_globals)
    except Exception as e:  # the report goes out even if this part cannot
        sys.stderr.write(f"memhound: the retention analysis failed: {type(e).__name__}\n")
    return retention, growth


def _join_program_threads() -> None:
    """Wait for the program's non-daemon threads, as the interpreter does before
    it exits: their work is part of the run."""
    me = threading.current_thread()
    for t in threading.enumerate():
        if t is not me and not t.daemon and t.is_alive():
            t.join()


def _is_runner_file(filename: str) -> bool:
    """Frames of memhound's runner and of runpy/importlib, which Python's own
    traceback of a script would not show."""
    return (filename in (__file__, runpy.__file__) or filename.startswith("<frozen runpy")
            or filename.startswith("<frozen importlib"))


def _ended(status: str, code: int) -> str:
    return {"exited": f"exited with code {code}", "raised": "raised an exception",
            "interrupted": "was interrupted"}.get(status, "ended early")


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1
