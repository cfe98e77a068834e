"""Comparing two runs site by site: what grew, what is new, what went away.

Live memory is rolled up to sites as the verdict does (the innermost frame of the
user's own code). A change counts only when it exceeds twice its standard error
(the two runs' sampling variances added); smaller ones are reported as "same"."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

from ..snapshot import Frame, Snapshot, Traceback
from .sites import program_frames, site_of


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


def _by_site(snap: Snapshot) -> Dict[Frame, List[float]]:
    """site -> [live bytes, live count, variance of bytes, biggest stack's bytes, stack id]."""
    out: Dict[Frame, List[float]] = {}
    for stack_id, (b, n, v, _k) in snap.live_by_stack().items():
        tb = program_frames(snap.traceback(stack_id))
        site = site_of(tb)
        acc = out.setdefault(site, [0.0, 0.0, 0.0, -1.0, 0])
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
    for site in sa.keys() | sb.keys():
        va = sa.get(site, [0.0, 0.0, 0.0, -1.0, 0])
        vb = sb.get(site, [0.0, 0.0, 0.0, -1.0, 0])
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
        out.append(SiteDiff(site, program_frames(snap.traceback(sid)), va[0], vb[0], va[1], vb[1],
                            se, status))
    out.sort(key=lambda d: (-abs(d.delta), d.site))
    return out


def totals(diffs: List[SiteDiff]) -> Tuple[float, float]:
    """Live bytes of run A and of run B over all sites."""
    return sum(d.a_bytes for d in diffs), sum(d.b_bytes for d in diffs)
