"""A tracking session, as the program side of ``memhound run`` starts it in the
program's own process: epochs (time windows that adapt to the run's length, or
the completed calls of a named function), a timeline of RSS, C heap and tracked memory,
and the capture file. The timeline, the time windows and the capture are kept by
the core's background thread (C, no GIL); this module only starts and stops it.

It runs inside the user's program, so it imports only small modules the
interpreter nearly always has (no json, typing, dataclasses or re)."""
from __future__ import annotations

import os
import sys
import threading
import time

from . import _core, tracker

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Dict, List, Optional, Tuple

    from .result import SessionResult


def parse_function_spec(spec: str) -> "Tuple[str, Optional[str], Optional[str]]":
    """``name``, ``qualname`` or ``module:qualname`` -> (name, qualname, module)."""
    module: "Optional[str]" = None
    if ":" in spec:
        module, _, spec = spec.partition(":")
        module = module or None
    if not spec or not all(part.isidentifier() or part == "<locals>" for part in spec.split(".")):
        raise ValueError(f"not a function name: {spec!r}")
    name = spec.rsplit(".", 1)[-1]
    qualname = spec if "." in spec else None
    return name, qualname, module


def to_json(value: "Any") -> str:
    """JSON text of a value made of dicts, lists, str, int, float, bool and None,
    written without the json module, which imports re."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else "null"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_quote(str(k))}: {to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


#: The allocation clock's unit at first: enough bytes for about this many samples,
#: and never under ALLOC_WINDOW_MIN (exact mode samples every allocation).
ALLOC_WINDOW_SAMPLES = 64
ALLOC_WINDOW_MIN = 64 * 1024


def alloc_quantum(sample_bytes: int) -> int:
    """Bytes of allocation per unit of the allocation clock at this sampling rate."""
    return max(ALLOC_WINDOW_SAMPLES * int(sample_bytes), ALLOC_WINDOW_MIN)


# The json module's own C escaper (json itself would import re).
from _json import encode_basestring_ascii as _quote  # noqa: E402



_active: "Optional[Session]" = None
_fork_hook = False
_fork_caller: "Any" = None  # the frame that called os.fork() while the thread is paused

#: From 3.12, os.fork() warns (DeprecationWarning) when the parent has more than
#: one OS thread, counted in the parent after the after-fork hooks have run.
#: When the program itself has one thread (the main one, forking), memhound's
#: background thread is stopped before the fork (joined, without a flush: what
#: it has not written stays in the engine for its next flush) and started again
#: by a pending call once os.fork() has returned to its caller, so the program
#: gets the warnings plain python gives it. A program with threads of its own
#: gets the warning from plain python too: the thread is then left running.
_PAUSE_AROUND_FORK = sys.version_info >= (3, 12)

#: sys.monitoring tool ids --epoch-on may take: none that a standard tool
#: claims (DEBUGGER_ID 0, COVERAGE_ID 1, PROFILER_ID 2, OPTIMIZER_ID 5).
_MONITORING_TOOL_IDS = (3, 4)


def _before_fork() -> None:
    global _fork_caller
    if (_PAUSE_AROUND_FORK and _active is not None and _core.is_tracking()
            and threading.current_thread() is threading.main_thread()
            and threading.active_count() == 1 and _core.bg_pause()):
        # Called from os.fork() itself (C): frame 1 is the caller of os.fork().
        _fork_caller = sys._getframe(1)


def _after_fork_in_parent() -> None:
    global _fork_caller
    if _fork_caller is not None:
        caller, _fork_caller = _fork_caller, None
        _core.bg_resume_later(caller)



def _after_fork_in_child() -> None:
    """A forked child keeps tracking; its own background thread writes the
    child's rows, under its pid, to the same capture. A session with an
    ``on_fork_child`` handler (memhound run's program side) does its own."""
    global _fork_caller
    _fork_caller = None
    if _active is None or not _core.is_tracking():
        return
    if _active.on_fork_child is not None:
        _active.on_fork_child()
        return
    err = _core.bg_after_fork(time.time())
    if err:
        sys.stderr.write(f"memhound: warning: the child process {os.getpid()} writes no capture: {err}\n")


class Session:
    """Start tracking with epochs, a timeline and (with ``capture``) a capture
    file; :meth:`finish` returns the result.

    ``epoch_on``: a function spec whose every completed call (return or raise,
    not a yield or an await) ends a unit of work; otherwise
    epochs are time windows of ``window`` seconds. Whenever ``max_epochs`` is
    reached the core merges epochs pairwise and doubles the units (windows, calls)
    per epoch, so a 2-second run and a 2-hour run both end with between
    max_epochs/2 and max_epochs epochs of equal size.
    """

    def __init__(self, sample_bytes: Optional[int] = None, max_frames: int = tracker.DEFAULT_MAX_FRAMES,
                 *, epoch_on: Optional[str] = None, manual_epochs: bool = False,
                 tick: float = 0.01, window: float = 0.01, max_epochs: int = 128,
                 capture: Optional[str] = None, flush_every: float = 1.0,
                 meta: Optional[Dict[str, Any]] = None, alloc_window: Optional[int] = None):
        self.sample_bytes = sample_bytes
        self.max_frames = max_frames
        self.epoch_on = parse_function_spec(epoch_on) if epoch_on else None
        self.kind = "function" if epoch_on else ("manual" if manual_epochs else "time")
        self.tick = tick
        self.window = window
        self.alloc_window = alloc_window
        self.epoch_clock = "time"
        self.max_epochs = max_epochs
        self.capture = capture
        self.flush_every = flush_every
        self.meta = dict(meta or {})
        self._t0 = 0.0
        self._monitoring_tool: Optional[int] = None
        self._hits = 0
        self._epoch_spec = epoch_on
        self.notes: "List[str]" = []
        #: Called in a forked child instead of continuing this session there.
        self.on_fork_child: "Optional[Callable[[], None]]" = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Start tracking. Raises OSError if the capture cannot be written (then
        nothing is left running)."""
        global _active, _fork_hook
        if self.epoch_on is not None and not self._claim_monitoring_tool():
            self._fall_back_to_time_epochs()
        try:
            tracker.start(self.sample_bytes, self.max_frames)
        except BaseException:
            self._release_monitoring_tool()
            raise
        _core.set_max_epochs(self.max_epochs)
        self._t0 = time.monotonic()
        snap_totals = _core.totals()
        alloc = 0 if self.kind != "time" else (
            alloc_quantum(snap_totals["sample_bytes"]) if self.alloc_window is None else self.alloc_window)
        self.epoch_clock = {"function": "calls", "manual": "manual"}.get(
            self.kind, "+".join(c for c, on in (("time", self.window > 0), ("alloc", alloc > 0)) if on) or "none")
        meta = {"sample_bytes": snap_totals["sample_bytes"], "max_frames": self.max_frames,
                "epoch_kind": self.kind, "window": self.window, "native": False,
                "epoch_clock": self.epoch_clock, "alloc_window": alloc,
                "python": ".".join(map(str, sys.version_info[:3]))}
        meta.update(self.meta)
        try:
            _core.bg_start(self.tick, self.window if self.kind == "time" else 0.0,
                           self.flush_every, self.capture, to_json(meta), time.time(), alloc)
        except BaseException:
            self._release_monitoring_tool()
            tracker.stop()
            raise
        _active = self
        if not _fork_hook and hasattr(os, "register_at_fork"):
            os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                                after_in_child=_after_fork_in_child)
            _fork_hook = True
        if self.epoch_on is not None:
            self._watch_function(*self.epoch_on)

    def last_point(self) -> Optional[Tuple[float, int, float, Optional[int], Optional[int]]]:
        """The newest timeline point, or None."""
        return _core.timeline_last()

    def finish(self, status: str = "completed", exit_code: int = 0,
               duration: "Optional[float]" = None) -> "SessionResult":
        """Stop tracking; record in the capture how the program ended."""
        global _active
        _core.ignore_thread(True)  # memhound's own work from here on is not the program's
        from .result import SessionResult

        err, units, stride, hits = self._stop_background(status, exit_code, duration)
        bg = _core.bg_status()
        timeline = _core.timeline()
        snap = tracker.snapshot()
        # The retention analysis maps these to objects after tracking stops.
        snap.live_samples = _core.live_samples(None)
        tracker.stop()
        _core.ignore_thread(False)
        _active = None
        return SessionResult(
            snapshot=snap, timeline=timeline, epoch_kind=self.kind,
            units_per_epoch=units, epoch_seconds=self.window * stride, function_epochs=hits,
            peak_rss=int(bg["peak_rss"]), final_rss=timeline[-1][1] if timeline else 0,
            capture=self.capture, capture_error=err, notes=list(self.notes),
            epoch_clock=self.epoch_clock,
        )

    def _stop_background(self, status: str, exit_code: int,
                         duration: "Optional[float]") -> "Tuple[Optional[str], float, float, int]":
        """Stop watching epochs and the background thread (a last flush) and
        record the end: (capture error, units per epoch, stride, calls seen)."""
        hits = self._unwatch_function() if self.epoch_on is not None else 0
        totals = _core.totals()
        stride = float(totals.get("stride", 1))
        units = stride if self.kind != "time" else 1.0
        end = {"function_epochs": hits, "units_per_epoch": units,
               "epoch_seconds": self.window * stride,
               "duration": duration if duration is not None else time.monotonic() - self._t0}
        _core.forget_free_lists()  # dead objects parked on free lists; before the last flush
        return _core.bg_stop(status, exit_code, to_json(end)), units, stride, hits

    def abandon(self, status: str, exit_code: int, duration: "Optional[float]" = None) -> None:
        """The process image is about to go (os._exit, exec): a last flush and
        the end recorded, nothing else. Tracking goes on until it goes."""
        global _active
        _core.ignore_thread(True)
        self._stop_background(status, exit_code, duration)
        _active = None

    def forget_in_child(self) -> None:
        """In a forked child: drop what the parent's session left (its thread's
        state, its tables) and stop tracking, so that the child can start a run
        of its own."""
        global _active
        if self.epoch_on is not None:
            self._unwatch_function()
        _core.bg_forget_after_fork()
        if _core.is_tracking():
            tracker.stop()
        _active = None

    # -- --epoch-on ----------------------------------------------------------
    #
    # One unit of work per *completed call* of the named function, on every
    # interpreter: a call completes when its frame finishes, by returning or by
    # raising (a request handler that raises has still done its unit of work).
    # A generator's yield and a coroutine's suspension at an await do not end a
    # call; a generator completes when it is exhausted (or raises), not when it
    # is closed before that (close(), garbage collection: GeneratorExit). From 3.12
    # sys.monitoring's PY_RETURN and PY_UNWIND events (PY_YIELD is not
    # watched); on 3.10 and 3.11 a C profile function (mh_epochfn) whose return
    # event is told apart from a suspension by the frame's state.

    def _claim_monitoring_tool(self) -> bool:
        """From 3.12, take a sys.monitoring tool id no standard tool needs.
        Returns False when none is free (True before 3.12: no id is needed)."""
        mon = getattr(sys, "monitoring", None)
        if mon is None:
            return True
        for candidate in _MONITORING_TOOL_IDS:
            try:
                mon.use_tool_id(candidate, "memhound")
            except ValueError:
                continue
            self._monitoring_tool = candidate
            return True
        return False

    def _release_monitoring_tool(self) -> None:
        mon = getattr(sys, "monitoring", None)
        if self._monitoring_tool is not None and mon is not None:
            mon.set_events(self._monitoring_tool, 0)
            mon.register_callback(self._monitoring_tool, mon.events.PY_RETURN, None)
            mon.register_callback(self._monitoring_tool, mon.events.PY_UNWIND, None)
            mon.free_tool_id(self._monitoring_tool)
            self._monitoring_tool = None

    def _fall_back_to_time_epochs(self) -> None:
        ids = ", ".join(map(str, _MONITORING_TOOL_IDS))
        note = (f"--epoch-on {self._epoch_spec}: sys.monitoring tool ids {ids} are all taken; "
                f"epochs are time windows of {self.window:g} s instead")
        sys.stderr.write(f"memhound: warning: {note}\n")
        self.notes.append(note)
        self.epoch_on = None
        self.kind = "time"

    def _watch_function(self, name: str, qualname: Optional[str], module: Optional[str]) -> None:
        mon = getattr(sys, "monitoring", None)
        if mon is not None:
            self._watch_with_monitoring(mon, name, qualname, module)
            return
        _core.set_epoch_function(name, qualname, module)
        _core.install_epoch_profile()

        def _install(*_args: object) -> None:
            _core.install_epoch_profile()

        threading.setprofile(_install)

    def _watch_with_monitoring(self, mon, name: str, qualname: Optional[str], module: Optional[str]) -> None:
        tool = self._monitoring_tool
        if tool is None:  # start() claimed one; a caller of _watch_function alone may not have
            if not self._claim_monitoring_tool():
                raise RuntimeError("no free sys.monitoring tool id for --epoch-on")
            tool = self._monitoring_tool
        disable = mon.DISABLE
        self._hits = 0

        def matches(code) -> bool:  # type: ignore[no-untyped-def]
            if code.co_name != name or (qualname is not None and code.co_qualname != qualname):
                return False
            if module is not None:
                frame = sys._getframe(2)
                if frame.f_globals.get("__name__") != module:
                    return False
            return True

        def end_call() -> None:
            try:
                _core.end_unit()
                self._hits += 1
            except RuntimeError:
                pass

        def on_return(code, offset, retval):  # type: ignore[no-untyped-def]
            if not matches(code):
                return disable
            end_call()
            return None

        def on_unwind(code, offset, exc):  # type: ignore[no-untyped-def]
            # PY_UNWIND cannot be disabled per location: no DISABLE here. A
            # generator closed before it finished (GeneratorExit) did not complete.
            if not isinstance(exc, GeneratorExit) and matches(code):
                end_call()
            return None

        mon.register_callback(tool, mon.events.PY_RETURN, on_return)
        mon.register_callback(tool, mon.events.PY_UNWIND, on_unwind)
        # Locations an earlier session (or another user of the id) disabled
        # stay disabled for the id: enable them again.
        mon.restart_events()
        mon.set_events(tool, mon.events.PY_RETURN | mon.events.PY_UNWIND)

    def _unwatch_function(self) -> int:
        mon = getattr(sys, "monitoring", None)
        if self._monitoring_tool is not None and mon is not None:
            self._release_monitoring_tool()
            return self._hits
        threading.setprofile(None)  # type: ignore[arg-type]
        status = _core.epoch_function_status()
        hits = int(_core.clear_epoch_function())
        if status["displaced"] or status["reinstalled"] or not status["installed"]:
            back = " (put back when it let go)" if status["reinstalled"] else ""
            note = (f"--epoch-on {self._epoch_spec}: another profiler (sys.setprofile, cProfile) "
                    f"took memhound's place for part of the run{back}; calls made meanwhile "
                    "closed no epoch")
            sys.stderr.write(f"memhound: warning: {note}\n")
            self.notes.append(note)
        return hits
