"""A tracking session for ``memhound run``: epochs (time windows that adapt to the
run's length, or the returns of a named function), a timeline of RSS, C heap and
tracked memory, and the capture file. The timeline, the time windows and the
capture are kept by the core's background thread (C, no GIL); this module only
starts and stops it."""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from . import _core, tracker
from .snapshot import Snapshot

def parse_function_spec(spec: str) -> Tuple[str, Optional[str], Optional[str]]:
    """``name``, ``qualname`` or ``module:qualname`` -> (name, qualname, module)."""
    module: Optional[str] = None
    if ":" in spec:
        module, _, spec = spec.partition(":")
        module = module or None
    if not spec or not all(part.isidentifier() or part == "<locals>" for part in spec.split(".")):
        raise ValueError(f"not a function name: {spec!r}")
    name = spec.rsplit(".", 1)[-1]
    qualname = spec if "." in spec else None
    return name, qualname, module


@dataclass
class SessionResult:
    snapshot: Snapshot
    timeline: List[Tuple[float, int, float, Optional[int], Optional[int]]]  # (t, rss, tracked, heap, own)
    epoch_kind: str  # "time", "function" or "manual"
    units_per_epoch: float
    epoch_seconds: float
    function_epochs: int = 0
    peak_rss: int = 0
    final_rss: int = 0
    notes: List[str] = field(default_factory=list)
    #: The capture file, and the error that stopped it from being written, if any.
    capture: Optional[str] = None
    capture_error: Optional[str] = None


_active: Optional["Session"] = None
_fork_hook = False


def _after_fork_in_child() -> None:
    """A forked child keeps tracking; its own background thread writes the
    child's rows, under its pid, to the same capture."""
    if _active is None or not _core.is_tracking():
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
                           self.flush_every, self.capture, json.dumps(meta), time.time())
        except BaseException:
            tracker.stop()
            raise
        _active = self
        if not _fork_hook and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook = True
        if self.epoch_on is not None:
            self._watch_function(*self.epoch_on)

    def last_point(self) -> Optional[Tuple[float, int, float, Optional[int], Optional[int]]]:
        """The newest timeline point, or None."""
        return _core.timeline_last()

    def finish(self, status: str = "completed", exit_code: int = 0,
               duration: Optional[float] = None) -> SessionResult:
        """Stop tracking; record in the capture how the program ended."""
        global _active
        _core.ignore_thread(True)  # memhound's own work from here on is not the program's
        hits = self._unwatch_function() if self.epoch_on is not None else 0
        totals = _core.totals()
        stride = float(totals.get("stride", 1))
        units = stride if self.kind != "time" else 1.0
        end = {"function_epochs": hits, "units_per_epoch": units,
               "epoch_seconds": self.window * stride,
               "duration": duration if duration is not None else time.monotonic() - self._t0}
        err = _core.bg_stop(status, exit_code, json.dumps(end))
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
