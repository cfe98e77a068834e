"""The core's background thread: its timeline ring keeps the whole run when it
fills (every other point dropped, the rate halved), and its time windows close
epochs without any Python thread."""
from __future__ import annotations

import time

import pytest

from memhound import _core
from memhound.session import Session


@pytest.fixture
def session():
    s = Session(65536, tick=0.0005, window=0.005)
    s.start()
    try:
        yield s
    finally:
        if _core.is_tracking():
            s.finish()


def test_timeline_ring_keeps_the_whole_run_when_it_fills(session):
    # At 0.5 ms a tick, 4,096 points fill in about 2 s; run past it.
    time.sleep(3.5)
    points = _core.timeline()
    ts = [p[0] for p in points]
    assert 2048 <= len(points) <= 4096
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    # The oldest point is still from the start of the run, the newest from now:
    # halving dropped points evenly rather than forgetting the beginning.
    assert ts[0] < 0.05
    assert ts[-1] > 3.0
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    assert max(gaps) < 0.05, max(gaps)
    rss = [p[1] for p in points]
    assert min(rss) > 0
    assert session.last_point() is not None


def test_time_windows_close_epochs_from_the_c_thread(session):
    first = _core.totals()["epoch"]
    time.sleep(0.3)
    later = _core.totals()["epoch"]
    assert later - first >= 10, (first, later)  # 5 ms windows, on a busy machine


def test_finish_stops_the_thread_and_returns_its_timeline(session):
    time.sleep(0.1)
    result = session.finish()
    assert not _core.bg_status()["running"]
    assert result.timeline and result.peak_rss >= max(p[1] for p in result.timeline)
    assert result.capture is None and result.capture_error is None
