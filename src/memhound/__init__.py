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


# The analysis modules are imported on first use: memhound is meant to be left
# on, and importing them costs the program memory.
def census(collect=False):  # type: ignore[no-untyped-def]
    """Live objects by type name, including types the GC does not track (see
    memhound.analysis.census). No gc.collect() unless ``collect=True``."""
    from .analysis.census import census as _census

    return _census(collect)


def census_growth(before, after, top=None):  # type: ignore[no-untyped-def]
    """(type, count, increase) for the types that grew from ``before`` to ``after``."""
    from .analysis.census import census_growth as _growth

    return _growth(before, after, top)


def retention(site, *, program_globals=None):  # type: ignore[no-untyped-def]
    """Who holds the live memory allocated at ``site`` (a Frame, a (filename,
    lineno) pair or a SiteVerdict): ``snapshot().retention(site)``. Tracking
    must be on."""
    return snapshot().retention(site, program_globals=program_globals)


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
    "census",
    "census_growth",
    "retention",
]
