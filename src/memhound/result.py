"""What a tracking session leaves for the analysis and the reports: the final
snapshot, the timeline and the facts of the run. Built by
:meth:`memhound.session.Session.finish` in the program's process and by
:mod:`memhound.capture` from a capture file."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .snapshot import Snapshot


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
    #: What closed epochs: "time+alloc", "time", "alloc", "calls", "manual" or "none".
    epoch_clock: str = "time"
