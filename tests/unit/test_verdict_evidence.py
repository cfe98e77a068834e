"""The verdict's "too short" is decided by evidence — epochs after warm-up, and
samples' worth of allocation in them when some survive — and says what would be
enough; warm-up and guard cover their share of the run's seconds as well as of
its epochs, so a burst of allocation that fills many short epochs at the start
(epochs close on allocation too) stays in the warm-up. Snapshots are built by
hand, so every number is known."""
from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

from memhound import Snapshot
from memhound.analysis import analyze

APP = os.path.join(os.sep, "srv", "app", "job.py")


def make_snapshot(sites: Sequence[Dict[str, Sequence[float]]], starts: Sequence[float], elapsed: float,
                  *, sample_bytes: int = 1, stride: int = 1) -> Snapshot:
    """A Snapshot from per-site, per-epoch series: ``alloc``, ``freed``, ``cohort``
    (bytes) and, optionally, ``samples`` (allocation samples) and
    ``survivors`` (of them, still alive); by default one sample per 100 bytes."""
    n = len(starts)
    stacks: List[Optional[tuple]] = [None]
    site_rows, cohort_rows = [], []
    live = 0.0
    for i, s in enumerate(sites):
        stack_id = len(stacks)
        stacks.append((((APP, 10 + i, f"f{i}"), (APP, 90, "main")), False))
        for e in range(n):
            a, f, c = s["alloc"][e], s["freed"][e], s["cohort"][e]
            k = int(s["samples"][e]) if "samples" in s else max(1, int(a // 100))
            if a or f:
                site_rows.append((stack_id, e, float(a), a / 100, float(f), f / 100, k, int(f // 100)))
            if c:
                kc = int(s["survivors"][e]) if "survivors" in s else max(1, int(c // 100))
                cohort_rows.append((stack_id, e, float(c), c / 100, 0.0, 0.0, kc, 0))
                live += c
    totals: Dict[str, object] = {
        "live_bytes": live, "live_count": live / 100, "peak_bytes": live, "samples": len(site_rows),
        "frees": 0, "dropped": 0, "unpinned": 0, "epoch": n - 1, "sample_bytes": sample_bytes,
        "max_frames": 128, "live_entries": len(cohort_rows), "stacks": len(stacks) - 1, "merges": 0,
        "stride": stride, "elapsed": elapsed,
    }
    return Snapshot((totals, site_rows, cohort_rows, stacks, list(starts)))


def churn(n: int, size: float = 50_000.0) -> Dict[str, List[float]]:
    return {"alloc": [size] * n, "freed": [size] * n, "cohort": [0.0] * n}


def uniform(n: int, seconds: float = 0.01) -> Tuple[List[float], float]:
    return [e * seconds for e in range(n)], n * seconds


def burst_then_windows(burst: int, windows: int) -> Tuple[List[float], float]:
    """``burst`` epochs closed by allocation within 1 ms each, then ``windows``
    epochs of 10 ms."""
    starts = [e * 0.001 for e in range(burst)]
    starts += [burst * 0.001 + k * 0.01 for k in range(windows)]
    return starts, burst * 0.001 + windows * 0.01


def test_a_burst_of_allocation_at_the_start_stays_in_the_warm_up():
    burst, windows = 60, 40
    n = burst + windows
    # Loading data: 100 KB kept in each epoch of the burst, nothing after.
    load = [100_000.0 if e < burst else 0.0 for e in range(n)]
    starts, elapsed = burst_then_windows(burst, windows)
    v = analyze(make_snapshot([churn(n), {"alloc": load, "freed": [0.0] * n, "cohort": load}],
                              starts, elapsed))
    assert v.warmup >= burst, v.warmup
    assert v.leaking is False, v.summary
    assert v.diagnosis == "none", v.summary


def test_a_leak_through_a_burst_shaped_run_is_still_found():
    burst, windows = 60, 40
    n = burst + windows
    kept = [20_000.0] * n
    starts, elapsed = burst_then_windows(burst, windows)
    v = analyze(make_snapshot([churn(n), {"alloc": kept, "freed": [0.0] * n, "cohort": kept}],
                              starts, elapsed))
    assert v.leaking is True, v.summary
    assert v.leaks[0].site.lineno == 11


def test_uniform_epochs_keep_the_usual_warm_up_and_guard():
    for n in (6, 12, 40, 100, 128):
        starts, elapsed = uniform(n)
        v = analyze(make_snapshot([churn(n)], starts, elapsed))
        assert v.warmup == max(1, round(0.2 * n)), (n, v.warmup)
        assert v.guard == max(2, math.ceil(0.25 * n)), (n, v.guard)


def _thin(n: int, survivors_at: Sequence[int]) -> Dict[str, List[float]]:
    """Two sampled allocations (2 KiB each at R = 2 KiB) per epoch; one of them
    survives in the epochs listed."""
    cohort = [2048.0 if e in survivors_at else 0.0 for e in range(n)]
    return {"alloc": [4096.0] * n, "freed": [4096.0 - c for c in cohort], "cohort": cohort,
            "samples": [2] * n, "survivors": [1 if c else 0 for c in cohort]}


def test_few_samples_with_survivors_is_too_short_and_says_what_would_be_enough():
    n = 20
    starts, elapsed = uniform(n, 0.02)
    v = analyze(make_snapshot([_thin(n, (6, 9))], starts, elapsed, sample_bytes=2048))
    assert v.leaking is False
    assert v.diagnosis == "too-short", v.summary
    ev = v.evidence
    assert ev["old_epochs"] == n - v.warmup - v.guard == 11
    assert ev["old_samples"] == 22 and ev["surviving_samples"] == 2, ev
    # 64 samples needed, 22 seen: about three times as long, or a rate 3x finer.
    assert ev["enough"]["run_length_factor"] == 3.0, ev
    assert ev["enough"]["more_seconds"] == 2 * elapsed
    assert ev["enough"]["sample_bytes"] == 2048 // 3, ev
    assert "Not enough evidence" in v.summary and "--sample-bytes" in v.summary, v.summary


def test_few_samples_none_surviving_is_no_leak():
    # Nothing allocated after warm-up is alive: there is no leak to miss.
    n = 20
    starts, elapsed = uniform(n, 0.02)
    v = analyze(make_snapshot([_thin(n, ())], starts, elapsed, sample_bytes=2048))
    assert v.diagnosis == "none", v.summary
    assert "enough" not in v.evidence
    assert v.evidence["surviving_samples"] == 0


def test_too_few_epochs_after_warm_up_says_how_much_longer():
    n = 4
    starts, elapsed = uniform(n, 0.01)
    kept = [1e6] * n
    v = analyze(make_snapshot([{"alloc": kept, "freed": [0.0] * n, "cohort": kept}], starts, elapsed))
    assert v.diagnosis == "too-short"
    assert v.evidence["old_epochs"] == 1
    factor = v.evidence["enough"]["run_length_factor"]
    assert factor >= 1.5 and f"{factor:g}× as long" in v.summary, v.summary


def test_too_few_calls_says_how_many_more_calls():
    n = 4
    starts, elapsed = uniform(n, 0.01)
    v = analyze(make_snapshot([churn(n)], starts, elapsed, stride=4), units_per_epoch=4.0,
                epoch_unit="call")
    enough = v.evidence["enough"]
    assert enough["more_units"] == math.ceil(n * 4 * (enough["run_length_factor"] - 1)), enough
    assert f"{enough['more_units']} more calls" in v.summary, v.summary


def test_epochs_of_calls_keep_their_warm_up():
    # The same burst-shaped run, but its epochs are the program's own calls: the
    # warm-up is a fifth of them, as the user's units say.
    burst, windows = 60, 40
    n = burst + windows
    starts, elapsed = burst_then_windows(burst, windows)
    v = analyze(make_snapshot([churn(n)], starts, elapsed), units_per_epoch=1.0, epoch_unit="call")
    assert v.warmup == round(0.2 * n), v.warmup
