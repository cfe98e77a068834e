"""The HTML report in a real browser: pages from real ``memhound run --html`` runs (a
leaking program and a clean one) and from a synthetic report of a one-hour run
(128 epochs, 20 leak sites with deep stacks, 360,000 timeline points) load in
headless Chromium without a single JavaScript error, and every chart is drawn.

The page records what happened in attributes of <body>: data-mh-errors (script
errors, recorded by a handler installed before anything else runs), data-mh-ready
(the page's script ran to its end), data-mh-charts (charts set up) and
data-mh-drawn (charts whose canvas holds pixels of their main series' colour).
The test reads them from Chromium's --dump-dom. A missing attribute means the
script never ran: a failure. Without Chromium these tests fail rather than skip
(CI installs it).
"""
from __future__ import annotations

import html as htmllib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any, Dict

import pytest

import memhound
from memhound.reports import html

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
SRC = Path(memhound.__file__).resolve().parent.parent
EXIT_ERROR = 2
#: The page of a one-hour run must stay under this (bytes).
MAX_PAGE_BYTES = 2_000_000


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: the HTML report must be checked in a real browser "
                "(apt-get install -y chromium)")


def load_in_browser(page: Path) -> Dict[str, str]:
    """Load ``page`` in headless Chromium; the attributes of its <body> after the
    page's scripts ran, plus the dumped DOM as "_dom"."""
    with tempfile.TemporaryDirectory(prefix="mh-chromium-") as profile:
        proc = subprocess.run(
            [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", f"--user-data-dir={profile}",
             "--window-size=1280,1600", "--virtual-time-budget=5000", "--dump-dom",
             page.resolve().as_uri()],
            capture_output=True, timeout=120)
    dom = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0 and dom, proc.stderr.decode("utf-8", "replace")[-2000:]
    m = re.search(r"</head>\s*<body([^>]*)>", dom)
    assert m, "no <body> in the dumped DOM"
    attrs = {k: htmllib.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', m.group(1))}
    attrs["_dom"] = dom
    return attrs


def assert_page_works(page: Path, charts: int) -> Dict[str, str]:
    attrs = load_in_browser(page)
    assert attrs.get("data-mh-errors") == "0", attrs.get("data-mh-error-text", attrs)
    assert attrs.get("data-mh-ready") == "1", "the page's script did not run to its end"
    assert attrs.get("data-mh-charts") == str(charts), attrs
    assert attrs.get("data-mh-drawn") == str(charts), "a chart was set up but its data not drawn"
    return attrs


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    parts = [str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def memhound_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memhound", "run", *args], capture_output=True,
                          env=_env(), cwd=str(cwd), timeout=300)


# --------------------------------------------------------------------------
# A synthetic report of a one-hour run


def synthetic_hour(seed: int = 1) -> Dict[str, Any]:
    """A schema-1 report as a one-hour leaking service would produce it: a point
    every 10 ms, 128 epochs, 20 leaking sites whose stacks are 120 frames deep."""
    rng = random.Random(seed)
    duration, points, epochs, sites = 3600.0, 360_000, 128, 20
    app = os.path.join(os.sep, "srv", "service", "handlers")
    lib = os.path.join(sysconfig.get_paths()["purelib"], "framework", "dispatch")
    rates = sorted((rng.uniform(2e3, 2e5) for _ in range(sites)), reverse=True)
    leaks = []
    for i, rate in enumerate(rates):
        stack = []
        for k in range(120):
            if k % 3 == 0:
                stack.append({"file": os.path.join(app, f"module_{i}_{k}.py"), "line": 10 + k,
                              "function": f"handle_request_step_{k}"})
            else:
                stack.append({"file": os.path.join(lib, f"layer_{k}.py"), "line": 200 + k,
                              "function": f"Dispatcher.call_next_middleware_{k}"})
        series, live = [], 0.0
        for e in range(epochs):
            live += rate * rng.uniform(0.6, 1.4)
            series.append(int(live))
        per_s = rate * epochs / duration
        leaks.append({"rank": i + 1, "site": stack[0], "stack": stack, "native_stack": [],
                      "bytes_per_epoch": rate, "ci95": [0.8 * rate, 1.2 * rate], "p_value": 1e-9,
                      "bytes_per_second": per_s, "live_bytes": live, "live_count": int(live / 80),
                      "type": None, "retained_by": [], "stack_truncated": True, "series": series})
    total_s = sum(v["bytes_per_second"] for v in leaks)
    timeline = []
    for j in range(points):
        t = j * duration / points
        tracked = 80e6 + total_s * t + rng.uniform(-2e6, 2e6) + (5e6 if j % 6000 < 300 else 0)
        timeline.append({"t": round(t, 3), "rss": int(tracked * 1.4 + 30e6),
                         "heap": int(tracked * 0.6 + 10e6), "tracked": int(tracked)})
    return {
        "memhound": memhound.__version__, "schema": 1,
        "argv": [os.path.join(os.sep, "srv", "service", "main.py"), "--port", "8080"],
        "python": "3.12.1", "pid": 4321, "duration_s": duration,
        "mode": {"sample_bytes": 65536, "native": False},
        "epochs": {"kind": "time", "count": epochs, "units_per_epoch": 1,
                   "seconds_per_epoch": duration / epochs, "warmup": 26},
        "memory": {"peak_rss": max(p["rss"] for p in timeline), "final_rss": timeline[-1]["rss"],
                   "peak_tracked": max(p["tracked"] for p in timeline),
                   "final_tracked": timeline[-1]["tracked"]},
        "verdict": {"leaking": True, "bytes_per_epoch": sum(rates), "bytes_per_second": total_s,
                    "summary": "Leaking about 2.0 MB per epoch (560.0 B/s): 10% of it allocated at "
                               "module_0_0.py:10 in handle_request_step_0 and 19 more sites, "
                               "and still alive.",
                    "diagnosis": "leak", "rss_bytes_per_second": total_s * 1.4,
                    "tracked_bytes_per_second": total_s},
        "leaks": leaks, "timeline": timeline,
        "program": {"status": "completed", "exit_code": 0, "complete": True},
    }


@pytest.fixture(scope="module")
def hour_page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "hour.html"
    html.write(str(out), synthetic_hour())
    return out


def test_one_hour_report_stays_small(hour_page):
    size = hour_page.stat().st_size
    assert size < MAX_PAGE_BYTES, f"{size} bytes for a one-hour run"
    print(f"one-hour synthetic report: {size} bytes")


def test_one_hour_report_draws_every_chart_without_errors(hour_page):
    attrs = assert_page_works(hour_page, charts=1 + 20)
    dom = attrs["_dom"]
    assert dom.count('class="site-chart"') == 20
    assert "#20" in dom


# --------------------------------------------------------------------------
# Pages from real runs


def test_page_of_a_leaking_program(tmp_path):
    out = tmp_path / "report.html"
    proc = memhound_run("-q", "--no-capture", "--html", str(out), "--json", str(tmp_path / "report.json"),
                        str(PROGRAMS / "json_leak.py"), "300", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"]["leaking"], report["verdict"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]
    attrs = assert_page_works(out, charts=1 + len(report["leaks"]))
    dom = attrs["_dom"]
    assert htmllib.escape(report["verdict"]["summary"], quote=False) in dom
    assert f"json_leak.py:{report['leaks'][0]['site']['line']}</b>" in dom
    # The page is the JSON report drawn: same figures.
    assert html.fmt_duration(report["duration_s"]) in dom


def test_page_of_a_clean_program(tmp_path):
    out = tmp_path / "clean.html"
    proc = memhound_run("-q", "--html", str(out), str(PROGRAMS / "steady.py"), "250", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    dom = assert_page_works(out, charts=1)["_dom"]
    assert "No leak sites" in dom


def test_the_report_says_where_the_page_went(tmp_path):
    out = tmp_path / "r.html"
    proc = memhound_run("--html", str(out), str(PROGRAMS / "steady.py"), "60", cwd=tmp_path)
    assert proc.returncode == 0
    assert f"memhound: HTML report written to {out}".encode() in proc.stderr
    assert out.exists()


@pytest.mark.parametrize("where", ["missing-dir", "directory"])
def test_unwritable_html_path_is_one_line_and_exit_2(tmp_path, where):
    marker = tmp_path / "program-ran"
    target = tmp_path / "no" / "such" / "r.html" if where == "missing-dir" else tmp_path
    proc = memhound_run("--html", str(target), str(PROGRAMS / "echo_io.py"), "--touch", str(marker),
                        cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == EXIT_ERROR, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("memhound: error: cannot write the HTML report"), err
    assert not marker.exists(), "the program ran although the report could not be written"
    assert proc.stdout == b""
