"""The leak verdict: which sites keep memory alive epoch after epoch.

For every site (a stack, rolled up to the innermost frame of the user's own code) the
snapshot gives, per epoch e, the estimated bytes allocated (A_e) and freed (F_e), and
the *cohort* C_e: the bytes allocated during epoch e that are still alive now.

Three questions decide a leak, after a warm-up (the first 20 % of epochs, where caches
fill and imports happen):

1. **Cohort survival.** Do allocations made in *old* post-warm-up epochs (older than a
   guard of the most recent 25 % of epochs, where buffers, bounded caches and sawtooth
   teeth may still legitimately hold memory) survive to the end? The leak rate
   estimate is the mean old cohort, r = mean(C_e); its standard error combines the
   spread between epochs and the Horvitz-Thompson sampling variance of each C_e, and
   gives a 95 % interval and a one-sided p-value (normal approximation).
2. **Trend.** Does the site's live memory L_e = sum_{k<=e} (A_k - F_k) grow across the
   post-warm-up epochs? The mean change per epoch must be positive beyond two standard
   errors (computed from the spread of the changes, since L is a running sum). This rejects sites whose old survivors are a fixed set (hot entries
   of a bounded cache, one-off late initialisation).
3. **Sustained growth.** A step is not a leak: memory allocated once and kept
   (an import, first-call initialisation, a cache filled in one go) can pass both
   tests when it comes after warm-up. A leak keeps growing to the end, so the
   survivors allocated in the later half of the post-warm-up epochs must be a
   fair share of all post-warm-up survivors (``late_share``), and the survivors
   of the old epochs must not be bunched: the largest gap between their
   cumulative share and the cumulative share of old epochs (``bunching``, a
   Kolmogorov-Smirnov distance over the surviving samples) must stay below one
   half, or not be significant for that many samples. And the site's live
   memory must still grow over the later half of the post-warm-up epochs: at
   least ``min_late_growth`` (15 %) of its growth after warm-up (a bounded cache
   that fills past the warm-up keeps late survivors, since its newest entries
   replace the oldest, but stops growing).

A site leaks when all three hold, its survivors are spread over several old
epochs, and p < ``alpha``. Stacks that pass through the import system (memory
made while a module's top-level code ran, once per module) belong to no site.
See docs/verdict.md for assumptions and limits.
"""
from __future__ import annotations

import bisect
import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .._format import fmt_bytes as _fmt_bytes
from ..snapshot import Frame, Snapshot, Traceback
from .frames import rule_for

#: (seconds since start, RSS bytes, tracked live bytes, C heap in use or None,
#: memhound's own memory or None); points from before memhound measured its own
#: memory have the first four only.
TimelinePoint = Union[Tuple[float, int, float, Optional[int]],
                      Tuple[float, int, float, Optional[int], Optional[int]]]

#: RSS growing this many times faster than tracked memory is called out in the
#: report (``Verdict.rss_note``), whatever the verdict on Python allocations.
RSS_FAR_ABOVE_TRACKED = 4.0


@dataclass
class SiteVerdict:
    """The verdict on one site."""

    site: Frame
    stack: Traceback
    stack_ids: List[int]
    leaking: bool
    bytes_per_epoch: float
    ci95: Tuple[float, float]
    p_value: float
    bytes_per_second: float
    slope: float
    slope_se: float
    live_bytes: float
    live_count: float
    old_epochs_with_survivors: int
    old_epochs: int
    series: List[float] = field(default_factory=list, repr=False)  # live bytes per epoch
    rank: int = 0
    #: Share of the post-warm-up survivors allocated in the later half of those epochs.
    late_share: float = 1.0
    #: Kolmogorov-Smirnov distance of the old epochs' surviving samples from an even spread.
    bunching: float = 0.0
    #: Of the live memory's growth after warm-up, the share in the later half.
    late_growth: float = 1.0
    #: The cohort and trend tests hold, but the growth is a step (not sustained).
    step: bool = False


@dataclass
class Verdict:
    """The run's verdict: leaking or not, how fast, where, and a summary."""

    leaking: bool
    summary: str
    bytes_per_epoch: float
    bytes_per_second: float
    leaks: List[SiteVerdict]
    suspects: List[SiteVerdict]
    epochs: int
    warmup: int
    guard: int
    epoch_seconds: float
    rss_bytes_per_second: Optional[float] = None
    tracked_bytes_per_second: Optional[float] = None
    diagnosis: str = "leak"  # "leak", "none", "native", "too-short"
    #: With diagnosis "native": True when the C heap (malloc) grows with RSS.
    native_in_heap: bool = False
    #: rss_bytes_per_second is the program's: RSS less memhound's own memory
    #: (its tables, buffers and capture writer), which grows at this rate.
    own_bytes_per_second: Optional[float] = None
    #: RSS as the system reports it, memhound's own memory included.
    raw_rss_bytes_per_second: Optional[float] = None
    #: When the program's RSS keeps growing far faster than tracked memory: a
    #: sentence with both rates, and their ratio (None while tracked is flat).
    rss_note: Optional[str] = None
    rss_to_tracked: Optional[float] = None
    #: What the verdict rests on: epochs after warm-up (old_epochs), samples' worth
    #: of allocation in them (old_samples), samples still alive (surviving_samples); with
    #: diagnosis "too-short", what would be enough (see _evidence).
    evidence: Dict[str, object] = field(default_factory=dict)


def _norm_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _ols(xs: Sequence[float], ys: Sequence[float]) -> Tuple[float, float]:
    """Least-squares slope and its standard error (0, inf when undefined)."""
    n = len(xs)
    if n < 3:
        return 0.0, math.inf
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return 0.0, math.inf
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    rss = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    se = math.sqrt(rss / (n - 2) / sxx) if n > 2 else math.inf
    return b, se


def _bunching(samples: Sequence[float]) -> Tuple[float, float]:
    """How far the surviving samples of consecutive epochs are from an even
    spread over them: the largest gap between their cumulative share and the
    cumulative share of epochs (a Kolmogorov-Smirnov distance, taken at epoch
    boundaries), and the distance that many uniformly spread samples exceed
    with probability 0.001 (the asymptotic critical value sqrt(ln(2/a) / 2N))."""
    total = float(sum(samples))
    m = len(samples)
    if total <= 0 or m == 0:
        return 0.0, math.inf
    acc, dist = 0.0, 0.0
    for i, k in enumerate(samples, 1):
        acc += k
        dist = max(dist, abs(acc / total - i / m))
    return dist, math.sqrt(math.log(2 / 0.001) / (2 * total))


@dataclass
class _Series:
    site: Frame
    stack_ids: List[int]
    live_bytes: float = 0.0
    live_count: float = 0.0
    best_stack: int = 0
    best_live: float = -1.0


_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_IMPORT_TAILS = (os.sep + os.path.join("importlib", "_bootstrap.py"),
                 os.sep + os.path.join("importlib", "_bootstrap_external.py"))


def _made_by_import(frames: Sequence[Tuple[str, int, str]]) -> bool:
    """Whether a stack passes through the import system: its memory was
    allocated while a module's top-level code ran, which happens once per
    module (a step, never sustained growth)."""
    return any(f[0] in _IMPORT_FILES or f[0].endswith(_IMPORT_TAILS) for f in frames)


def _group_sites(snap: Snapshot) -> Tuple[List[_Series], List[int]]:
    """Roll stacks up to sites: (the sites, the group index of each stack id).
    Stacks made by an import belong to no site (group -1)."""
    sites: Dict[Tuple[str, int, str], int] = {}
    series: List[_Series] = []
    groups = [-1] * (len(snap.stack_ids) + 1)
    is_user_file = rule_for(snap).is_user_file
    for stack_id in snap.stack_ids:
        frames = snap.raw_frames(stack_id)
        if _made_by_import(frames):
            continue
        key = next((f for f in frames if is_user_file(f[0])), frames[0] if frames else
                   ("<unknown>", 0, "<unknown>"))
        g = sites.get(key)
        if g is None:
            g = sites[key] = len(series)
            series.append(_Series(Frame(*key), []))
        groups[stack_id] = g
        series[g].stack_ids.append(stack_id)
    for stack_id, (lb, lc, _v, _k) in snap.live_by_stack().items():
        g = groups[stack_id] if 0 < stack_id < len(groups) else -1
        if g < 0:
            continue
        s = series[g]
        s.live_bytes += lb
        s.live_count += lc
        if lb > s.best_live:
            s.best_live, s.best_stack = lb, stack_id
    return series, groups


def _epoch_seconds(snap: Snapshot, first: int) -> float:
    starts = snap.epoch_starts
    if len(starts) > first + 1:
        return max((snap.elapsed - starts[first]) / (len(starts) - first), 1e-9)
    return max(snap.elapsed / max(len(starts), 1), 1e-9)


#: The least evidence a verdict stands on (below it, the run is too short to
#: judge, whatever its number of epochs): epochs after warm-up and before the
#: guard (survivors must be spread over several of them), and samples' worth of
#: allocation in those epochs when some of them survive (with fewer, a leak among the
#: survivors could not reach significance, and "no leak" would be a guess).
#: analyze()'s min_epochs (6, implied by 3 epochs after warm-up) can ask more.
MIN_OLD_EPOCHS = 3
MIN_OLD_SAMPLES = 64


def _in_seconds_too(snap: Snapshot, n: int, warmup: int, guard: int, warmup_fraction: float,
                    guard_fraction: float) -> Tuple[int, int]:
    """Warm-up and guard (fractions of the epochs) widened to at least the epochs
    that lie wholly inside the same fractions of the run's seconds. Epochs close
    on allocation as well as on time, so a burst of allocation (a start-up that
    loads data, a report built at the end) spans many short epochs: it stays in
    the warm-up or the guard, as it would with epochs of time."""
    starts = snap.epoch_starts
    if len(starts) == n and snap.elapsed > 0:
        ends = list(starts[1:]) + [snap.elapsed]
        warmup = max(warmup, bisect.bisect_right(ends, warmup_fraction * snap.elapsed + 1e-9))
        guard = max(guard, n - bisect.bisect_left(starts, (1 - guard_fraction) * snap.elapsed - 1e-9))
    return warmup, guard


def _old_samples(snap: Snapshot, n: int, lo: int, hi: int,
                 rolled: Optional[Tuple[Sequence[float], ...]] = None, groups: int = 1) -> Tuple[int, int]:
    """Samples' worth of allocation during epochs lo..hi-1 (the estimated bytes
    allocated over the sampling rate: the sample points that fell in them), and
    the samples of it still alive, all sites together: from ``rolled`` (a
    rollup over ``groups`` groups) or, without it, from a rollup of its own."""
    if rolled is None:
        rolled = snap.rollup([0] * (len(snap.stack_ids) + 1), 1, n)
        groups = 1
    alloc, _freed, _cohort, _var, cohort_samples = rolled
    allocated = sum(sum(alloc[g * n + lo:g * n + hi]) for g in range(groups))
    surviving = sum(sum(cohort_samples[g * n + lo:g * n + hi]) for g in range(groups))
    return int(allocated / max(snap.sample_bytes, 1)), int(surviving)


def _evidence(snap: Snapshot, n: int, warmup: int, guard: int, units_per_epoch: float,
              epoch_unit: str, counts: Optional[Tuple[int, int]] = None) -> Tuple[Dict[str, object], str]:
    """The evidence a verdict rests on, and when it is too thin, the summary that
    says so and what would be enough: the run's length multiplied by the factor
    that would bring the epochs after warm-up, and the samples' worth of
    allocation in them, up to the minimum, or a sampling rate that many times finer. Few
    samples are too thin only when some of them survive: when nothing allocated
    after warm-up is alive, there is no leak to miss."""
    m = max(0, n - warmup - guard)
    old_samples, surviving = counts if counts is not None else _old_samples(snap, n, warmup, n - guard)
    ev: Dict[str, object] = {"old_epochs": m, "old_samples": old_samples,
                             "surviving_samples": surviving,
                             "min_old_epochs": MIN_OLD_EPOCHS, "min_old_samples": MIN_OLD_SAMPLES}
    short_epochs = m < MIN_OLD_EPOCHS
    short_samples = not short_epochs and old_samples < MIN_OLD_SAMPLES and surviving > 0
    if not (short_epochs or short_samples):
        return ev, ""
    # Warm-up and guard are fractions of the run, so the epochs after warm-up
    # grow in proportion to its length.
    if short_epochs:
        # Uniform epochs need about 2 * MIN_OLD_EPOCHS in all (warm-up and guard
        # take the rest); when a burst fills the warm-up, the run after it must grow.
        factor = max(2.0, 2.0 * MIN_OLD_EPOCHS / max(n, 1))
    else:
        factor = max(1.5, MIN_OLD_SAMPLES / max(old_samples, 1))
    factor = min(math.ceil(factor * 2) / 2, 1000.0)
    more_s = snap.elapsed * (factor - 1)
    ev["enough"] = {"run_length_factor": factor, "more_seconds": more_s}
    if epoch_unit != "epoch" and units_per_epoch > 0:
        ev["enough"]["more_units"] = int(math.ceil(n * units_per_epoch * (factor - 1)))  # type: ignore[index]
        more = f"about {ev['enough']['more_units']} more {epoch_unit}s"  # type: ignore[index]
    else:
        more = f"about {more_s:.2g} s more"
    if short_epochs:
        summary = (f"Not enough epochs to judge: {m} after warm-up ({n} in all, {snap.elapsed:.2g} s), "
                   f"memhound needs {MIN_OLD_EPOCHS}. Run it about {factor:g}× as long ({more}), "
                   "or mark units of work with --epoch-on or memhound.next_epoch().")
        return ev, summary
    finer = ""
    if snap.sample_bytes > 1:
        sb = int(snap.sample_bytes / factor)
        ev["enough"]["sample_bytes"] = max(sb, 1)  # type: ignore[index]
        finer = f", or lower --sample-bytes to about {sb}" if sb > 1 else ", or use --exact"
    summary = (f"Not enough evidence to judge: {old_samples} sample{'s' if old_samples != 1 else ''}' worth "
               f"of allocation after warm-up ({m} epochs, {snap.elapsed:.2g} s), memhound needs "
               f"{MIN_OLD_SAMPLES}. Run it about {factor:g}× as long ({more}){finer}.")
    return ev, summary


def analyze(
    snap: Snapshot,
    *,
    timeline: Sequence[TimelinePoint] = (),
    units_per_epoch: float = 1.0,
    epoch_unit: str = "epoch",
    warmup_fraction: float = 0.2,
    guard_fraction: float = 0.25,
    alpha: float = 0.05,
    min_epochs: int = 6,
    min_late_share: float = 0.1,
    max_bunching: float = 0.5,
    min_late_growth: float = 0.15,
) -> Verdict:
    """Judge a snapshot. ``units_per_epoch`` converts merged epochs back to the
    user's units (iterations, requests); ``epoch_unit`` names them in the summary.
    ``timeline`` (seconds, RSS, tracked bytes) feeds the RSS diagnosis.
    ``min_late_share``, ``max_bunching`` and ``min_late_growth`` are the
    sustained-growth test's thresholds (a step is not a leak)."""
    n = snap.epoch + 1
    warmup = max(1, int(round(warmup_fraction * n)))
    guard = max(2, int(math.ceil(guard_fraction * n)))
    if epoch_unit == "epoch":  # epochs of time and allocation, not the program's own units
        warmup, guard = _in_seconds_too(snap, n, warmup, guard, warmup_fraction, guard_fraction)
    old = list(range(warmup, n - guard))
    epoch_s = _epoch_seconds(snap, warmup) * 1.0
    per_unit = 1.0 / max(units_per_epoch, 1e-12)

    if n < min_epochs or len(old) < MIN_OLD_EPOCHS:
        v = Verdict(False, "", 0.0, 0.0, [], [], n, warmup, guard, epoch_s, diagnosis="too-short")
        v.evidence, v.summary = _evidence(snap, n, warmup, guard, units_per_epoch, epoch_unit)
        if not v.summary:  # only min_epochs was missing
            v.summary = f"Not enough epochs to judge ({n}; at least {min_epochs} were asked for)."
        _diagnose_rss(v, timeline, snap)
        return v

    verdicts: List[SiteVerdict] = []
    series, groups = _group_sites(snap)
    alloc, freed, cohort, cohort_var, cohort_samples = snap.rollup(groups, len(series), n)
    lo, hi = warmup, n - guard
    for g, s in enumerate(series):
        base = g * n
        # Most sites have no survivor from the old epochs: skip them cheaply.
        if sum(cohort_samples[base + lo:base + hi]) <= 0:
            continue
        c_old = cohort[base + lo:base + hi]
        m = len(c_old)
        r = sum(c_old) / m
        survivors = sum(1 for k in cohort_samples[base + lo:base + hi] if k > 0)
        if r <= 0:
            continue
        spread = sum((c - r) ** 2 for c in c_old) / (m - 1) if m > 1 else 0.0
        sampling = sum(cohort_var[base + lo:base + hi]) / (m * m)
        se = math.sqrt(max(spread / m, sampling, 1e-12))
        p = _norm_sf(r / se)
        live, acc = [], 0.0
        for e in range(n):
            acc += alloc[base + e] - freed[base + e]
            live.append(acc)
        # Trend: the mean per-epoch change of live memory after warm-up. Live
        # memory is a running sum, so its changes (not its levels) are what can be
        # treated as independent: a full cache wanders around a constant and its
        # changes average to zero, however long its excursions.
        steps = [live[e] - live[e - 1] for e in range(warmup + 1, n)]
        k = len(steps)
        slope = sum(steps) / k if k else 0.0
        slope_se = (math.sqrt(sum((d - slope) ** 2 for d in steps) / (k - 1) / k)
                    if k > 1 else math.inf)
        need = 3 if m >= 6 else 2
        grows = (p < alpha and survivors >= need and slope > 0
                 and slope - 2 * slope_se > 0)
        # Sustained growth: a leak still grows in the later half of the
        # post-warm-up epochs, and its old survivors are not bunched into a
        # few epochs (a step: an import, a first call, a cache filled once).
        post = sum(cohort[base + warmup:base + n])
        late = sum(cohort[base + (warmup + n) // 2:base + n])
        late_share = late / post if post > 0 else 0.0
        bunching, critical = _bunching(cohort_samples[base + lo:base + hi])
        # A bounded cache that fills past the warm-up keeps late survivors (its
        # newest entries replace the oldest), but its live memory stops growing:
        # a leak's live memory still grows over the later half.
        mid = (warmup + n) // 2
        post_growth = live[n - 1] - live[warmup]
        late_growth = live[n - 1] - live[mid] if post_growth > 0 else 0.0
        late_growth_share = late_growth / post_growth if post_growth > 0 else 0.0
        sustained = (late_share >= min_late_share and late_growth_share >= min_late_growth
                     and not (bunching >= max_bunching and bunching >= critical))
        leaking = grows and sustained
        verdicts.append(SiteVerdict(
            site=s.site, stack=rule_for(snap).program_frames(snap.traceback(s.best_stack or s.stack_ids[0])), stack_ids=s.stack_ids,
            leaking=leaking, bytes_per_epoch=r * per_unit,
            ci95=(max(0.0, (r - 1.96 * se)) * per_unit, (r + 1.96 * se) * per_unit),
            p_value=p, bytes_per_second=r / epoch_s, slope=slope * per_unit,
            slope_se=slope_se * per_unit, live_bytes=s.live_bytes, live_count=s.live_count,
            old_epochs_with_survivors=survivors, old_epochs=m, series=live,
            late_share=late_share, bunching=bunching, late_growth=late_growth_share,
            step=grows and not sustained,
        ))
    verdicts.sort(key=lambda v: (not v.leaking, -v.bytes_per_epoch))
    for i, v in enumerate(verdicts, 1):
        v.rank = i
    leaks = [v for v in verdicts if v.leaking]
    total = sum(v.bytes_per_epoch for v in leaks)
    total_s = sum(v.bytes_per_second for v in leaks)
    verdict = Verdict(bool(leaks), "", total, total_s, leaks, verdicts, n, warmup, guard, epoch_s,
                      diagnosis="leak" if leaks else "none")
    _diagnose_rss(verdict, timeline, snap)
    counts = _old_samples(snap, n, lo, hi, (alloc, freed, cohort, cohort_var, cohort_samples), len(series))
    verdict.evidence, short = _evidence(snap, n, warmup, guard, units_per_epoch, epoch_unit, counts)
    if short and verdict.diagnosis == "none":
        verdict.diagnosis, verdict.summary = "too-short", short
        return verdict
    if leaks:
        top = leaks[0]
        share = top.bytes_per_epoch / total if total > 0 else 1.0
        where = f"{top.site.filename}:{top.site.lineno} in {top.site.function}"
        more = f" and {len(leaks) - 1} more site{'s' if len(leaks) > 2 else ''}" if len(leaks) > 1 else ""
        verdict.summary = (
            f"Leaking about {_fmt_bytes(total)} per {epoch_unit} ({_fmt_bytes(total_s)}/s): "
            f"{share:.0%} of it allocated at {where}{more}, and still alive."
        )
    elif verdict.diagnosis == "native":
        where = ("memory malloc'd outside Python's allocators (a C extension, ctypes) grows with it"
                 if verdict.native_in_heap else
                 "native memory outside the C heap (mmap) or allocator retention")
        verdict.summary = (
            f"No Python-level leak: the tracked heap is flat, but RSS grows at "
            f"{_fmt_bytes(verdict.rss_bytes_per_second or 0)}/s; {where}."
        )
    else:
        verdict.summary = (f"No leak found: no site's memory keeps surviving after warm-up "
                           f"({n} epochs, {snap.elapsed:.1f} s).")
        steps = [v for v in verdicts if v.step]
        if steps:
            top = max(steps, key=lambda v: v.live_bytes)
            verdict.summary += (f" Memory allocated at {top.site.filename}:{top.site.lineno} in "
                                f"{top.site.function} rose after warm-up and then stopped growing: "
                                f"a step, not a leak.")
    return verdict


def _own(p: TimelinePoint) -> float:
    """memhound's own memory at a point (0 where it was not measured)."""
    own = p[4] if len(p) > 4 else None  # type: ignore[misc]
    return float(own) if own is not None else 0.0


def _diagnose_rss(verdict: Verdict, timeline: Sequence[TimelinePoint], snap: Snapshot) -> None:
    """Fill the RSS and tracked-heap rates, and call the run 'native' when no Python
    site leaks, the tracked heap is flat, and RSS keeps growing: a significant
    slope after warm-up *and* new highs late in the run (allocator retention and
    sawtooth workloads reach their high-water mark early and then stay).

    RSS here is the program's: memhound's own memory (its tables, its buffers,
    its capture writer's SQLite heap), measured at each point, is taken out, so
    memhound's growth never reads as the program's. Whatever the verdict, RSS
    that keeps growing far faster than tracked memory gets ``rss_note``."""
    if len(timeline) < 9:
        return
    t0, t_end = timeline[0][0], timeline[-1][0]
    pts = [p for p in timeline if p[0] >= t0 + (t_end - t0) * 0.2]
    if len(pts) < 9:
        return
    ts = [p[0] for p in pts]
    own = [_own(p) for p in pts]
    raw = [float(p[1]) for p in pts]
    rss = [r - o for r, o in zip(raw, own)]
    rss_slope, rss_se = _ols(ts, rss)
    trk_slope, _ = _ols(ts, [float(p[2]) for p in pts])
    verdict.rss_bytes_per_second = rss_slope
    verdict.tracked_bytes_per_second = trk_slope
    verdict.raw_rss_bytes_per_second = _ols(ts, raw)[0]
    verdict.own_bytes_per_second = _ols(ts, own)[0]
    heaps = [p[3] for p in pts if len(p) > 3 and p[3] is not None]
    heap_slope = _ols(ts[:len(heaps)], [float(h) for h in heaps])[0] if len(heaps) == len(pts) else None
    third = len(pts) // 3
    new_highs = max(rss[-third:]) - max(rss[:third])
    span = ts[-1] - ts[0]
    rss_growth = rss_slope * span
    floor = max(4e6, 0.05 * rss[0])
    grows = (rss_slope > 0 and rss_slope - 3 * rss_se > 0 and rss_growth > floor
             and new_highs > floor / 2)
    if (not verdict.leaks and verdict.diagnosis != "too-short" and grows
            and trk_slope * span < 0.25 * rss_growth):
        verdict.diagnosis = "native"
        verdict.native_in_heap = heap_slope is not None and heap_slope > 0.5 * rss_slope
    # The tracked rate RSS is compared with: the leak's estimate when there is one
    # (the summary's rate: a leak of array headers whose buffers are malloc'd),
    # else tracked memory's slope. Without a leak, tracked memory changing by
    # under 1 % of RSS's rate is flat.
    tracked_rate = verdict.bytes_per_second if verdict.leaks else max(trk_slope, 0.0)
    flat = not verdict.leaks and tracked_rate < 0.01 * rss_slope
    if grows and rss_slope > RSS_FAR_ABOVE_TRACKED * max(tracked_rate, trk_slope):
        ratio = rss_slope / tracked_rate if tracked_rate > 0 and not flat else None
        verdict.rss_to_tracked = ratio
        than = (f"{_fmt_ratio(ratio)} the tracked rate ({_fmt_bytes(tracked_rate)}/s)"
                if ratio is not None else "while tracked memory is flat")
        verdict.rss_note = (
            f"RSS grows at {_fmt_bytes(rss_slope)}/s, {than}: most of the growth is memory "
            "allocated outside Python's allocators (C extensions, numpy buffers, ctypes), "
            "which memhound does not track line by line.")


def _fmt_ratio(r: float) -> str:
    """Two significant figures: 3,700×, 45×, 4.2×."""
    return f"{float(f'{r:.2g}'):,.0f}×" if r >= 10 else f"{r:.1f}×"
