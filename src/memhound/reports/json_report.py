"""The JSON report, schema 1 (see the README's "JSON report" section): a stable
machine-readable format. Fields are only ever added."""
from __future__ import annotations

import json
import os
import platform
from typing import Any, Dict, List, Optional

from ..analysis.verdict import SiteVerdict, Verdict
from ..result import SessionResult
from ..analysis.frames import rule_for
from ..snapshot import Frame

SCHEMA = 1


def _frame(f: Frame) -> Dict[str, Any]:
    fn = f.filename
    if fn and not fn.startswith("<"):
        fn = os.path.abspath(fn)
    return {"file": fn, "line": f.lineno, "function": f.function}


def _leak(v: SiteVerdict) -> Dict[str, Any]:
    return {
        "rank": v.rank,
        "site": _frame(v.site),
        "stack": [_frame(f) for f in v.stack],
        "native_stack": [],
        "bytes_per_epoch": v.bytes_per_epoch,
        "ci95": [v.ci95[0], v.ci95[1]],
        "p_value": v.p_value,
        "bytes_per_second": v.bytes_per_second,
        "live_bytes": v.live_bytes,
        "live_count": int(round(v.live_count)),
        "type": None,
        "retained_by": [],
        "stack_truncated": bool(v.stack.truncated),
        "series": [int(round(b)) for b in v.series],
    }


def _point(p: Any) -> Dict[str, Any]:
    """A timeline point; ``own`` (memhound's own memory, part of ``rss``) is None
    where it was not measured."""
    return {"t": p[0], "rss": p[1], "heap": p[3], "tracked": int(round(p[2])),
            "own": p[4] if len(p) > 4 else None}


def build(result: SessionResult, verdict: Verdict, *, argv: List[str], duration: float,
          exit_status: str, exit_code: Optional[int], version: str, pid: Optional[int] = None,
          python: Optional[str] = None) -> Dict[str, Any]:
    """The report as a dict. ``exit_status`` is "completed", "exited", "raised",
    "interrupted", or for a capture "stopped", "running" (still being written) or
    "killed" (ended without closing the capture); anything but "completed" (or
    "exited" with code 0) marks the report as covering a run that ended early.
    ``pid`` and ``python`` default to this process's."""
    snap = result.snapshot
    return {
        "memhound": version,
        "schema": SCHEMA,
        "argv": list(argv),
        "python": python or platform.python_version(),
        "pid": pid if pid is not None else os.getpid(),
        "duration_s": duration,
        "mode": {"sample_bytes": snap.sample_bytes, "native": False},
        "epochs": {"kind": result.epoch_kind, "count": verdict.epochs,
                   "units_per_epoch": result.units_per_epoch,
                   "seconds_per_epoch": verdict.epoch_seconds,
                   "warmup": verdict.warmup, "clock": result.epoch_clock},
        "memory": {
            "peak_rss": result.peak_rss,
            "final_rss": result.final_rss,
            "peak_tracked": snap.peak_bytes,
            "final_tracked": snap.tracked_bytes,
        },
        "verdict": {
            "leaking": verdict.leaking,
            "bytes_per_epoch": verdict.bytes_per_epoch,
            "bytes_per_second": verdict.bytes_per_second,
            "summary": verdict.summary,
            "diagnosis": verdict.diagnosis,
            "rss_bytes_per_second": verdict.rss_bytes_per_second,
            "tracked_bytes_per_second": verdict.tracked_bytes_per_second,
            "raw_rss_bytes_per_second": verdict.raw_rss_bytes_per_second,
            "own_bytes_per_second": verdict.own_bytes_per_second,
            "rss_to_tracked": verdict.rss_to_tracked,
            "rss_note": verdict.rss_note,
            "evidence": verdict.evidence,
        },
        "leaks": [_leak(v) for v in verdict.leaks],
        "timeline": [_point(p) for p in result.timeline],
        "capture": result.capture,
        # The folders of the interpreter that ran the program: which frames are
        # the program's own (see analysis/frames.py).
        "prefixes": rule_for(snap).prefixes,
        "program": {"status": exit_status, "exit_code": exit_code,
                    "complete": exit_status == "completed" or (exit_status == "exited"
                                                               and exit_code == 0)},
    }


def write(path: str, report: Dict[str, Any]) -> None:
    """Write the report atomically (a temporary file renamed into place)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# -- who holds it --------------------------------------------------------------

def add_retention(report: Dict[str, Any], verdict: Verdict, retention: Any,
                  census: Optional[Dict[str, Any]]) -> None:
    """Fill ``leaks[].type`` and ``leaks[].retained_by`` from the retention
    analysis (analysis/retention.py), and add ``leaks[].retention`` (the chain
    with each holder's retained bytes, the objects matched) and ``census`` (the
    types whose live count grew during the run). Additive: schema 1."""
    if retention is not None:
        by_site = {id(r.site): r for r in retention.sites}
        for leak, v in zip(report["leaks"], verdict.leaks):
            r = by_site.get(id(v.site))
            if r is None:
                continue
            leak["type"] = r.type
            leak["retained_by"] = r.retained_by
            leak["retention"] = r.to_json()
        report["retention"] = retention.to_json()
    if census is not None:
        report["census"] = {"objects_start": census["start"], "objects_end": census["end"],
                            "growth": [{"type": t, "count": n, "delta": d}
                                       for t, n, d in census["growth"]]}

