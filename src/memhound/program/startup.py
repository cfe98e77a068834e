"""Start tracking in a process of the program, before its first line.

Called by memhound.pth in every Python process that has ``MEMHOUND_CONFIG``
in its environment (see :mod:`memhound.config`): the program run by
``memhound run`` and, through the inherited environment, its children started
by subprocess, spawn, forkserver or exec. A child made by fork starts a run of
its own (its own clock, epochs and warm-up) in :func:`_after_fork_in_child`.

How each process ends is recorded in the capture:
- at the interpreter's exit, after the program's atexit handlers and
  threading's shutdown (this module registers its handler before the program
  runs, so it runs last): the end-of-run analysis (:mod:`memhound.program.finish`);
- ``os._exit``: a last flush and the status "os._exit" with its code;
- ``os.exec*``: a last flush and the status "exec";
- a signal's default action or SIGKILL: nothing can run; the capture holds the
  run up to its last flush and the launcher records the signal.
"""
from __future__ import annotations

import atexit
import os
import sys
import time

from .. import config, tracker
from ..session import Session

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, List, Optional

#: The running session (None: not tracking), its settings and start.
_session: "Optional[Session]" = None
_settings: "Optional[Dict[str, object]]" = None
_t0 = 0.0
#: The census taken before the program's first line (None: no retention).
census_start: "Optional[Dict[str, int]]" = None
#: The real os functions replaced by the hooks below.
_real: "Dict[str, object]" = {}
#: sys.path before the program's folder went in front of it: memhound's own
#: imports at the end search it first, so that the program's modules (its own
#: platform.py or sysconfig.py) never stand in for the standard library's.
clean_path: "List[str]" = []
#: This interpreter's folders, as the start found them (see prefixes()).
folders: "Optional[Dict[str, List[str]]]" = None


def start() -> bool:
    """Start tracking this process if the launcher asked for it. Idempotent.
    Returns True if tracking. Never raises for a bad setting: says so in one
    line on stderr and lets the program run untracked."""
    global _settings, clean_path
    if _session is not None:
        return True
    clean_path = list(sys.path)
    settings = config.decode(os.environ.get(config.ENV))
    if settings is None:
        return False
    _settings = settings
    if not settings["children"]:
        # The program's children run untracked: they never see the switch.
        os.environ.pop(config.ENV, None)
    if _begin():
        atexit.register(_at_exit)
        _patch_os()
        return True
    return False


def _program_argv() -> "List[str]":
    """The program's command line as the user would write it after ``python``."""
    argv = list(sys.argv)
    if argv and argv[0] == "-m":
        orig = list(getattr(sys, "orig_argv", []))
        if "-m" in orig[1:-1]:
            argv[0] = orig[orig.index("-m", 1) + 1]
    return argv


def prefixes() -> "Dict[str, List[str]]":
    """Where this interpreter's own code lives, so that reports read anywhere
    can tell the program's frames from the standard library's and
    site-packages' (see memhound.analysis.frames)."""
    import site

    stdlib = os.path.dirname(os.__file__)
    sysconfig = sys.modules.get("sysconfig")  # only if the interpreter has it already
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # sys.prefix is already the virtual environment's here; site's own list
    # may not be yet (the start-up hook runs while site sets it up).
    sites = [os.path.dirname(package)]
    try:
        sites += site.getsitepackages([sys.prefix, sys.exec_prefix, sys.base_prefix])
    except (AttributeError, TypeError):  # pragma: no cover - an old virtualenv's site.py
        pass
    user = getattr(site, "USER_SITE", None)
    if user:
        sites.append(user)
    if sysconfig is not None:
        paths = sysconfig.get_paths()
        sites += [paths["purelib"], paths["platlib"]]
    return {"stdlib": [stdlib], "site": sites, "memhound": [package]}


def _begin() -> bool:
    """Start tracking, the background thread and this process's rows in the
    capture. Returns False (with one line on stderr) if it cannot."""
    global _session, _t0, census_start
    s = _settings
    assert s is not None
    from .. import __version__

    global folders
    if folders is None:
        folders = prefixes()
    meta = {"argv": _program_argv(), "memhound": __version__,
            "executable": sys.executable, "prefixes": folders}
    session = Session(int(s["sample_bytes"]), int(s["max_frames"]),
                      epoch_on=str(s["epoch_on"]) or None, manual_epochs=bool(s["manual_epochs"]),
                      capture=str(s["capture"]), meta=meta)
    session.on_fork_child = _after_fork_in_child
    census_start = None
    if s["retention"]:
        census_start = _census()
    try:
        session.start()
    except Exception as e:  # the capture cannot be written, a bad --epoch-on...
        if tracker.is_tracking():
            tracker.stop()
        sys.stderr.write(f"memhound: process {os.getpid()} is not tracked: {e}\n")
        return False
    _t0 = time.monotonic()
    _session = session
    return True


def _census() -> "Optional[Dict[str, int]]":
    from .census import census

    try:
        return census()
    except (OverflowError, MemoryError):
        return None


# -- how the process ends ------------------------------------------------------

def _status_at_exit() -> "tuple[str, int]":
    """How the interpreter is ending, as far as an atexit handler can tell: an
    uncaught exception was printed ("raised", or "interrupted" for Ctrl-C), or
    it exited (code unknown here: -1; the launcher records the real status of
    the process it started)."""
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", -1
    if isinstance(exc, BaseException):
        return "raised", 1
    return "exited", -1


def _at_exit() -> None:
    global _session
    session, _session = _session, None
    if session is None:
        return
    status, code = _status_at_exit()
    saved_path = sys.path
    try:
        sys.path = clean_path + [p for p in saved_path if p not in clean_path]
        from . import finish

        finish.finish(session, status, code, time.monotonic() - _t0, _settings, census_start)
    except BaseException as e:  # never change how the program ends
        _warn(f"the end-of-run analysis failed ({type(e).__name__}: {e})")
    finally:
        sys.path = saved_path
    if status == "interrupted":
        _keep_dying_of_sigint()


def _keep_dying_of_sigint() -> None:
    """After an uncaught KeyboardInterrupt, python ends by killing itself with
    SIGINT; but every exec() of source text (dataclasses and namedtuple make
    classes that way, in the analysis above) clears the interpreter's note of
    that. An exec() that ends in KeyboardInterrupt sets it again."""
    try:
        exec("raise KeyboardInterrupt")
    except KeyboardInterrupt:
        pass


def _abandon(status: str, code: int) -> None:
    """A last flush before the process image goes (os._exit, exec)."""
    global _session
    session, _session = _session, None
    if session is None:
        return
    try:
        session.abandon(status, code, time.monotonic() - _t0)
    except BaseException:
        pass


def _os_exit(status: int) -> None:
    _abandon("os._exit", status if isinstance(status, int) else -1)
    _real["_exit"](status)  # type: ignore[operator]


def _wrap_exec(name: str) -> None:
    real = getattr(os, name)
    _real[name] = real

    def exec_hook(*args: object) -> None:
        if _session is not None:
            _abandon("exec", -1)
            _set_aside_before_exec()
        real(*args)

    exec_hook.__name__ = exec_hook.__qualname__ = name
    exec_hook.__doc__ = real.__doc__
    setattr(os, name, exec_hook)


def _set_aside_before_exec() -> None:
    """The image that execs keeps its rows under a key of its own, so that the
    program it becomes (which has the same pid, and is tracked too if it is
    Python) starts afresh without erasing them."""
    if _settings is None:
        return
    pid = os.getpid()
    try:
        import sqlite3

        from ..config import PID_SPAN

        db = sqlite3.connect(str(_settings["capture"]), timeout=10.0)
        try:
            with db:
                k = 0
                while db.execute("SELECT 1 FROM process WHERE pid = ?",
                                 (-(pid + k * PID_SPAN),)).fetchone():
                    k += 1
                key = -(pid + k * PID_SPAN)
                for table in ("process", "stack", "stack_frame", "epoch", "site", "cohort",
                              "timeline", "note"):
                    db.execute(f"UPDATE {table} SET pid = ? WHERE pid = ?", (key, pid))
        finally:
            db.close()
    except Exception as e:
        _warn(f"the process {pid} before its exec is not kept ({type(e).__name__}: {e})")


def _patch_os() -> None:
    """os._exit and the exec functions flush the capture first. os.execl*,
    execvp* and the rest call os.execv or os.execve, so two hooks cover them."""
    if "_exit" in _real:
        return
    _real["_exit"] = os._exit
    _os_exit.__doc__ = os._exit.__doc__
    os._exit = _os_exit  # type: ignore[assignment]
    for name in ("execv", "execve"):
        _wrap_exec(name)


def _after_fork_in_child() -> None:
    """A forked child runs on its own: it drops the parent's tables and starts
    a run of its own under its pid, with its own clock, epochs and warm-up, so
    that it writes only what is new to it."""
    global _session
    old, _session = _session, None
    if old is None:
        return
    try:
        old.forget_in_child()
        if _settings is not None and _settings["children"]:
            _begin()
    except BaseException as e:
        _warn(f"the child process {os.getpid()} is not tracked ({type(e).__name__}: {e})")


def _warn(message: str) -> None:
    try:
        os.write(2, f"memhound: {message}\n".encode("utf-8", "replace"))
    except OSError:
        pass
