"""The census: live objects by type, counting the objects the GC does not
track (str, bytes, int, float...) through the containers that hold them. The
walk is C (``_core.heap_census``). A census is a plain dict of type names to
counts: it holds no reference to any object or type. No ``gc.collect()`` runs
unless asked for: a collection would hide the very cycles a leak hunt is after.

Here, with the program side, so that a census is taken before the program's
first line and at its end without importing anything more
(memhound.analysis.census compares two)."""
from __future__ import annotations

import gc

from .. import _core

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict

#: Objects walked at most (tracked and untracked); beyond it census() raises.
DEFAULT_MAX_OBJECTS = 100_000_000


def census(collect: bool = False, max_objects: int = DEFAULT_MAX_OBJECTS) -> "Dict[str, int]":
    """Live objects by type name (``module.Qualname`` for classes, the built-in
    name otherwise), most numerous first. ``collect=True`` runs ``gc.collect()``
    first. Raises OverflowError beyond ``max_objects`` objects."""
    if collect:
        gc.collect()
    _core.ignore_thread(True)  # memhound's own work is never sampled
    try:
        objs = gc.get_objects()
        rows = _core.heap_census(objs, max_objects)
        del objs
    finally:
        _core.ignore_thread(False)
    counts: "Dict[str, int]" = {}
    for name, n in rows:
        counts[name] = counts.get(name, 0) + n
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
