"""Comparing two runs site by site: what grew, what is new, what went away.

Live memory is rolled up to sites as the verdict does (the innermost frame of the
user's own code). A change counts only when it exceeds twice its standard error
(the two runs' sampling variances added); smaller ones are reported as "same"."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from ..snapshot import Frame, Snapshot, Traceback
from .frames import rule_for


@dataclass
class SiteDiff:
    site: Frame
    stack: Traceback
    a_bytes: float
    b_bytes: float
    a_count: float
    b_count: float
    se: float  # standard error of b_bytes - a_bytes
    status: str  # "new", "gone", "grew", "shrank" or "same"

    @property
    def delta(self) -> float:
        return self.b_bytes - self.a_bytes


def _by_site(snap: Snapshot) -> Dict[Tuple[str, int], List[Any]]:
    """(file, line) -> [live bytes, live count, variance of bytes, biggest
    stack's bytes, its stack id, the site's Frame]. Sites are matched by file
    and line: function names differ between interpreters (3.10 has no
    qualified names), lines do not."""
    out: Dict[Tuple[str, int], List[Any]] = {}
    rule = rule_for(snap)
    for stack_id, (b, n, v, _k) in snap.live_by_stack().items():
        tb = rule.program_frames(snap.traceback(stack_id))
        site = rule.site_of(tb)
        acc = out.setdefault((site.filename, site.lineno), [0.0, 0.0, 0.0, -1.0, 0, site])
        acc[0] += b
        acc[1] += n
        acc[2] += v
        if b > acc[3]:
            acc[3], acc[4] = b, stack_id
    return out


def diff(a: Snapshot, b: Snapshot) -> List[SiteDiff]:
    """The sites of both runs, the biggest absolute change first."""
    sa, sb = _by_site(a), _by_site(b)
    out = []
    none = [0.0, 0.0, 0.0, -1.0, 0, None]
    for key in sa.keys() | sb.keys():
        va = sa.get(key, none)
        vb = sb.get(key, none)
        site = (vb if vb[5] is not None else va)[5]
        se = math.sqrt(va[2] + vb[2])
        delta = vb[0] - va[0]
        significant = abs(delta) > 2.0 * se and abs(delta) >= 0.5
        if not significant:
            status = "same"
        elif va[0] <= 0.0:
            status = "new"
        elif vb[0] <= 0.0:
            status = "gone"
        else:
            status = "grew" if delta > 0 else "shrank"
        snap, sid = (b, int(vb[4])) if vb[3] >= 0 else (a, int(va[4]))
        out.append(SiteDiff(site, rule_for(snap).program_frames(snap.traceback(sid)), va[0], vb[0],
                            va[1], vb[1],
                            se, status))
    out.sort(key=lambda d: (-abs(d.delta), d.site))
    return out


def totals(diffs: List[SiteDiff]) -> Tuple[float, float]:
    """Live bytes of run A and of run B over all sites."""
    return sum(d.a_bytes for d in diffs), sum(d.b_bytes for d in diffs)
