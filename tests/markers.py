"""Helpers shared by the test modules: marked lines and what was allocated at
them. (Imported as ``markers``: tests/ is on sys.path, where conftest.py is.)"""
from __future__ import annotations

import linecache
import sys
from typing import List

import memhound


def marker_line(path: str, marker: str) -> int:
    """The line number of the only line of ``path`` ending in ``# <marker>``."""
    linecache.checkcache(path)
    hits = [i for i, text in enumerate(linecache.getlines(path), start=1)
            if text.rstrip().endswith("# " + marker)]
    if len(hits) != 1:
        raise LookupError(f"marker {marker!r} found {len(hits)} times in {path}")
    return hits[0]


def allocation_stats(snap: memhound.Snapshot, filename: str, lineno: int) -> List[memhound.Statistic]:
    """Statistics (by whole traceback) whose innermost frame is filename:lineno."""
    return [st for st in snap.statistics("traceback")
            if st.traceback and st.traceback[0].filename == filename
            and st.traceback[0].lineno == lineno]


def expected_name(qualname: str) -> str:
    """The function name memhound reports for code with this qualified name:
    the qualified name from 3.11 (co_qualname), the last part of it on 3.10."""
    return qualname if sys.version_info >= (3, 11) else qualname.rsplit(".", 1)[-1]
