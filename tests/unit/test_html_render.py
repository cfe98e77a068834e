"""The HTML report's renderer (memhound.reports.html) over hand-made JSON report
dicts: one self-contained page with nothing fetched from the network, every text
escaped, the user's frames highlighted, retention chains shown when present and a
calm placeholder when not, the timeline downsampled, and an atomic write.
(tests/integration/test_html_report.py loads real pages in a headless browser.)"""
from __future__ import annotations

import copy
import os
import re
import sysconfig
from typing import Any, Dict, List

import pytest

from memhound.reports import html

APP = os.path.join(os.sep, "srv", "app", "job.py")
LIB = os.path.join(sysconfig.get_paths()["stdlib"], "json", "decoder.py")


def frame(file: str, line: int, function: str) -> Dict[str, Any]:
    return {"file": file, "line": line, "function": function}


def leak(rank: int, *, stack: List[Dict[str, Any]], rate: float = 1e6,
         retained_by: List[str] = (), epochs: int = 40) -> Dict[str, Any]:
    return {"rank": rank, "site": next(f for f in stack if f["file"] == APP), "stack": stack,
            "native_stack": [], "bytes_per_epoch": rate, "ci95": [0.9 * rate, 1.1 * rate],
            "p_value": 1e-9, "bytes_per_second": rate * 10, "live_bytes": rate * epochs,
            "live_count": 1000 * rank, "type": None, "retained_by": list(retained_by),
            "stack_truncated": False, "series": [rate * e for e in range(epochs)]}


def report(leaks: List[Dict[str, Any]], *, points: int = 200, leaking: bool = True) -> Dict[str, Any]:
    timeline = [{"t": i * 0.05, "rss": 50_000_000 + i * 600_000, "heap": 30_000_000 + i * 500_000,
                 "tracked": 20_000_000 + i * 500_000} for i in range(points)]
    return {
        "memhound": "0.1.0", "schema": 1, "argv": [APP, "30"], "python": "3.11.7", "pid": 42,
        "duration_s": points * 0.05,
        "mode": {"sample_bytes": 2048, "native": False},
        "epochs": {"kind": "time", "count": 40, "units_per_epoch": 1, "seconds_per_epoch": 0.25,
                   "warmup": 8},
        "memory": {"peak_rss": 170_000_000, "final_rss": 170_000_000, "peak_tracked": 120_000_000,
                   "final_tracked": 119_000_000},
        "verdict": {"leaking": leaking, "bytes_per_epoch": 1e6 if leaking else 0.0,
                    "bytes_per_second": 1e7 if leaking else 0.0,
                    "summary": "Leaking about 1.0 MB per epoch (10.0 MB/s): 100% of it allocated at "
                               "job.py:12 in load_orders, and still alive." if leaking else
                               "No leak found: no site's memory keeps surviving after warm-up.",
                    "diagnosis": "leak" if leaking else "none",
                    "rss_bytes_per_second": 1.2e7, "tracked_bytes_per_second": 1e7},
        "leaks": leaks,
        "timeline": timeline,
        "program": {"status": "completed", "exit_code": 0, "complete": True},
    }


STACK = [frame(LIB, 353, "raw_decode"), frame(APP, 12, "load_orders"), frame(APP, 30, "main")]


def test_page_is_self_contained():
    page = html.render(report([leak(1, stack=STACK)]))
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I), "external script"
    assert not re.search(r"<link\b", page, re.I), "external stylesheet"
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page, re.I), "CSS fetch"
    assert not re.search(r"\b(src|href)\s*=\s*['\"]?(https?:)?//", page, re.I), "remote resource"
    assert "var uPlot=" in page  # the chart library is inlined
    assert "window.onerror" in page.split("uPlot")[0], "the error recorder must come first"


def test_verdict_and_key_figures_are_shown():
    page = html.render(report([leak(1, stack=STACK)]))
    assert "Leaking about 1.0 MB per epoch (10.0 MB/s)" in page
    assert "per epoch · 10.0 MB/s" in page
    assert "900.0 KB – 1.1 MB" in page  # the site's interval, also the run's (one site)
    assert html.fmt_range(1.9e6, 2.1e6) == "1.9 – 2.1 MB"
    assert "170.0 MB" in page  # peak RSS
    assert "10.0 s" in page  # duration


def test_several_sites_combine_their_intervals_in_quadrature():
    leaks = [leak(1, stack=STACK, rate=3e6), leak(2, stack=STACK, rate=4e6)]
    lo, hi = html._combined_ci(leaks)
    half = ((0.3e6) ** 2 + (0.4e6) ** 2) ** 0.5
    assert lo == pytest.approx(7e6 - half) and hi == pytest.approx(7e6 + half)


def test_text_from_the_report_is_escaped():
    evil = "</script><script>alert(1)</script>"
    stack = [frame(APP, 12, evil), frame(APP, 30, "<lambda>")]
    rep = report([leak(1, stack=stack)])
    rep["verdict"]["summary"] = "leak at " + evil
    rep["argv"] = [APP, evil]
    page = html.render(rep)
    assert evil not in page
    assert "&lt;lambda&gt;" in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_user_frames_are_highlighted_and_library_frames_are_not():
    page = html.render(report([leak(1, stack=STACK)]))
    items = re.findall(r'<li( class="mine")?><span class="fn">([^<]+)</span>', page)
    assert ("", "raw_decode") in items
    assert (' class="mine"', "load_orders") in items and (' class="mine"', "main") in items


def test_deep_stacks_fold_after_the_first_frames():
    deep = [frame(APP, 100 + i, f"f{i}") for i in range(30)]
    page = html.render(report([leak(1, stack=deep)]))
    assert f"{30 - html.STACK_LINES} more frames" in page
    visible, folded = page.split("<details>", 1)
    assert "f0</span>" in visible and f"f{html.STACK_LINES}</span>" in folded


def test_retention_chains_are_shown_under_their_site():
    chain = ["module __main__, global _results_cache (dict)", "dict[17] (list)"]
    page = html.render(report([leak(1, stack=STACK, retained_by=chain), leak(2, stack=STACK)]))
    assert "Kept alive by" in page
    for step in chain:
        assert step in page
    assert page.count('class="chain"') == 1
    assert "This report has none" not in page


def test_each_holder_of_a_chain_shows_what_it_retains():
    chain = ["module job, global cache (dict)", "value for key 17 (list)"]
    l1 = leak(1, stack=STACK, retained_by=chain)
    l1["retention"] = {"steps": [{"how": "module job, global cache", "type": "dict", "retained_bytes": 5_000_000},
                                 {"how": "value for key 17", "type": "list", "retained_bytes": 2_100}]}
    page = html.render(report([l1]))
    assert "retains 5.0 MB" in page and "retains 2.1 KB" in page
    # Sizes that do not line up with the chain are left out rather than misplaced.
    l1["retention"]["steps"].pop()
    assert "retains 5.0 MB" not in html.render(report([l1]))


def test_without_retention_chains_there_is_a_calm_placeholder():
    page = html.render(report([leak(1, stack=STACK)]))
    assert "Kept alive by" not in page
    assert "Who keeps it alive" in page and "This report has none" in page


def test_a_run_without_leaks_says_so():
    page = html.render(report([], leaking=False))
    assert "No leak sites" in page
    assert "No leak found" in page
    assert 'data-site="' not in page


def test_a_partial_run_is_marked():
    rep = report([leak(1, stack=STACK)])
    rep["program"] = {"status": "raised", "exit_code": 1, "complete": False}
    assert "this report covers a partial run" in html.render(rep)


def test_chart_data_downsamples_and_carries_band_trend_and_site_series():
    rep = report([leak(1, stack=STACK), leak(2, stack=STACK)], points=10_000)
    data = html.chart_data(rep)
    assert len(data["t"]) <= html.MAX_POINTS
    assert len(data["t"]) == len(data["tracked"]) == len(data["rss"]) == len(data["heap"])
    assert data["t"][0] == 0.0 and data["t"][-1] == pytest.approx(9999 * 0.05)
    assert max(data["rss"]) == 50_000_000 + 9999 * 600_000
    # tracked grows at 10 MB/s, all of it the leak: the trend says so and the band,
    # with the leak taken out, is flat at the level where warm-up ended.
    assert data["trend"]["slope"] == pytest.approx(1e7)
    assert data["band"]["low"] == pytest.approx(data["band"]["high"])
    assert data["band"]["low"] == pytest.approx(20_000_000 + 1e7 * data["warmup_end"], rel=1e-6)
    assert [len(s) for s in data["sites"]] == [40, 40]
    assert data["epoch_warmup"] == 8 and data["unit"] == "epoch"


def test_missing_heap_and_tiny_timelines_still_render():
    rep = report([leak(1, stack=STACK)], points=1)
    for p in rep["timeline"]:
        p["heap"] = None
    data = html.chart_data(rep)
    assert data["heap"] is None and data["trend"] is None
    assert "fewer than two points" in html.render(rep)
    rep["timeline"] = []
    html.render(rep)


def test_render_does_not_change_the_report():
    rep = report([leak(1, stack=STACK)])
    before = copy.deepcopy(rep)
    html.render(rep)
    assert rep == before


def test_write_is_atomic(tmp_path):
    out = tmp_path / "report.html"
    out.write_text("old", encoding="utf-8")
    html.write(str(out), report([leak(1, stack=STACK)]))
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert os.listdir(tmp_path) == ["report.html"]
    with pytest.raises(OSError):
        html.write(str(tmp_path / "missing" / "report.html"), report([]))
    assert os.listdir(tmp_path) == ["report.html"]
