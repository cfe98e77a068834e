"""``memhound run [options] script.py [args]`` / ``memhound run [options] -m module [args]``:
run a program under memhound and end with a verdict: is it leaking, where, how
fast, how sure.

memhound is a launcher here. It starts the program as ``python script.py args``
(the same interpreter, in a process of its own) with tracking switched on
through the environment (memhound.config) and the start-up hook installed with
the package (memhound.pth), so that the program runs as itself: its
``__main__``, ``sys.argv``, ``sys.path``, excepthooks, signals, atexit handlers,
threads, output and exit status are plain python's. Its children inherit the
switch. memhound waits, leaves signals to the program, and once it has ended
builds the report from the capture, then exits with the program's status (or
dies of the same signal)."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from .. import __version__, config, tracker
from ._common import (
    EXIT_ERROR,
    EXIT_LEAK,
    add_output_options,
    check_outputs,
    check_writable,
    fail,
    positive_int,
    report_capture,
)

HELP = "run a Python program under memhound and report whether, where and how fast it leaks"

#: Default sampling rate of ``memhound run``: see docs/verdict.md ("sampling rate").
RUN_SAMPLE_BYTES = 2048

#: Signals memhound passes on to the program; those a terminal sends to the
#: whole process group (the program included) only when they come from a process.
FORWARDED = ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")
GROUP_SIGNALS = ("SIGINT", "SIGQUIT")


def prepare_parser(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sample-bytes", type=positive_int, default=None, metavar="N",
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
    cap.add_argument("--no-capture", action="store_true",
                     help="keep no capture file (it is written to a temporary file and removed)")
    p.add_argument("-f", "--force", action="store_true",
                   help="overwrite the capture file if it exists")
    add_output_options(p)
    p.add_argument("--no-retention", action="store_true",
                   help="skip the analysis of what holds the leaked objects (and the census)")
    p.add_argument("--no-children", action="store_true",
                   help="track only the program's first process, not the processes it starts")
    p.add_argument("-m", dest="module", metavar="MODULE",
                   help="run a library module as a script (as python -m); what follows is its arguments")
    p.add_argument("target", nargs=argparse.REMAINDER, metavar="script.py [args]",
                   help="the program and its arguments: everything after the script (or -m "
                        "MODULE) is the program's, as with python")


def _frames(value: str) -> int:
    v = positive_int(value)
    if v > tracker.MAX_FRAMES_CAP:
        raise argparse.ArgumentTypeError(f"at most {tracker.MAX_FRAMES_CAP}, got {v}")
    return v


def split_argv(tokens: List[str]) -> Tuple[List[str], List[str]]:
    """Split ``memhound run``'s arguments into memhound's options and the
    program's command line, as python does: the first argument that is not one
    of memhound's options (or the one after ``--``) is the script, and ``-m
    MODULE`` ends memhound's options too. Returns (memhound's, the program's);
    the program's starts with ``-m MODULE`` for a module."""
    probe = argparse.ArgumentParser(add_help=True)
    prepare_parser(probe)
    takes_value = {opt: action.nargs != 0 for opt, action in probe._option_string_actions.items()}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            return tokens[:i], tokens[i + 1:]
        if tok == "-m":
            return tokens[:i], tokens[i:]
        if tok.startswith("-m") and not tok.startswith("--"):
            return tokens[:i], ["-m", tok[2:]] + tokens[i + 1:]
        if tok.startswith("-") and tok != "-":
            name = tok.split("=", 1)[0] if tok.startswith("--") else tok[:2]
            if takes_value.get(name) and "=" not in tok and len(tok) == len(name):
                i += 2
            else:
                i += 1
            continue
        return tokens[:i], tokens[i:]
    return tokens, []


def _resolve(program: List[str]) -> Tuple[Optional[List[str]], Optional[str], Optional[str]]:
    """(the command line after the interpreter, the name of the capture's stem,
    an error) for the program's part of the arguments."""
    if not program:
        return None, None, "missing the script to run (memhound run script.py [args])"
    if program[0] == "-m":
        if len(program) < 2 or not program[1]:
            return None, None, "-m needs a module name (memhound run -m module [args])"
        module = program[1]
        problem = _check_module(module)
        if problem:
            return None, None, problem
        return ["-m"] + program[1:], module, None
    path = program[0]
    if not os.path.exists(path):
        return None, None, f"no such file: {path}"
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "__main__.py")):
        return None, None, f"{path} is a folder without __main__.py"
    stem = os.path.splitext(os.path.basename(os.path.normpath(path)))[0] or "program"
    return list(program), stem, None


def _check_module(module: str) -> Optional[str]:
    """A missing top-level package is one line from memhound; anything deeper is
    python's to say (finding it would import the package's ``__init__``)."""
    import importlib.machinery
    import importlib.util

    top = module.split(".", 1)[0]
    if not top or not all(part.isidentifier() for part in module.split(".")):
        return f"not a module name: {module!r}"
    if top in sys.builtin_module_names:
        return None
    try:
        spec = importlib.machinery.PathFinder.find_spec(top, [os.getcwd()] + sys.path[1:])
    except (ImportError, ValueError):
        spec = None
    if spec is None and importlib.util.find_spec(top) is None:
        return f"no module named {top!r}"
    return None


def _capture_path(args: argparse.Namespace, stem: str) -> str:
    if args.output:
        return os.path.abspath(args.output)
    return os.path.abspath(f"memhound-{stem}.{os.getpid()}.db")


def _remove_capture(path: str) -> None:
    for p in (path, path + "-wal", path + "-shm"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _hook_installed() -> bool:
    """memhound.pth is in one of this interpreter's site-packages folders."""
    import site
    import sysconfig

    dirs = list(getattr(site, "getsitepackages", lambda: [])())
    dirs += [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return any(os.path.isfile(os.path.join(d, "memhound.pth")) for d in dirs)


def run(args: argparse.Namespace) -> int:
    program = list(args.target)
    if args.module is not None:
        program = ["-m", args.module] + program
    elif program and program[0] == "--":
        program = program[1:]
    command, stem, problem = _resolve(program)
    if problem:
        return fail(problem)
    assert command is not None and stem is not None
    problem = check_outputs(args)
    if problem:
        return fail(problem)
    if args.epoch_on:
        from ..session import parse_function_spec

        try:
            parse_function_spec(args.epoch_on)
        except ValueError as e:
            return fail(f"--epoch-on: {e}")
    if not _hook_installed():
        return fail("memhound's start-up hook (memhound.pth) is not in this interpreter's "
                    "site-packages: install memhound with pip (python -m pip install memhound)")

    scratch: Optional[str] = None
    if args.no_capture:
        scratch = tempfile.mkdtemp(prefix="memhound-")
        capture = os.path.join(scratch, "capture.db")
    else:
        capture = _capture_path(args, stem)
        problem = check_writable(capture, "the capture")
        if problem:
            return fail(problem)
        if os.path.exists(capture):
            if not args.force:
                return fail(f"{capture} already exists (use --force to overwrite it)")
            try:
                _remove_capture(capture)
            except OSError as e:
                return fail(f"cannot overwrite {capture}: {e.strerror or e}")
    try:
        return _launch(args, command, capture)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _launch(args: argparse.Namespace, command: List[str], capture: str) -> int:
    sample_bytes = 1 if args.exact else (args.sample_bytes or RUN_SAMPLE_BYTES)
    env = dict(os.environ)
    env[config.ENV] = config.encode(
        capture, sample_bytes=sample_bytes, max_frames=args.max_frames,
        epoch_on=args.epoch_on or "", manual_epochs=args.manual_epochs,
        retention=not args.no_retention, top=args.top, children=not args.no_children)
    argv = [sys.executable] + command
    try:
        own_group = not _in_terminal_foreground()
        proc = subprocess.Popen(argv, env=env, preexec_fn=_child_setup(own_group))
    except OSError as e:
        return fail(f"cannot start {sys.executable}: {e.strerror or e}")
    status = _wait_passing_signals(proc, own_group)
    exit_code, signum = (None, -status) if status < 0 else (status, None)
    _record_exit(capture, proc.pid, exit_code, signum)
    _let_children_finish(capture)

    rc = 0
    leaking = False
    if os.path.exists(capture):
        from ..capture import CaptureError

        try:
            rc, leaking = report_capture(capture, args, sys.stderr, pid=proc.pid,
                                         version=__version__)
        except CaptureError as e:
            sys.stderr.write(f"memhound: no report: {e}\n")
            rc = EXIT_ERROR
        if not args.no_capture and not args.quiet:
            shown = _display(capture)
            sys.stderr.write(f"memhound: capture written to {shown} (memhound report {shown})\n")
    else:
        sys.stderr.write("memhound: no report: the program wrote no capture (was it run "
                         "with python -I or -S, or did it end before its first line?)\n")
        rc = EXIT_ERROR
    sys.stderr.flush()
    if signum is not None:
        _die_of(signum)
    if exit_code:
        return exit_code
    if rc:
        return rc
    if args.fail_on_leak and leaking:
        return EXIT_LEAK
    return 0


def _in_terminal_foreground() -> bool:
    """memhound runs in the foreground of a terminal (which then sends Ctrl-C
    and Ctrl-\\ to its whole process group)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _child_setup(own_group: bool) -> Any:
    """A function for the child, between fork and exec.

    - Away from a terminal's foreground (scripts, CI, services, ``timeout``),
      the program gets a process group of its own, so that a signal sent to
      memhound's group reaches it once, through memhound. In the foreground of
      a terminal it stays in memhound's group, the terminal's foreground one,
      so that it can read the terminal and gets Ctrl-C from it directly.
    - If memhound itself is killed (kill -9 of the launcher), the program goes
      with it, as it would have had it been run by python directly (Linux:
      PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None
    launcher = os.getpid()
    pr_set_pdeathsig = 1

    def setup() -> None:
        if own_group:
            os.setpgid(0, 0)
        if prctl is not None:
            prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != launcher:  # memhound died before prctl took effect
                os.kill(os.getpid(), signal.SIGKILL)

    return setup


#: si_code of a signal the kernel sent (the terminal's Ctrl-C, Ctrl-\\).
SI_KERNEL = 0x80


def _wait_passing_signals(proc: "subprocess.Popen[bytes]", own_group: bool) -> int:
    """Wait for the program, passing on the signals memhound gets. When the
    program shares memhound's group in a terminal's foreground, the terminal's
    Ctrl-C (SIGINT) and Ctrl-\\ (SIGQUIT) reached it too: those are not passed
    on again.
    The signals are taken synchronously (blocked, then sigtimedwait), so that
    memhound can tell who sent them; they are blocked only after the program
    has started, which therefore does not inherit the mask."""
    wanted = {getattr(signal, n) for n in FORWARDED + GROUP_SIGNALS if hasattr(signal, n)}
    wanted.add(signal.SIGCHLD)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    try:
        while proc.poll() is None:
            info = signal.sigtimedwait(wanted, 1.0)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if (not own_group and info.si_signo in (signal.SIGINT, signal.SIGQUIT)
                    and info.si_code == SI_KERNEL):
                continue  # from the terminal: the program had it too
            try:
                proc.send_signal(info.si_signo)
            except OSError:
                pass
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return proc.wait()


def _let_children_finish(capture: str, patience: float = 1.0) -> None:
    """Give the program's other processes that are still ending (pool workers,
    multiprocessing's resource tracker, which ends just after its parent) up to
    ``patience`` seconds to record their end, so the report includes it. A
    process that goes on (a daemon) is reported as still running."""
    if not os.path.exists(capture):
        return
    import sqlite3
    import time
    from urllib.parse import quote

    from ..capture import process_alive

    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            db = sqlite3.connect(f"file:{quote(capture)}?mode=ro", uri=True, timeout=5.0)
            try:
                pids = [r[0] for r in db.execute("SELECT pid FROM process WHERE status IS NULL")]
            finally:
                db.close()
        except sqlite3.Error:
            return
        if not any(process_alive(pid) for pid in pids):
            return
        time.sleep(0.05)


def _record_exit(capture: str, pid: int, exit_code: Optional[int], signum: Optional[int]) -> None:
    """Tell the capture how the program's first process ended, as the launcher
    saw it (the only one that can see a signal or the real exit status)."""
    if not os.path.exists(capture):
        return
    from ..capture import write_notes

    doc: Dict[str, Any] = {"signal": signum} if signum is not None else {"exit_code": exit_code}
    problem = write_notes(capture, pid, {"exit": doc})
    if problem:
        sys.stderr.write(f"memhound: warning: cannot record how the program ended: {problem}\n")


def _die_of(signum: int) -> None:
    """End as the program did: killed by the same signal."""
    for step in (lambda: signal.signal(signum, signal.SIG_DFL),  # not for SIGKILL, SIGSTOP
                 lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum]),
                 lambda: os.kill(os.getpid(), signum)):
        try:
            step()
        except (OSError, ValueError):
            pass
    os._exit(128 + signum)  # a signal whose default action is not to end the process


def _display(path: str) -> str:
    """The path as the user's shell sees it (relative to where memhound started)."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path
