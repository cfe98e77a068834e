"""Census: live objects by type, and their growth between two censuses (what
objgraph's ``show_growth`` gives), counting the objects the GC does not track
(str, bytes, int, float...) through the containers that hold them.

The walk is C (``_core.heap_census``): every object reachable through
``tp_traverse`` from the GC-tracked objects. A census is a plain dict of type
names to counts: it holds no reference to any object or type, so keeping one
does not keep anything alive. No ``gc.collect()`` runs unless asked for: a
collection would hide the very cycles a leak hunt is after.
"""
from __future__ import annotations

import gc

from .. import _core

# Imported by the program side at the end of a run: typing for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, List, Optional, Tuple

__all__ = ["census", "census_growth", "DEFAULT_MAX_OBJECTS"]

#: Objects walked at most (tracked and untracked); beyond it census() raises.
DEFAULT_MAX_OBJECTS = 100_000_000


def census(collect: bool = False, max_objects: int = DEFAULT_MAX_OBJECTS) -> Dict[str, int]:
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


def census_growth(before: Dict[str, int], after: Dict[str, int],
                  top: Optional[int] = None) -> List[Tuple[str, int, int]]:
    """Types whose count grew from ``before`` to ``after``, as (type, count
    after, increase), biggest increase first."""
    rows = [(name, n, n - before.get(name, 0)) for name, n in after.items()
            if n - before.get(name, 0) > 0]
    rows.sort(key=lambda r: (-r[2], r[0]))
    return rows[:top] if top is not None else rows

