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

# Imported by the program side at the end of a run: typing for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, List, Optional, Tuple

__all__ = ["census", "census_growth", "DEFAULT_MAX_OBJECTS"]

# census() lives with the program side, which takes a census before the
# program's first line and at its end without importing the analysis.
from ..program.census import DEFAULT_MAX_OBJECTS, census  # noqa: E402


def census_growth(before: Dict[str, int], after: Dict[str, int],
                  top: Optional[int] = None) -> List[Tuple[str, int, int]]:
    """Types whose count grew from ``before`` to ``after``, as (type, count
    after, increase), biggest increase first."""
    rows = [(name, n, n - before.get(name, 0)) for name, n in after.items()
            if n - before.get(name, 0) > 0]
    rows.sort(key=lambda r: (-r[2], r[0]))
    return rows[:top] if top is not None else rows

