"""memhound: find memory leaks in Python programs.

Tracking::

    import memhound
    memhound.start()                 # sampled; memhound.start(sample_bytes=1) is exact
    for item in work:
        with memhound.epoch():       # one unit of work per epoch
            process(item)
    snap = memhound.snapshot()
    for stat in snap.statistics("lineno")[:10]:
        print(stat)
    memhound.stop()
"""
from .snapshot import Frame, KEY_TYPES, SiteEpoch, Snapshot, Statistic, StatisticDiff, Traceback
from .tracker import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_SAMPLE_BYTES,
    Tracker,
    epoch,
    is_tracking,
    next_epoch,
    snapshot,
    start,
    stop,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_SAMPLE_BYTES",
    "Frame",
    "KEY_TYPES",
    "SiteEpoch",
    "Snapshot",
    "Statistic",
    "StatisticDiff",
    "Traceback",
    "Tracker",
    "epoch",
    "is_tracking",
    "next_epoch",
    "snapshot",
    "start",
    "stop",
    "__version__",
]
