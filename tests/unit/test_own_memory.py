"""memhound's own memory in the RSS diagnosis, over timelines built by hand: RSS
that grows only by what memhound holds itself (the fifth element of a timeline
point) is not the program's, and RSS growing far faster than tracked memory is
said with both rates whatever the verdict. Also the core's measure of its own
memory and the in-process timeline tuples that carry it."""
from __future__ import annotations

import time

import pytest

from memhound import _core
from memhound.analysis import analyze
from memhound.reports import json_report
from test_verdict import churn, leak, make_snapshot


def _timeline(n_points: int = 150, *, program_rate: float = 0.0, own_rate: float = 0.0,
              tracked_rate: float = 0.0, own: bool = True):
    """(t, rss, tracked, heap, own): memhound's own memory grows at ``own_rate``
    bytes per second and the program's at ``program_rate``; RSS holds both."""
    out = []
    for i in range(n_points):
        t = i * 0.02
        mine = 3_000_000 + int(own_rate * t)
        rss = 30_000_000 + int(program_rate * t) + mine + (i % 3) * 4096
        point = (t, rss, 2e6 + tracked_rate * t + (i % 2) * 1000, 5_000_000)
        out.append(point + (mine,) if own else point)
    return out


def test_rss_growth_that_is_memhounds_own_is_not_native():
    v = analyze(make_snapshot([churn(60)]), timeline=_timeline(own_rate=20e6))
    assert v.diagnosis == "none", v.summary
    assert v.summary.startswith("No leak found")
    assert v.rss_note is None
    assert abs(v.rss_bytes_per_second) < 1e5
    assert v.own_bytes_per_second == pytest.approx(20e6, rel=0.05)
    assert v.raw_rss_bytes_per_second == pytest.approx(20e6, rel=0.05)


def test_the_programs_growth_under_memhounds_is_still_native():
    v = analyze(make_snapshot([churn(60)]), timeline=_timeline(program_rate=20e6, own_rate=5e6))
    assert v.diagnosis == "native"
    assert v.rss_bytes_per_second == pytest.approx(20e6, rel=0.05)
    assert v.raw_rss_bytes_per_second == pytest.approx(25e6, rel=0.05)
    assert "20.0 MB/s" in v.summary


def test_points_without_own_memory_count_all_of_rss():
    v = analyze(make_snapshot([churn(60)]), timeline=_timeline(program_rate=20e6, own=False))
    assert v.diagnosis == "native"
    assert v.own_bytes_per_second is None or v.own_bytes_per_second == 0


def test_a_leak_with_rss_far_above_it_gets_both_rates():
    n = 60
    snap = make_snapshot([leak(n, 800.0), churn(n)])  # 800 B per 20 ms epoch: 40 KB/s
    v = analyze(snap, timeline=_timeline(program_rate=160e6, tracked_rate=40e3))
    assert v.leaking is True and v.diagnosis == "leak"
    assert v.bytes_per_second == pytest.approx(40e3, rel=0.05)
    assert v.rss_to_tracked == pytest.approx(160e6 / 40e3, rel=0.05)
    assert v.rss_note is not None
    assert v.rss_note.startswith("RSS grows at 160.0 MB/s, 4,000× the tracked rate (40.0 KB/s)")
    assert "outside Python's allocators" in v.rss_note
    # The leak's own sentence is unchanged.
    assert v.summary.startswith("Leaking about")


def test_a_flat_tracked_heap_with_rss_growth_says_so_in_the_note():
    v = analyze(make_snapshot([churn(60)]), timeline=_timeline(program_rate=20e6))
    assert v.diagnosis == "native"
    assert v.rss_note is not None and "while tracked memory is flat" in v.rss_note


def test_too_short_runs_still_get_the_note():
    v = analyze(make_snapshot([churn(3)]), timeline=_timeline(program_rate=20e6))
    assert v.diagnosis == "too-short"
    assert v.rss_note is not None and v.rss_note.startswith("RSS grows at 20.0 MB/s")


def test_rss_growing_with_tracked_memory_gets_no_note():
    n = 60
    # A Python leak of 1 MB/s with RSS following it at 1.5 MB/s: nothing outside.
    snap = make_snapshot([leak(n, 20_000.0), churn(n)])
    v = analyze(snap, timeline=_timeline(program_rate=1.5e6, tracked_rate=1e6))
    assert v.leaking is True
    assert v.rss_note is None
    assert v.rss_to_tracked is None


def test_the_in_process_timeline_carries_memhounds_own_memory():
    _core.start(2048, 32, 1)
    try:
        _core.bg_start(0.01, 0.01, 1.0, None, "{}", time.time())
        try:
            kept = [bytearray(200) for _ in range(50_000)]  # samples: the live table grows
            deadline = time.monotonic() + 5
            while len(_core.timeline()) < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            _core.bg_stop("completed", 0, "{}")
        points = _core.timeline()
    finally:
        _core.stop()
    del kept
    assert len(points) >= 5
    assert all(len(p) == 5 for p in points)
    # memhound's tables hold at least a live-table row per sample it keeps.
    assert all(p[4] is not None and p[4] > 0 for p in points)
    assert points[-1][4] >= 1024 * 32
    assert all(p[4] < p[1] for p in points)  # a part of RSS


def test_the_json_timeline_has_own(tmp_path):
    from memhound.result import SessionResult

    snap = make_snapshot([churn(60)])
    timeline = _timeline(own_rate=1e6)
    result = SessionResult(snapshot=snap, timeline=timeline, epoch_kind="time",
                           units_per_epoch=1.0, epoch_seconds=0.02, function_epochs=0,
                           peak_rss=timeline[-1][1], final_rss=timeline[-1][1])
    v = analyze(snap, timeline=timeline)
    report = json_report.build(result, v, argv=["x.py"], duration=3.0, exit_status="completed",
                               exit_code=0, version="0")
    assert [p["own"] for p in report["timeline"]] == [p[4] for p in timeline]
    assert report["verdict"]["own_bytes_per_second"] == pytest.approx(1e6, rel=0.05)
    assert report["verdict"]["rss_note"] is None
    old = [p[:4] for p in timeline]
    report = json_report.build(SessionResult(snapshot=snap, timeline=old, epoch_kind="time",
                                             units_per_epoch=1.0, epoch_seconds=0.02,
                                             function_epochs=0, peak_rss=0, final_rss=0),
                               v, argv=["x.py"], duration=3.0, exit_status="completed",
                               exit_code=0, version="0")
    assert all(p["own"] is None for p in report["timeline"])


def test_the_html_report_shows_the_rss_note_under_the_verdict():
    from memhound.reports import html
    from memhound.result import SessionResult

    n = 60
    snap = make_snapshot([leak(n, 800.0), churn(n)])
    timeline = _timeline(program_rate=160e6, tracked_rate=40e3)
    v = analyze(snap, timeline=timeline)
    result = SessionResult(snapshot=snap, timeline=timeline, epoch_kind="time",
                           units_per_epoch=1.0, epoch_seconds=0.02, function_epochs=0,
                           peak_rss=timeline[-1][1], final_rss=timeline[-1][1])
    report = json_report.build(result, v, argv=["x.py"], duration=3.0, exit_status="completed",
                               exit_code=0, version="0")
    page = html.render(report)
    assert v.rss_note is not None
    assert "RSS grows at 160.0 MB/s, 4,000× the tracked rate (40.0 KB/s)" in page
    assert page.index(v.summary.split(":")[0]) < page.index("RSS grows at 160.0 MB/s")
    report["verdict"]["rss_note"] = None
    assert "RSS grows at" not in html.render(report)
