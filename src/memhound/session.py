"""A tracking session for ``memhound run``: epochs (time windows that adapt to the
run's length, or the returns of a named function), and a timeline of RSS and
tracked memory, kept by a helper thread whose own allocations are never sampled."""
from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

from . import _core, tracker
from .snapshot import Snapshot

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_rss() -> int:
    """Resident set size of this process in bytes (0 if unknown)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _heap_reader() -> Optional[Callable[[], int]]:
    try:
        libc = ctypes.CDLL(None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    fn.argtypes = []

    def read() -> int:
        mi = fn()
        return int(mi.uordblks + mi.hblkhd)

    return read


#: Bytes in use in the C heap (malloc's own count, glibc mallinfo2), or None.
read_heap = _heap_reader()


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
    timeline: List[Tuple[float, int, float, Optional[int]]]  # (t, rss, tracked, heap)
    epoch_kind: str  # "time", "function" or "manual"
    units_per_epoch: float
    epoch_seconds: float
    function_epochs: int = 0
    peak_rss: int = 0
    final_rss: int = 0
    notes: List[str] = field(default_factory=list)


class Session:
    """Start tracking with epochs and a timeline; :meth:`finish` returns the result.

    ``epoch_on``: a function spec whose every return closes an epoch; otherwise
    epochs are time windows of ``window`` seconds. Whenever ``max_epochs`` is
    reached the core merges epochs pairwise and doubles the units (windows, calls)
    per epoch, so a 2-second run and a 2-hour run both end with between
    max_epochs/2 and max_epochs epochs of equal size.
    """

    def __init__(self, sample_bytes: Optional[int] = None, max_frames: int = tracker.DEFAULT_MAX_FRAMES,
                 *, epoch_on: Optional[str] = None, manual_epochs: bool = False,
                 tick: float = 0.01, window: float = 0.01, max_epochs: int = 128,
                 max_timeline: int = 4096, timeline_every: int = 5):
        self.sample_bytes = sample_bytes
        self.max_frames = max_frames
        self.epoch_on = parse_function_spec(epoch_on) if epoch_on else None
        self.kind = "function" if epoch_on else ("manual" if manual_epochs else "time")
        self.tick = tick
        self.window = window
        self.max_epochs = max_epochs
        self.max_timeline = max_timeline
        #: The timeline (RSS, C heap, tracked) is read every this many ticks.
        self.timeline_every = max(1, timeline_every)
        self.units_per_epoch = 1.0
        self.timeline: List[Tuple[float, int, float, Optional[int]]] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._t0 = 0.0
        self._monitoring_tool: Optional[int] = None
        self.peak_rss = 0

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        tracker.start(self.sample_bytes, self.max_frames)
        _core.set_max_epochs(self.max_epochs)
        self._t0 = time.monotonic()
        if self.epoch_on is not None:
            self._watch_function(*self.epoch_on)
        self._sample_timeline()
        self._thread = threading.Thread(target=self._run, name="memhound-ticker", daemon=True)
        self._thread.start()

    def finish(self) -> SessionResult:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        hits = self._unwatch_function() if self.epoch_on is not None else 0
        self._sample_timeline()
        snap = tracker.snapshot()
        # The retention analysis maps these to objects after tracking stops.
        snap.live_samples = _core.live_samples(None)
        tracker.stop()
        stride = float(snap.totals.get("stride", 1))
        units = stride if self.kind != "time" else 1.0
        return SessionResult(
            snapshot=snap, timeline=list(self.timeline), epoch_kind=self.kind,
            units_per_epoch=units, epoch_seconds=self.window * stride, function_epochs=hits,
            peak_rss=self.peak_rss, final_rss=self.timeline[-1][1] if self.timeline else 0,
        )

    # -- the helper thread ---------------------------------------------------
    def _sample_timeline(self) -> None:
        rss = read_rss()
        self.peak_rss = max(self.peak_rss, rss)
        try:
            tracked = float(_core.totals()["live_bytes"])
        except RuntimeError:
            return
        heap = read_heap() if read_heap is not None else None
        self.timeline.append((time.monotonic() - self._t0, rss, tracked, heap))
        if len(self.timeline) >= self.max_timeline:
            self.timeline = self.timeline[::2]  # downsample as the run grows

    def _run(self) -> None:
        _core.ignore_thread(True)
        next_epoch_at = self._t0 + self.window
        ticks = 0
        while not self._stop.wait(self.tick):
            try:
                ticks += 1
                if ticks % self.timeline_every == 0:
                    self._sample_timeline()
                now = time.monotonic()
                if self.kind == "time" and now >= next_epoch_at:
                    _core.end_unit()
                    next_epoch_at += self.window
                    if next_epoch_at < now:
                        next_epoch_at = now + self.window
            except RuntimeError:  # tracking stopped under us
                return

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
