"""Epochs close on allocation as well as on time, so a run of 50 ms that
allocates a few megabytes has enough epochs to be judged: a leak in it is found
at its line, its clean twin is called clean (not "too short"), and it gets many
more epochs than 10 ms windows of wall time alone would give."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
from markers import expected_name, marker_line

import memhound

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
SRC = Path(memhound.__file__).resolve().parent.parent
WINDOW = 0.01  # memhound run's time window


def _run(tmp: Path, program: str, *args: str, capture: bool = False,
         options: Tuple[str, ...] = ()) -> Dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    report = tmp / f"{program}.json"
    out = ["-f", "-o", str(tmp / f"{program}.db")] if capture else ["--no-capture"]
    cmd = [sys.executable, "-m", "memhound", "run", "-q", "--no-retention", "--json", str(report),
           *out, *options, str(PROGRAMS / program), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp), timeout=300)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stderr}"
    return json.loads(report.read_text(encoding="utf-8"))


def _describe(r: Dict[str, Any]) -> str:
    return (f"duration={r['duration_s']:.3f}s epochs={r['epochs']} verdict={r['verdict']} "
            f"leaks={[(l['site'], l['p_value']) for l in r['leaks']]}")


@pytest.fixture(scope="module")
def leak_run(tmp_path_factory) -> Dict[str, Any]:
    return _run(tmp_path_factory.mktemp("alloc_epochs"), "short_leak.py", capture=True)


def test_a_50ms_leak_is_judged_leaking_at_its_line(leak_run):
    info = _describe(leak_run)
    verdict = leak_run["verdict"]
    assert verdict["leaking"] is True, info
    assert verdict["diagnosis"] == "leak", info
    top = leak_run["leaks"][0]
    path = str(PROGRAMS / "short_leak.py")
    assert top["site"] == {"file": path, "line": marker_line(path, "LEAK"),
                           "function": expected_name("handle")}, info
    assert top["p_value"] < 0.05, info
    # Judged on epochs enough to spread its survivors over, not on the few that
    # the interpreter's start-up and five 10 ms windows give.
    assert leak_run["epochs"]["count"] >= 50, info
    assert len(top["series"]) == leak_run["epochs"]["count"], info
    # 2,000 buffers of ~1,080 bytes each (a bytearray's header and its 1 KB).
    assert 0.6 * 2000 * 1080 < top["live_bytes"] < 1.5 * 2000 * 1080, info


def _stride(capture: str) -> int:
    db = sqlite3.connect(capture)
    try:
        (stride,) = db.execute("SELECT stride FROM process").fetchone()
    finally:
        db.close()
    return int(stride)


def test_heavy_allocation_gives_more_epochs_than_the_wall_clock(leak_run):
    info = _describe(leak_run)
    epochs = leak_run["epochs"]
    assert epochs["clock"] == "time+alloc", info
    # Every closed epoch holds `stride` units; the wall clock gives one per 10 ms
    # window, however slow the machine. The ~14 MB the program allocates are
    # about 110 more units of 128 KiB.
    units = (epochs["count"] - 1) * _stride(leak_run["capture"])
    by_time = leak_run["duration_s"] / WINDOW + 1
    assert units >= by_time + 40, (units, by_time, info)
    # Whatever the machine's speed: 110 units or more, merged at 128.
    assert 50 <= epochs["count"] <= 128, info
    evidence = leak_run["verdict"]["evidence"]
    assert evidence["old_epochs"] >= 3 and evidence["old_samples"] >= 64, info


def test_the_capture_says_which_clocks_closed_epochs(leak_run, tmp_path_factory):
    path = leak_run["capture"]
    db = sqlite3.connect(path)
    try:
        (meta,) = db.execute("SELECT meta FROM process").fetchone()
    finally:
        db.close()
    meta = json.loads(meta)
    assert meta["epoch_clock"] == "time+alloc", meta
    assert meta["alloc_window"] == 64 * meta["sample_bytes"], meta
    # And a report rebuilt from the capture says it too.
    out = Path(path).with_suffix(".report.json")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run([sys.executable, "-m", "memhound", "report", "-q", "--json", str(out), path],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["epochs"]["clock"] == "time+alloc"


def test_a_50ms_clean_run_is_judged_clean_not_too_short(tmp_path):
    report = _run(tmp_path, "short_clean.py")
    info = _describe(report)
    assert report["verdict"]["leaking"] is False, info
    assert report["leaks"] == [], info
    assert report["verdict"]["diagnosis"] == "none", info
    assert report["epochs"]["count"] >= 50, info  # ~14 MB at 128 KiB an epoch


def test_a_run_too_short_to_judge_says_what_would_be_enough(tmp_path):
    # Three calls, each one epoch: too few epochs after warm-up to judge.
    report = _run(tmp_path, "short_leak.py", "3", options=("--epoch-on", "handle"))
    info = _describe(report)
    verdict = report["verdict"]
    assert verdict["diagnosis"] == "too-short", info
    assert verdict["evidence"]["old_epochs"] < 3, info
    enough = verdict["evidence"]["enough"]
    assert enough["run_length_factor"] >= 2 and enough["more_seconds"] > 0, info
    assert enough["more_units"] >= 3, info
    assert f"about {enough['more_units']} more calls" in verdict["summary"], info
