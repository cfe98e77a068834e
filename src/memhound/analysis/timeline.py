"""Memory over time: the trend line, the normal band, and a downsampler for charts.

Pure functions over (seconds, bytes) points; docs/html.md gives the definitions and
why they were chosen.

- **Warm-up**: the first ``warmup_fraction`` (20 %) of the run's time, as in the
  verdict's RSS diagnosis. Imports, caches that fill once and the first passes of
  the user's loop happen there; neither the trend nor the band looks at it.
- **Trend**: the least-squares line through the points after warm-up. Its slope is
  the growth rate in bytes per second.
- **Normal band**: the range memory lives in when it is not leaking. Each point
  after warm-up has the leak's estimated accumulation taken out,
  ``y - r * (t - t_warm)``, and the band is the 5th to 95th percentile of what
  remains (never below 0). ``r`` is the verdict's rate of the leaking sites in
  bytes per second (0 when nothing leaks), capped at the trend's slope: the leak
  cannot explain more growth than memory shows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

#: (seconds since start, bytes)
Point = Tuple[float, float]

#: A timeline row for :func:`downsample`: (seconds, then any number of values;
#: a value may be None where it was not measured).
Row = Tuple[Optional[float], ...]

WARMUP_FRACTION = 0.2


@dataclass(frozen=True)
class Trend:
    """The least-squares line ``y = intercept + slope * t`` over ``[t_start, t_end]``."""

    slope: float  # bytes per second
    intercept: float  # bytes at t = 0
    t_start: float
    t_end: float
    points: int

    def at(self, t: float) -> float:
        return self.intercept + self.slope * t


@dataclass(frozen=True)
class Band:
    """The normal band: memory between ``low`` and ``high`` (bytes), measured over
    ``[t_start, t_end]`` with ``leak_rate`` bytes per second taken out."""

    low: float
    high: float
    t_start: float
    t_end: float
    leak_rate: float
    points: int


def warmup_end(points: Sequence[Point], warmup_fraction: float = WARMUP_FRACTION) -> float:
    """The time at which warm-up ends: the first ``warmup_fraction`` of the span
    from the first point to the last."""
    if not points:
        return 0.0
    t0, t1 = points[0][0], points[-1][0]
    return t0 + (t1 - t0) * warmup_fraction


def _after_warmup(points: Sequence[Point], warmup_fraction: float) -> Tuple[float, List[Point]]:
    tw = warmup_end(points, warmup_fraction)
    return tw, [(t, y) for t, y in points if t >= tw and math.isfinite(y)]


def trend(points: Sequence[Point], *, warmup_fraction: float = WARMUP_FRACTION) -> Optional[Trend]:
    """The least-squares line through the points after warm-up, or None with fewer
    than two distinct times there."""
    _tw, pts = _after_warmup(points, warmup_fraction)
    n = len(pts)
    if n < 2:
        return None
    mt = sum(t for t, _ in pts) / n
    my = sum(y for _, y in pts) / n
    stt = sum((t - mt) ** 2 for t, _ in pts)
    if stt <= 0:
        return None
    slope = sum((t - mt) * (y - my) for t, y in pts) / stt
    return Trend(slope, my - slope * mt, pts[0][0], pts[-1][0], n)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks
    (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    xs = sorted(values)
    pos = (len(xs) - 1) * min(max(q, 0.0), 100.0) / 100.0
    i = int(math.floor(pos))
    j = min(i + 1, len(xs) - 1)
    return xs[i] + (xs[j] - xs[i]) * (pos - i)


def normal_band(points: Sequence[Point], *, leak_rate: float = 0.0,
                warmup_fraction: float = WARMUP_FRACTION, lower: float = 5.0,
                upper: float = 95.0) -> Optional[Band]:
    """The range memory lives in when it is not leaking: the ``lower``-``upper``
    percentiles (clipped at 0) of the points after warm-up, each less the leak's
    accumulation since warm-up ended. The leak grows at ``leak_rate`` bytes per
    second, capped at the trend's slope. None without points after warm-up."""
    tw, pts = _after_warmup(points, warmup_fraction)
    if not pts:
        return None
    rate = max(leak_rate, 0.0)
    if rate > 0:
        tr = trend(points, warmup_fraction=warmup_fraction)
        rate = min(rate, max(tr.slope, 0.0)) if tr is not None else rate
    rest = [y - rate * (t - tw) for t, y in pts]
    return Band(max(percentile(rest, lower), 0.0), max(percentile(rest, upper), 0.0),
                pts[0][0], pts[-1][0], rate, len(pts))


def downsample(rows: Sequence[Row], max_points: int = 2000) -> List[Row]:
    """At most ``max_points`` rows for a chart, keeping every series' extremes.

    Rows are ``(t, v1, v2, ...)`` in time order. Short inputs come back unchanged.
    Otherwise the rows are cut into ``max_points // 2`` runs of (nearly) equal
    length, and each run becomes two rows, at its first and its last time; each
    series puts its minimum and its maximum over the run in those two rows, in the
    order they occurred. Peaks, troughs and the shape of a sawtooth survive; a
    value that is None in every row of a run stays None."""
    n = len(rows)
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    if n <= max_points:
        return list(rows)
    buckets = max_points // 2
    width = len(rows[0])
    out: List[Row] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        run = rows[lo:hi]
        first: List[Optional[float]] = [run[0][0]]
        last: List[Optional[float]] = [run[-1][0]]
        for k in range(1, width):
            i_min = i_max = -1
            v_min = v_max = 0.0
            for i, r in enumerate(run):
                v = r[k]
                if v is None:
                    continue
                if i_min < 0 or v < v_min:
                    i_min, v_min = i, v
                if i_max < 0 or v > v_max:
                    i_max, v_max = i, v
            if i_min < 0:
                first.append(None)
                last.append(None)
            elif i_min <= i_max:
                first.append(v_min)
                last.append(v_max)
            else:
                first.append(v_max)
                last.append(v_min)
        out.append(tuple(first))
        out.append(tuple(last))
    return out
