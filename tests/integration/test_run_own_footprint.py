"""memhound's own memory is never the program's, and RSS far above tracked memory
is always said.

memhound measures the memory it holds itself (its tables, its flush buffers, its
capture writer's SQLite heap) with every timeline point, stores it in the capture
(``timeline.own``) and takes it out of RSS before judging RSS growth. A clean
program that makes memhound's tables and capture grow (thousands of distinct
stacks) must not be called "native"; a program whose RSS grows far faster than
anything Python allocates gets both rates in the JSON and a sentence in the
terminal report, whether or not a Python site also leaks."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest

from markers import marker_line
from test_run_cli import PROGRAMS, _env


def _run(tmp: Path, program: str, *args: str) -> Tuple[Dict[str, Any], str, Path]:
    """``memhound run`` with the capture on: (JSON report, terminal report, capture)."""
    report, capture = tmp / "report.json", tmp / "run.db"
    cmd = [sys.executable, "-m", "memhound", "run", "--json", str(report), "-o", str(capture),
           str(PROGRAMS / program), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=str(tmp),
                          timeout=300)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stderr}"
    return json.loads(report.read_text(encoding="utf-8")), proc.stderr, capture


def _describe(report: Dict[str, Any]) -> str:
    v = report["verdict"]
    keys = ("leaking", "diagnosis", "bytes_per_second", "rss_bytes_per_second",
            "raw_rss_bytes_per_second", "own_bytes_per_second", "tracked_bytes_per_second",
            "rss_note", "summary")
    return repr({k: v.get(k) for k in keys})


@pytest.fixture(scope="module")
def many_stacks(tmp_path_factory) -> Tuple[Dict[str, Any], str, Path]:
    return _run(tmp_path_factory.mktemp("many_stacks"), "many_stacks.py", "3")


@pytest.fixture(scope="module")
def two_level_leak(tmp_path_factory) -> Tuple[Dict[str, Any], str, Path]:
    return _run(tmp_path_factory.mktemp("two_level"), "native_and_python_leak.py", "3")


def test_memhounds_own_growth_is_not_a_native_diagnosis(many_stacks):
    report, terminal, _capture = many_stacks
    info = _describe(report)
    v = report["verdict"]
    assert v["leaking"] is False, info
    assert v["diagnosis"] == "none", info
    assert v["rss_note"] is None, info
    assert "RSS grows" not in terminal, terminal
    assert "No leak found" in v["summary"], info
    # It is memhound's memory that grew, and the report knows it.
    assert v["own_bytes_per_second"] > 0, info
    assert report["timeline"][-1]["own"] > report["timeline"][0]["own"] > 0


def test_the_capture_holds_memhounds_own_memory(many_stacks):
    _report, _terminal, capture = many_stacks
    db = sqlite3.connect(str(capture))
    try:
        columns = [r[1] for r in db.execute("PRAGMA table_info(timeline)")]
        rows = db.execute("SELECT own FROM timeline").fetchall()
    finally:
        db.close()
    assert "own" in columns
    assert rows and all(own is not None and own > 0 for (own,) in rows)


def test_the_report_from_the_capture_reaches_the_same_conclusion(many_stacks, tmp_path):
    _report, _terminal, capture = many_stacks
    out = tmp_path / "from_capture.json"
    proc = subprocess.run([sys.executable, "-m", "memhound", "report", "-q", "--json", str(out),
                           str(capture)], capture_output=True, text=True, env=_env(),
                          cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["verdict"]["diagnosis"] == "none", _describe(report)
    assert all(p["own"] is not None and p["own"] > 0 for p in report["timeline"])


def test_rss_far_above_tracked_gives_both_rates_and_a_sentence(two_level_leak):
    report, terminal, _capture = two_level_leak
    info = _describe(report)
    v = report["verdict"]
    # ~100 KB malloc'd per iteration of a few ms: MBs per second, against about
    # 1 KB per iteration tracked.
    assert v["rss_bytes_per_second"] > 4e6, info
    tracked = v["bytes_per_second"] if v["leaking"] else v["tracked_bytes_per_second"]
    assert tracked > 0, info
    assert v["rss_to_tracked"] > 10, info
    assert abs(v["rss_to_tracked"] - v["rss_bytes_per_second"] / tracked) < 1e-6 * v["rss_to_tracked"]
    note = v["rss_note"]
    assert note and note.startswith("RSS grows at "), info
    assert "the tracked rate" in note and "outside Python's allocators" in note, info
    # Whatever the verdict on Python allocations, the terminal says it too.
    assert note in " ".join(terminal.split()), terminal


def test_the_python_leak_is_still_found_at_its_line(two_level_leak):
    report, terminal, _capture = two_level_leak
    info = _describe(report)
    program = str(PROGRAMS / "native_and_python_leak.py")
    assert report["verdict"]["leaking"] is True, info
    top = report["leaks"][0]["site"]
    assert (top["file"], top["line"]) == (program, marker_line(program, "LEAK")), info
    assert report["verdict"]["summary"].startswith("Leaking"), info
    # The summary comes first, the RSS sentence right after it.
    lines = [line.strip() for line in terminal.splitlines() if line.strip()]
    first = next(i for i, line in enumerate(lines) if line.startswith("Leaking"))
    assert lines[first + 1].startswith("RSS grows at "), terminal


def test_an_old_capture_without_the_own_column_is_read(many_stacks, tmp_path):
    _report, _terminal, capture = many_stacks
    old = tmp_path / "old.db"
    src = sqlite3.connect(str(capture))
    dst = sqlite3.connect(str(old))
    try:
        src.backup(dst)
    finally:
        src.close()
    try:
        # The timeline table as memhound wrote it before it measured itself.
        dst.executescript(
            "CREATE TABLE timeline_old(pid INTEGER NOT NULL, t REAL NOT NULL,"
            " rss INTEGER NOT NULL, heap INTEGER, tracked REAL NOT NULL, PRIMARY KEY(pid, t))"
            " WITHOUT ROWID;"
            "INSERT INTO timeline_old SELECT pid, t, rss, heap, tracked FROM timeline;"
            "DROP TABLE timeline; ALTER TABLE timeline_old RENAME TO timeline;")
        dst.commit()
        assert "own" not in [r[1] for r in dst.execute("PRAGMA table_info(timeline)")]
    finally:
        dst.close()
    from memhound import capture as capture_mod

    run = capture_mod.load(str(old))
    assert run.result.timeline and all(p[4] is None for p in run.result.timeline)
    out = tmp_path / "old.json"
    proc = subprocess.run([sys.executable, "-m", "memhound", "report", "-q", "--json", str(out),
                           str(old)], capture_output=True, text=True, env=_env(),
                          cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert all(p["own"] is None for p in report["timeline"])
    assert report["verdict"]["own_bytes_per_second"] in (0, None)
