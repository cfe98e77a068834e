"""Unit tests of memory-over-time maths (memhound.analysis.timeline): the trend
line, the normal band and the chart downsampler, on series whose answers are known."""
from __future__ import annotations

import math
import random

import pytest

from memhound.analysis.timeline import downsample, normal_band, percentile, trend, warmup_end


def line(n: int, slope: float, start: float, *, t_end: float = 100.0):
    return [(t_end * i / (n - 1), start + slope * t_end * i / (n - 1)) for i in range(n)]


def test_warmup_is_the_first_fifth_of_the_run_time():
    pts = [(10.0, 0.0), (20.0, 0.0), (60.0, 0.0)]
    assert warmup_end(pts) == pytest.approx(20.0)
    assert warmup_end([]) == 0.0


def test_trend_of_a_straight_line_is_that_line():
    tr = trend(line(101, 2.5e5, 1e6))
    assert tr is not None
    assert tr.slope == pytest.approx(2.5e5)
    assert tr.intercept == pytest.approx(1e6)
    assert tr.t_start == pytest.approx(20.0) and tr.t_end == pytest.approx(100.0)
    assert tr.at(50.0) == pytest.approx(1e6 + 2.5e5 * 50)


def test_trend_ignores_the_warm_up():
    # A big jump during warm-up (imports, a cache filling), flat afterwards.
    pts = [(float(t), 5e6 if t < 15 else 9e6) for t in range(101)]
    tr = trend(pts)
    assert tr is not None
    assert tr.slope == pytest.approx(0.0, abs=1e-9)
    assert tr.at(60) == pytest.approx(9e6)


def test_trend_needs_two_distinct_times():
    assert trend([]) is None
    assert trend([(1.0, 5.0)]) is None
    assert trend([(1.0, 5.0), (1.0, 6.0)]) is None


def test_percentile_interpolates_linearly_between_ranks():
    xs = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(xs, 0) == 1.0
    assert percentile(xs, 100) == 10.0
    assert percentile(xs, 50) == pytest.approx(5.5)
    assert percentile(xs, 5) == pytest.approx(1.45)
    assert percentile([3.0], 95) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_band_of_a_steady_program_is_the_spread_of_its_memory_after_warm_up():
    rng = random.Random(7)
    pts = [(float(t), 50e6 + rng.uniform(-1e6, 1e6)) for t in range(1001)]
    # A warm-up spike that must not widen the band.
    pts[10] = (10.0, 200e6)
    band = normal_band(pts)
    assert band is not None
    post = [y for t, y in pts if t >= 200]
    assert band.low == pytest.approx(percentile(post, 5))
    assert band.high == pytest.approx(percentile(post, 95))
    assert 48.9e6 < band.low < 49.3e6 and 50.7e6 < band.high < 51.1e6
    assert band.leak_rate == 0.0 and band.points == len(post)


def test_band_takes_the_leak_out_of_a_leaking_program():
    # 20 MB of live working set that wobbles by +-1 MB, plus a 1 MB/s leak.
    rng = random.Random(3)
    pts = [(t / 10, 20e6 + rng.uniform(-1e6, 1e6) + 1e6 * t / 10) for t in range(1001)]
    tw = warmup_end(pts)
    band = normal_band(pts, leak_rate=1e6)
    assert band is not None
    # Anchored at the end of warm-up: the working set plus what had leaked by then.
    base = 20e6 + 1e6 * tw
    assert base - 1e6 <= band.low < base - 0.8e6
    assert base + 0.8e6 < band.high <= base + 1e6
    # Without the leak taken out, the band would span the whole ramp.
    raw = normal_band(pts)
    assert raw is not None and raw.high - raw.low > 50e6


def test_band_never_takes_out_more_than_memory_grew():
    # The verdict's rate (2 MB/s) overshoots what memory shows (1 MB/s): only the
    # trend's slope is taken out, so the band stays as narrow as the noise.
    pts = line(501, 1e6, 30e6)
    band = normal_band(pts, leak_rate=2e6)
    assert band is not None
    assert band.leak_rate == pytest.approx(1e6)
    assert band.high - band.low == pytest.approx(0.0, abs=1.0)
    assert band.low == pytest.approx(30e6 + 1e6 * warmup_end(pts))


def test_band_is_never_below_zero():
    pts = [(float(t), 1e3 if t % 2 else 0.0) for t in range(100)]
    band = normal_band(pts, leak_rate=0.0)
    assert band is not None and band.low == 0.0
    falling = line(101, -1e3, 1e4)
    band = normal_band(falling, leak_rate=5e3)  # nothing grows: nothing taken out
    assert band is not None and band.leak_rate == 0.0 and band.low >= 0.0


def test_band_without_points_is_none():
    assert normal_band([]) is None


def test_downsample_leaves_short_timelines_alone():
    rows = [(float(i), i * 2.0, None) for i in range(50)]
    assert downsample(rows, 100) == rows


def test_downsample_bounds_the_points_and_keeps_every_series_extremes():
    rng = random.Random(11)
    rows = [(i * 0.01, rng.uniform(0, 1e6), rng.uniform(5e6, 6e6), None) for i in range(360_000)]
    rows[123_457] = (rows[123_457][0], 9e9, 1.0, None)  # one spike up, one down
    out = downsample(rows, 2000)
    assert len(out) <= 2000
    times = [r[0] for r in out]
    assert times == sorted(times)
    assert out[0][0] == rows[0][0] and out[-1][0] == rows[-1][0]
    for k in (1, 2):
        assert max(r[k] for r in out) == max(r[k] for r in rows)
        assert min(r[k] for r in out) == min(r[k] for r in rows)
    assert all(r[3] is None for r in out)


def test_downsample_keeps_the_order_of_a_fall():
    # Falling within every run: the first row of each pair holds the maximum.
    rows = [(float(i), float(-i)) for i in range(1000)]
    out = downsample(rows, 10)
    assert len(out) == 10
    for a, b in zip(out[::2], out[1::2]):
        assert a[1] > b[1]
        assert math.isclose(a[1], -a[0]) and math.isclose(b[1], -b[0])


def test_downsample_mixes_none_and_values():
    rows = [(float(i), None if i % 2 else float(i)) for i in range(100)]
    out = downsample(rows, 10)
    assert all(r[1] is not None for r in out)
