"""A tracking session, as the program side of ``memhound run`` starts it in the
program's own process: epochs (time windows that adapt to the run's length, or
the returns of a named function), a timeline of RSS, C heap and tracked memory,
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
    from typing import Any, Callable, Dict, Optional, Tuple

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


# The json module's own C escaper (json itself would import re).
from _json import encode_basestring_ascii as _quote  # noqa: E402



_active: "Optional[Session]" = None
_fork_hook = False


def _after_fork_in_child() -> None:
    """A forked child keeps tracking; its own background thread writes the
    child's rows, under its pid, to the same capture. A session with an
    ``on_fork_child`` handler (memhound run's program side) does its own."""
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

    ``epoch_on``: a function spec whose every return closes an epoch; otherwise
    epochs are time windows of ``window`` seconds. Whenever ``max_epochs`` is
    reached the core merges epochs pairwise and doubles the units (windows, calls)
    per epoch, so a 2-second run and a 2-hour run both end with between
    max_epochs/2 and max_epochs epochs of equal size.
    """

    def __init__(self, sample_bytes: Optional[int] = None, max_frames: int = tracker.DEFAULT_MAX_FRAMES,
                 *, epoch_on: Optional[str] = None, manual_epochs: bool = False,
                 tick: float = 0.01, window: float = 0.01, max_epochs: int = 128,
                 capture: Optional[str] = None, flush_every: float = 1.0,
                 meta: Optional[Dict[str, Any]] = None):
        self.sample_bytes = sample_bytes
        self.max_frames = max_frames
        self.epoch_on = parse_function_spec(epoch_on) if epoch_on else None
        self.kind = "function" if epoch_on else ("manual" if manual_epochs else "time")
        self.tick = tick
        self.window = window
        self.max_epochs = max_epochs
        self.capture = capture
        self.flush_every = flush_every
        self.meta = dict(meta or {})
        self._t0 = 0.0
        self._monitoring_tool: Optional[int] = None
        #: Called in a forked child instead of continuing this session there.
        self.on_fork_child: "Optional[Callable[[], None]]" = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Start tracking. Raises OSError if the capture cannot be written (then
        nothing is left running)."""
        global _active, _fork_hook
        tracker.start(self.sample_bytes, self.max_frames)
        _core.set_max_epochs(self.max_epochs)
        self._t0 = time.monotonic()
        snap_totals = _core.totals()
        meta = {"sample_bytes": snap_totals["sample_bytes"], "max_frames": self.max_frames,
                "epoch_kind": self.kind, "window": self.window, "native": False,
                "python": ".".join(map(str, sys.version_info[:3]))}
        meta.update(self.meta)
        try:
            _core.bg_start(self.tick, self.window if self.kind == "time" else 0.0,
                           self.flush_every, self.capture, to_json(meta), time.time())
        except BaseException:
            tracker.stop()
            raise
        _active = self
        if not _fork_hook and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook = True
        if self.epoch_on is not None:
            self._watch_function(*self.epoch_on)

    def last_point(self) -> Optional[Tuple[float, int, float, Optional[int]]]:
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
            capture=self.capture, capture_error=err,
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
        tool = None
        for candidate in (mon.PROFILER_ID, 4, 3):
            try:
                mon.use_tool_id(candidate, "memhound")
                tool = candidate
                break
            except ValueError:
                continue
        if tool is None:
            raise RuntimeError("no free sys.monitoring tool id for --epoch-on")
        self._monitoring_tool = tool
        disable = mon.DISABLE
        self._hits = 0

        def on_return(code, offset, retval):  # type: ignore[no-untyped-def]
            if code.co_name != name or (qualname is not None and code.co_qualname != qualname):
                return disable
            if module is not None:
                frame = sys._getframe(1)
                if frame.f_globals.get("__name__") != module:
                    return disable
            try:
                _core.end_unit()
                self._hits += 1
            except RuntimeError:
                pass
            return None

        mon.register_callback(tool, mon.events.PY_RETURN, on_return)
        mon.set_events(tool, mon.events.PY_RETURN)

    def _unwatch_function(self) -> int:
        mon = getattr(sys, "monitoring", None)
        if self._monitoring_tool is not None and mon is not None:
            mon.set_events(self._monitoring_tool, 0)
            mon.register_callback(self._monitoring_tool, mon.events.PY_RETURN, None)
            mon.free_tool_id(self._monitoring_tool)
            self._monitoring_tool = None
            return self._hits
        threading.setprofile(None)  # type: ignore[arg-type]
        return int(_core.clear_epoch_function())
