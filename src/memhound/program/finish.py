"""The end of a tracked process, run by its last atexit handler: after the
program's own atexit handlers and threading's shutdown, while its objects are
still alive.

1. The census of live objects by type, before memhound imports anything more
   (so that memhound's own modules are never counted as the program's).
2. The last flush of the tables and how the process ended (Session.finish).
3. The verdict on the final tables, to know which sites leak, and the retention
   analysis of those sites (who holds them), with the census growth, added to
   the capture as notes. The launcher's report reads them from there.
Tracking has stopped before step 3 imports the analysis."""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Dict, Optional

    from ..session import Session


def finish(session: "Session", status: str, code: int, duration: float,
           settings: "Optional[Dict[str, object]]",
           census_start: "Optional[Dict[str, int]]") -> None:
    retention_on = bool(settings and settings.get("retention"))
    census_end = None
    if retention_on and census_start is not None:
        from .startup import _census

        census_end = _census()
    result = session.finish(status, code, duration)
    if not retention_on or result.capture is None:
        return
    from . import startup

    # This interpreter's folders as the start found them (sysconfig may be the
    # program's own module by now): which frames are the program's.
    result.snapshot.prefixes = startup.folders
    from ..analysis.census import census_growth
    from ..analysis.retention import analyze_retention
    from ..analysis.verdict import analyze
    from ..capture import write_notes

    unit = "epoch" if result.epoch_kind == "time" else "call"
    verdict = analyze(result.snapshot, timeline=result.timeline,
                      units_per_epoch=result.units_per_epoch, epoch_unit=unit)
    notes: "Dict[str, object]" = {}
    if census_start is not None and census_end is not None:
        notes["census"] = {"start": sum(census_start.values()), "end": sum(census_end.values()),
                           "growth": census_growth(census_start, census_end, top=10)}
    top = int(settings.get("top", 5)) if settings else 5
    leaks = verdict.leaks[:top]
    if leaks and result.snapshot.live_samples is not None:
        main = sys.modules.get("__main__")
        program_globals = getattr(main, "__dict__", None)
        retention = analyze_retention([(v.site, v.stack_ids) for v in leaks],
                                      result.snapshot.live_samples,
                                      program_globals=program_globals)
        notes["retention"] = retention.dump()
    if notes and os.path.exists(result.capture):  # gone: the run's report was made without us
        problem = write_notes(result.capture, os.getpid(), notes)
        if problem and os.path.exists(result.capture):
            raise OSError(f"cannot add the retention analysis to the capture: {problem}")
