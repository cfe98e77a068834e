"""Unit tests of the leak verdict (memhound.analysis.analyze) over snapshots
built by hand, so every number is known: flat memory, linear growth, a
sawtooth, a bounded cache with hot entries, a leak every tenth epoch, too few
epochs, and RSS growth under a flat Python heap (the timeline argument)."""
from __future__ import annotations

import math
import os
import sysconfig
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

from memhound import Frame, Snapshot
from memhound.analysis import analyze

APP = os.path.join(os.sep, "srv", "app", "job.py")  # a made-up program of the user's
LIB = os.path.join(sysconfig.get_paths()["stdlib"], "json", "decoder.py")

EPOCH_SECONDS = 0.02


class Site:
    """One stack's history, epoch by epoch: bytes allocated and freed during each
    epoch, and the cohort (bytes allocated during the epoch and alive at the end).
    ``var`` is the sampling variance of each cohort (0 in exact mode)."""

    def __init__(self, frames: Sequence[Tuple[str, int, str]], alloc: Sequence[float],
                 freed: Sequence[float], cohort: Sequence[float], var: Optional[Sequence[float]] = None):
        assert len(alloc) == len(freed) == len(cohort)
        self.frames = list(frames)
        self.alloc, self.freed, self.cohort = list(alloc), list(freed), list(cohort)
        self.var = list(var) if var is not None else [0.0] * len(alloc)


def make_snapshot(sites: Sequence[Site], *, epochs: Optional[int] = None, sample_bytes: int = 1,
                  stride: int = 1) -> Snapshot:
    """A Snapshot as memhound.snapshot() would build it from the core's raw tuple:
    (totals, site rows, cohort rows, stacks, epoch starts)."""
    n = epochs if epochs is not None else len(sites[0].alloc)
    stacks: List[Optional[tuple]] = [None]
    site_rows, cohort_rows = [], []
    live_bytes = live_count = 0.0
    for s in sites:
        stack_id = len(stacks)
        stacks.append((tuple(s.frames), False))
        for e in range(len(s.alloc)):
            a, f, c = s.alloc[e], s.freed[e], s.cohort[e]
            if a or f:
                # (stack, epoch, alloc_b, alloc_n, free_b, free_n, alloc_samples, free_samples)
                site_rows.append((stack_id, e, float(a), a / 100, float(f), f / 100,
                                  max(1, int(a // 100)), int(f // 100)))
            if c:
                # (stack, epoch, bytes, count, var_bytes, var_count, samples, 0)
                cohort_rows.append((stack_id, e, float(c), c / 100, float(s.var[e]), 0.0,
                                    max(1, int(c // 100)), 0))
                live_bytes += c
                live_count += c / 100
    totals: Dict[str, object] = {
        "live_bytes": live_bytes, "live_count": live_count, "peak_bytes": live_bytes,
        "samples": len(site_rows), "frees": 0, "dropped": 0, "unpinned": 0, "epoch": n - 1,
        "sample_bytes": sample_bytes, "max_frames": 128, "live_entries": len(cohort_rows),
        "stacks": len(stacks) - 1, "merges": 0, "stride": stride, "elapsed": n * EPOCH_SECONDS,
    }
    starts = [e * EPOCH_SECONDS for e in range(n)]
    return Snapshot((totals, site_rows, cohort_rows, stacks, starts))


def churn(n: int, size: float = 50_000.0, line: int = 40) -> Site:
    """A site that allocates ``size`` bytes every epoch and frees them within it."""
    return Site([(APP, line, "transform"), (APP, 90, "main")], [size] * n, [size] * n, [0.0] * n)


def leak(n: int, rate: float, line: int = 12, every: int = 1) -> Site:
    """A site that keeps ``rate`` bytes on every ``every``-th epoch."""
    kept = [rate if e % every == 0 else 0.0 for e in range(n)]
    return Site([(APP, line, "load_orders"), (APP, 88, "main")], kept, [0.0] * n, kept)


def flat_timeline(n_points: int = 100, rss: int = 30_000_000, tracked: float = 2e6,
                  heap: Optional[int] = 5_000_000):
    return [(i * 0.02, rss + (i % 3) * 4096, tracked + (i % 2) * 1000, heap) for i in range(n_points)]


# --------------------------------------------------------------------------


def test_flat_memory_is_not_a_leak():
    n = 50
    v = analyze(make_snapshot([churn(n), churn(n, 8000.0, line=41)]))
    assert v.leaking is False
    assert v.leaks == []
    assert v.diagnosis == "none"
    assert v.bytes_per_epoch == 0
    assert v.epochs == n
    assert v.summary.startswith("No leak found")


def test_linear_growth_is_a_leak_at_its_site_with_the_exact_rate():
    n = 50
    v = analyze(make_snapshot([churn(n), leak(n, 8000.0)]))
    assert v.leaking is True
    assert v.diagnosis == "leak"
    assert len(v.leaks) == 1
    top = v.leaks[0]
    assert top.rank == 1
    assert top.site == Frame(APP, 12, "load_orders")
    assert [f.lineno for f in top.stack] == [12, 88]
    assert top.bytes_per_epoch == pytest.approx(8000.0)
    assert top.ci95[0] <= top.bytes_per_epoch <= top.ci95[1]
    assert top.ci95[1] - top.ci95[0] < 1.0  # exact mode, no spread between epochs
    assert top.p_value < 1e-9
    assert top.slope == pytest.approx(8000.0)
    assert top.live_bytes == pytest.approx(8000.0 * n)
    assert top.bytes_per_second == pytest.approx(8000.0 / EPOCH_SECONDS, rel=0.05)
    assert v.bytes_per_epoch == pytest.approx(8000.0)
    assert "job.py:12" in v.summary and "load_orders" in v.summary


def test_noisy_linear_growth_has_its_mean_inside_the_interval():
    n = 60
    kept = [6000.0 + 2500.0 * math.sin(1.7 * e) for e in range(n)]
    s = Site([(APP, 30, "ingest")], kept, [0.0] * n, kept)
    v = analyze(make_snapshot([s]))
    assert v.leaking is True
    top = v.leaks[0]
    old = range(v.warmup, n - v.guard)
    mean = sum(kept[e] for e in old) / len(old)
    assert top.bytes_per_epoch == pytest.approx(mean)
    assert top.ci95[0] < mean < top.ci95[1]
    assert top.ci95[1] - top.ci95[0] > 100  # the spread between epochs shows
    assert top.p_value < 1e-6


def test_rates_are_per_unit_when_epochs_hold_several_calls():
    n = 64
    v = analyze(make_snapshot([leak(n, 8000.0)], stride=4), units_per_epoch=4.0, epoch_unit="call")
    assert v.leaking is True
    assert v.leaks[0].bytes_per_epoch == pytest.approx(2000.0)
    assert v.bytes_per_epoch == pytest.approx(2000.0)
    assert "per call" in v.summary


def test_leaks_are_ranked_by_rate():
    n = 50
    small, big = leak(n, 1000.0, line=12), leak(n, 9000.0, line=20)
    v = analyze(make_snapshot([small, churn(n), big]))
    assert [(l.rank, l.site.lineno) for l in v.leaks] == [(1, 20), (2, 12)]
    assert v.bytes_per_epoch == pytest.approx(10_000.0)
    assert "and 1 more site" in v.summary


def test_sawtooth_is_not_a_leak():
    # A buffer gains 3000 bytes per epoch and is cleared every 5 epochs; what is
    # alive at the end is the current tooth only.
    n, period, size = 60, 5, 3000.0
    alloc = [size] * n
    freed = [size * period if e % period == period - 1 else 0.0 for e in range(n)]
    last_clear = max(e for e in range(n) if e % period == period - 1)
    cohort = [size if e > last_clear else 0.0 for e in range(n)]
    v = analyze(make_snapshot([Site([(APP, 55, "buffer")], alloc, freed, cohort)]))
    assert v.leaking is False
    assert v.leaks == []
    assert v.diagnosis == "none"


def test_bounded_cache_with_hot_old_entries_is_not_a_leak():
    # Entries added after warm-up survive (hot keys re-inserted after eviction),
    # so old cohorts are non-zero; but each insertion evicts an entry of the
    # same size: live memory does not grow.
    n = 60
    cohort = [4000.0 if e < 5 else (1000.0 if e % 4 == 0 else 0.0) for e in range(n)]
    alloc = [4000.0 if e < 5 else 1000.0 for e in range(n)]
    freed = [0.0 if e < 5 else 1000.0 for e in range(n)]
    v = analyze(make_snapshot([Site([(APP, 70, "lookup")], alloc, freed, cohort)]))
    suspects = {s.site.lineno: s for s in v.suspects}
    # The cohort test alone would fire...
    assert suspects[70].old_epochs_with_survivors >= 3
    assert suspects[70].p_value < 0.05
    # ...but the trend test does not.
    assert suspects[70].slope == pytest.approx(0.0, abs=1e-6)
    assert suspects[70].leaking is False
    assert v.leaking is False
    assert v.leaks == []


def test_leak_every_tenth_epoch_is_a_leak():
    n = 100
    v = analyze(make_snapshot([churn(n), leak(n, 20_000.0, every=10)]))
    assert v.leaking is True
    top = v.leaks[0]
    assert top.site.lineno == 12
    assert top.bytes_per_epoch == pytest.approx(2000.0, rel=0.35)
    assert top.ci95[0] <= top.bytes_per_epoch <= top.ci95[1]
    assert top.p_value < 0.05


def test_one_off_allocation_is_not_a_leak():
    n = 50
    kept = [0.0] * n
    kept[20] = 5_000_000.0  # one big table built once, after warm-up
    v = analyze(make_snapshot([churn(n), Site([(APP, 99, "build_index")], kept, [0.0] * n, kept)]))
    assert v.leaking is False


def test_site_rolls_up_to_the_innermost_user_frame():
    n = 50
    kept = [5000.0] * n
    s = Site([(LIB, 353, "raw_decode"), (LIB, 337, "decode"), (APP, 25, "load"), (APP, 80, "main")],
             kept, [0.0] * n, kept)
    v = analyze(make_snapshot([s]))
    assert v.leaking is True
    top = v.leaks[0]
    assert top.site == Frame(APP, 25, "load")
    assert top.stack[0] == Frame(LIB, 353, "raw_decode")  # the whole stack, innermost first
    assert len(top.stack) == 4


def test_stacks_with_the_same_user_site_are_one_site():
    n = 50
    a = Site([(LIB, 353, "raw_decode"), (APP, 25, "load")], [3000.0] * n, [0.0] * n, [3000.0] * n)
    b = Site([(APP, 25, "load")], [1000.0] * n, [0.0] * n, [1000.0] * n)
    v = analyze(make_snapshot([a, b]))
    assert len(v.leaks) == 1
    assert v.leaks[0].site == Frame(APP, 25, "load")
    assert v.leaks[0].bytes_per_epoch == pytest.approx(4000.0)
    assert sorted(v.leaks[0].stack_ids) == [1, 2]


def test_sampling_variance_widens_the_interval():
    n = 50
    kept = [8000.0] * n
    exact = analyze(make_snapshot([Site([(APP, 12, "f")], kept, [0.0] * n, kept)]))
    sampled = analyze(make_snapshot([Site([(APP, 12, "f")], kept, [0.0] * n, kept, var=[4e6] * n)],
                                    sample_bytes=4096))
    e, s = exact.leaks[0], sampled.leaks[0]
    assert s.bytes_per_epoch == pytest.approx(e.bytes_per_epoch)
    assert (s.ci95[1] - s.ci95[0]) > (e.ci95[1] - e.ci95[0]) + 100
    assert s.p_value > e.p_value


def test_survivors_in_a_single_old_epoch_are_not_a_leak():
    # Enough bytes for a tiny p-value, but all from one epoch: not a pattern.
    n = 50
    kept = [0.0] * n
    kept[25] = 1e6
    alloc = [1000.0] * n
    alloc[25] += 1e6
    freed = [1000.0] * n
    v = analyze(make_snapshot([Site([(APP, 61, "once")], alloc, freed, kept)]))
    assert v.leaking is False


@pytest.mark.parametrize("n", [1, 3, 5])
def test_too_few_epochs_is_too_short_not_a_guess(n):
    v = analyze(make_snapshot([leak(n, 1e6)]))
    assert v.leaking is False
    assert v.leaks == []
    assert v.diagnosis == "too-short"
    assert v.epochs == n
    assert "Not enough epochs" in v.summary


def test_enough_epochs_are_judged():
    v = analyze(make_snapshot([leak(12, 50_000.0)]))
    assert v.diagnosis == "leak"
    assert v.leaking is True


# --------------------------------------------------------------------------
# RSS diagnosis (the timeline argument)


def _rss_growth_timeline(n_points: int = 150, rate: float = 20e6, heap_grows: bool = True):
    """(t, rss, tracked, heap): RSS and the C heap climb at ``rate`` bytes per
    second; the tracked Python heap stays flat."""
    out = []
    for i in range(n_points):
        t = i * 0.02
        grown = int(rate * t)
        heap = 5_000_000 + (grown if heap_grows else 0)
        out.append((t, 30_000_000 + grown + (i % 3) * 4096, 2e6 + (i % 2) * 1000, heap))
    return out


def test_rss_growth_under_a_flat_heap_is_native():
    n = 60
    v = analyze(make_snapshot([churn(n)]), timeline=_rss_growth_timeline())
    assert v.leaking is False
    assert v.leaks == []
    assert v.diagnosis == "native"
    assert v.native_in_heap is True
    assert v.rss_bytes_per_second == pytest.approx(20e6, rel=0.05)
    assert abs(v.tracked_bytes_per_second) < 1e5
    assert "RSS" in v.summary
    assert "malloc" in v.summary


def test_rss_growth_outside_the_c_heap_is_native_but_not_malloc():
    n = 60
    v = analyze(make_snapshot([churn(n)]), timeline=_rss_growth_timeline(heap_grows=False))
    assert v.diagnosis == "native"
    assert v.native_in_heap is False
    assert "RSS" in v.summary


def test_rss_growth_without_heap_numbers_is_native_not_in_heap():
    timeline = [(t, rss, tracked, None) for t, rss, tracked, _ in _rss_growth_timeline()]
    v = analyze(make_snapshot([churn(60)]), timeline=timeline)
    assert v.diagnosis == "native"
    assert v.native_in_heap is False


def test_rss_that_plateaus_is_not_native():
    # Allocator retention: RSS climbs early, then stays at its high-water mark.
    timeline = []
    for i in range(150):
        t = i * 0.02
        rss = 30_000_000 + int(min(t, 0.4) * 50e6) + (i % 3) * 4096
        timeline.append((t, rss, 2e6, 5_000_000))
    v = analyze(make_snapshot([churn(60)]), timeline=timeline)
    assert v.diagnosis == "none"
    assert v.leaking is False


def test_flat_rss_is_not_native():
    v = analyze(make_snapshot([churn(60)]), timeline=flat_timeline())
    assert v.diagnosis == "none"
    assert v.rss_bytes_per_second is not None
    assert abs(v.rss_bytes_per_second) < 1e5


def test_rss_growing_with_the_tracked_heap_is_not_native():
    # Python's own heap grows as fast as RSS: whatever it is, it is not native.
    timeline = [(t, rss, 2e6 + (rss - 30_000_000), heap) for t, rss, _, heap in _rss_growth_timeline()]
    v = analyze(make_snapshot([churn(60)]), timeline=timeline)
    assert v.diagnosis != "native"


def test_a_python_leak_is_not_called_native():
    n = 60
    v = analyze(make_snapshot([leak(n, 400_000.0)]), timeline=_rss_growth_timeline())
    assert v.diagnosis == "leak"
    assert v.leaking is True


def test_too_short_run_keeps_its_diagnosis_with_a_growing_rss():
    v = analyze(make_snapshot([churn(4)]), timeline=_rss_growth_timeline())
    assert v.diagnosis == "too-short"
    assert v.rss_bytes_per_second == pytest.approx(20e6, rel=0.05)
