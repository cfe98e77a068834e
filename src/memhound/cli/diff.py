"""``memhound diff A B``: compare two captures site by site (live memory at the
end of each run, rolled up to the user's own lines): what grew, what is new,
what went away. Changes within sampling noise are marked "same"."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Optional

from .. import __version__
from .._format import fmt_bytes
from ._common import check_writable as _check_writable, fail as _fail, positive_int as _positive_int

HELP = "compare two captures site by site: what grew, what is new, what went away"


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="the capture to compare from (before)")
    p.add_argument("b", metavar="B", help="the capture to compare with (after)")
    p.add_argument("--pid-a", type=_positive_int, default=None, help="process of A (default: the first)")
    p.add_argument("--pid-b", type=_positive_int, default=None, help="process of B (default: the first)")
    p.add_argument("--json", metavar="FILE", help="write the comparison as JSON to FILE")
    p.add_argument("--top", type=_positive_int, default=15, metavar="N",
                   help="sites shown (default %(default)s)")
    p.add_argument("--all", action="store_true", help="also show sites that did not change")


def _frame(f: Any) -> Dict[str, Any]:
    return {"file": f.filename, "line": f.lineno, "function": f.function}


def run(args: argparse.Namespace) -> int:
    from ..capture import CaptureError, load

    json_path: Optional[str] = None
    if args.json:
        json_path = os.path.abspath(args.json)
        problem = _check_writable(json_path, "the comparison")
        if problem:
            return _fail(problem)
    try:
        a = load(args.a, args.pid_a)
        b = load(args.b, args.pid_b)
    except CaptureError as e:
        return _fail(str(e))

    from ..analysis.diff import diff

    diffs = diff(a.result.snapshot, b.result.snapshot)
    changed = [d for d in diffs if d.status != "same"]
    shown = (diffs if args.all else changed)[:args.top]
    if json_path:
        doc = {
            "memhound": __version__, "schema": 1,
            "a": _side(a), "b": _side(b),
            "sites": [{"site": _frame(d.site), "stack": [_frame(f) for f in d.stack],
                       "status": d.status, "a_bytes": d.a_bytes, "b_bytes": d.b_bytes,
                       "delta_bytes": d.delta, "se_bytes": d.se,
                       "a_count": int(round(d.a_count)), "b_count": int(round(d.b_count))}
                      for d in diffs],
        }
        from ..reports import json_report

        try:
            json_report.write(json_path, doc)
        except OSError as e:
            return _fail(f"cannot write the comparison to {json_path}: {e.strerror or e}")
    _render(a, b, diffs, changed, shown)
    return 0


def _side(r: Any) -> Dict[str, Any]:
    snap = r.result.snapshot
    return {"capture": os.path.abspath(r.path), "pid": r.process.pid, "argv": r.argv,
            "status": r.process.state, "duration_s": r.duration,
            "tracked_bytes": snap.tracked_bytes, "peak_rss": r.result.peak_rss,
            "sample_bytes": snap.sample_bytes}


def _render(a: Any, b: Any, diffs: List[Any], changed: List[Any], shown: List[Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = sys.stdout
    console = Console(file=out, highlight=False, width=None if out.isatty() else 200)
    sa, sb = a.result.snapshot, b.result.snapshot
    console.print(Text(f"A: {a.path} · pid {a.process.pid} · {a.duration:.1f} s · "
                       f"tracked {fmt_bytes(sa.tracked_bytes)} · peak RSS {fmt_bytes(a.result.peak_rss)}", style="dim"))
    console.print(Text(f"B: {b.path} · pid {b.process.pid} · {b.duration:.1f} s · "
                       f"tracked {fmt_bytes(sb.tracked_bytes)} · peak RSS {fmt_bytes(b.result.peak_rss)}", style="dim"))
    counts = {k: sum(1 for d in changed if d.status == k) for k in ("grew", "new", "shrank", "gone")}
    delta = sb.tracked_bytes - sa.tracked_bytes
    sign = "+" if delta >= 0 else "-"
    console.print(Text(f"Tracked live memory {sign}{fmt_bytes(abs(delta))} from A to B: "
                       f"{counts['grew']} sites grew, {counts['new']} new, {counts['shrank']} shrank, "
                       f"{counts['gone']} went away ({len(diffs) - len(changed)} unchanged within noise).",
                       style="bold"))
    if not shown:
        return
    table = Table(box=None, pad_edge=False)
    for col, just in (("change", "right"), ("A", "right"), ("B", "right"), ("", "left"), ("site", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    style = {"grew": "red", "new": "red", "shrank": "green", "gone": "green", "same": "dim"}
    for d in shown:
        sign = "+" if d.delta >= 0 else "-"
        table.add_row(f"{sign}{fmt_bytes(abs(d.delta))}", fmt_bytes(d.a_bytes), fmt_bytes(d.b_bytes),
                      Text(d.status, style=style[d.status]), str(d.site))
    console.print(table)
