"""The core's allocation clock: every quantum of allocation is a unit, an epoch
closes when its units reach the stride, and merging (when max_epochs is reached)
doubles the stride, so every closed epoch holds the same amount of allocation
however many merges there were. Exact mode (every allocation sampled, weight 1)
makes the amounts exact, and window=0 leaves the allocation clock alone."""
from __future__ import annotations

from collections import defaultdict

import pytest

import memhound
from memhound import _core
from memhound.session import Session

QUANTUM = 64 * 1024


def _churn(total: int, size: int = 1000) -> None:
    """Allocate ``total`` bytes in small blocks, freeing each at once."""
    for _ in range(total // size):
        b = bytearray(size)
        del b


def _allocated_by_epoch(snap) -> dict:
    per = defaultdict(float)
    for rows in snap.site_epochs().values():
        for r in rows:
            per[r.epoch] += r.alloc_bytes
    return per


def test_epochs_close_on_allocation_and_stay_equal_through_merges():
    s = Session(1, window=0.0, alloc_window=QUANTUM, max_epochs=8)
    s.start()
    try:
        _churn(6 * 1024 * 1024)
        totals = _core.totals()
    finally:
        result = s.finish()
    assert result.epoch_clock == "alloc"
    stride, epoch = totals["stride"], totals["epoch"]
    # ~96 quanta: merged five or six times, and 4 to 8 epochs left.
    assert stride >= 8, totals
    assert 4 <= epoch + 1 <= 8, totals
    per = _allocated_by_epoch(result.snapshot)
    target = stride * QUANTUM
    closed = [per[e] for e in range(epoch)]
    # Each closed epoch holds `stride` quanta: at least that, and over it by no
    # more than the blocks that crossed its quanta's ends (and, in epoch 0, what
    # was allocated before the clock started).
    for e, got in enumerate(closed):
        assert target <= got <= target * 1.04 + 16 * 1024, (e, got, target, closed)
    assert per[epoch] < target, (per[epoch], target)


def test_allocation_closes_epochs_the_wall_clock_would_not():
    # One-second windows: the wall clock alone closes hardly any epoch while
    # 8 MB are allocated; the allocation clock (128 KiB at R = 2 KiB) about 64.
    s = Session(2048, window=1.0, max_epochs=128)
    s.start()
    try:
        _churn(8 * 1024 * 1024)
        epoch = _core.totals()["epoch"]
    finally:
        result = s.finish()
    assert result.epoch_clock == "time+alloc"
    assert epoch >= 40, epoch


def test_time_and_allocation_add_up_in_one_epoch():
    # Half a quantum, then a unit of time (a window) would close the epoch only
    # with both; with window=0 and half a quantum nothing closes.
    s = Session(1, window=0.0, alloc_window=QUANTUM, max_epochs=128)
    s.start()
    try:
        _churn(QUANTUM // 2)
        assert _core.totals()["epoch"] == 0
        _core.end_unit()  # one unit of another clock (as a time window is)
        after = _core.totals()["epoch"]
    finally:
        s.finish()
    assert after == 1


def test_alloc_window_zero_turns_the_clock_off():
    s = Session(1, window=0.0, alloc_window=0, max_epochs=8)
    s.start()
    try:
        _churn(2 * 1024 * 1024)
        epoch = _core.totals()["epoch"]
    finally:
        result = s.finish()
    assert epoch == 0
    assert result.epoch_clock == "none"


def test_function_epochs_do_not_use_the_allocation_clock():
    s = Session(1, epoch_on="no_such_function_anywhere", alloc_window=QUANTUM, max_epochs=8)
    s.start()
    try:
        _churn(2 * 1024 * 1024)
        epoch = _core.totals()["epoch"]
    finally:
        result = s.finish()
    assert epoch == 0
    assert result.epoch_clock == "calls"


def test_bg_start_rejects_a_negative_quantum():
    memhound.start(65536)
    try:
        with pytest.raises(ValueError):
            _core.bg_start(0.01, 0.01, 1.0, None, "{}", 0.0, -1)
        assert not _core.bg_status()["running"]
    finally:
        memhound.stop()
