"""``memhound run`` gets the leak verdict right on small programs of our own.

Every program lives in tests/programs and runs for one to two seconds. Each is
run once per module (in a subprocess, ``python -m memhound run --json ...``) and
the tests below check its JSON report: leaking or not, and for a leak, that the
top-ranked site is the line marked ``# LEAK`` in the program, with a positive
rate inside its own 95 % interval and a small p-value.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest

import memhound

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
SRC = Path(memhound.__file__).resolve().parent.parent

#: Python 3.11 added co_qualname: methods are reported as "Class.method".
QUALNAMES = sys.version_info >= (3, 11)


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    parts = [str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


class _Runs:
    """Runs each (program, arguments, options) once and keeps its report."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.cache: Dict[Tuple[str, ...], Tuple[Dict[str, Any], subprocess.CompletedProcess]] = {}

    def __call__(self, program: str, *args: str, options: Tuple[str, ...] = ()) -> Dict[str, Any]:
        key = (program, *args, "|", *options)
        if key not in self.cache:
            report = self.folder / f"report-{len(self.cache)}.json"
            cmd = [sys.executable, "-m", "memhound", "run", "-q", "--json", str(report),
                   *options, str(PROGRAMS / program), *args]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(),
                                  cwd=str(self.folder), timeout=300)
            assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stderr}"
            self.cache[key] = (json.loads(report.read_text(encoding="utf-8")), proc)
        return self.cache[key][0]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> _Runs:
    return _Runs(tmp_path_factory.mktemp("run_verdict"))


def _describe(report: Dict[str, Any]) -> str:
    """The parts of a report worth seeing when an assertion fails."""
    v = report["verdict"]
    leaks = [
        f"#{l['rank']} {os.path.basename(l['site']['file'])}:{l['site']['line']} "
        f"{l['site']['function']} {l['bytes_per_epoch']:.0f} B/epoch "
        f"ci95={l['ci95'][0]:.0f}..{l['ci95'][1]:.0f} p={l['p_value']:.2g} live={l['live_bytes']:.0f}"
        for l in report["leaks"]
    ]
    return (f"leaking={v['leaking']} diagnosis={v.get('diagnosis')} epochs={report['epochs']} "
            f"summary={v['summary']!r} leaks={leaks}")


def _marker_line(path: str, marker: str) -> int:
    """The line number of the only line of ``path`` ending with ``# <marker>``."""
    with open(path, encoding="utf-8") as f:
        hits = [i for i, text in enumerate(f, start=1) if text.rstrip().endswith("# " + marker)]
    if len(hits) != 1:
        raise LookupError(f"marker {marker!r} found {len(hits)} times in {path}")
    return hits[0]


@pytest.fixture
def marker_line():
    return _marker_line


def _name(qualname: str) -> str:
    return qualname if QUALNAMES else qualname.rsplit(".", 1)[-1]


def assert_leak_at(report: Dict[str, Any], program: str, marker_line, function: str,
                   marker: str = "LEAK") -> Dict[str, Any]:
    """The run is leaking, and its rank-1 site is the marked line of ``program``,
    with a positive rate inside its interval and p < 0.05. Returns that leak."""
    info = _describe(report)
    verdict = report["verdict"]
    assert verdict["leaking"] is True, info
    assert verdict["diagnosis"] == "leak", info
    assert report["leaks"], info
    top = report["leaks"][0]
    path = str(PROGRAMS / program)
    assert top["rank"] == 1, info
    assert top["site"] == {"file": path, "line": marker_line(path, marker), "function": _name(function)}, info
    rate = top["bytes_per_epoch"]
    low, high = top["ci95"]
    assert rate > 0, info
    assert low <= rate <= high, info
    assert top["p_value"] < 0.05, info
    assert verdict["bytes_per_epoch"] >= rate, info
    return top


def assert_no_leak(report: Dict[str, Any]) -> None:
    info = _describe(report)
    assert report["verdict"]["leaking"] is False, info
    assert report["leaks"] == [], info
    assert report["verdict"]["diagnosis"] == "none", info
    assert report["verdict"]["summary"].startswith("No leak"), info


# --------------------------------------------------------------------------
# 1. A plain leak: a module-level dict that keeps every order.


def test_plain_leak_is_found_at_the_allocating_line(run, marker_line):
    assert_leak_at(run("order_index.py"), "order_index.py", marker_line, "process")


def test_plain_leak_rate_and_live_bytes_match_what_the_program_keeps(run):
    report = run("order_index.py")
    top = report["leaks"][0]
    # 320 orders, each keeping a ~6 KB bytes object (plus a small tuple).
    kept = 320 * 6050
    assert 0.7 * kept < top["live_bytes"] < 1.4 * kept, _describe(report)
    # Time epochs of equal length over a steady loop: the per-epoch rate times
    # the number of epochs is (roughly) everything the run kept.
    spread = top["bytes_per_epoch"] * report["epochs"]["count"]
    assert 0.6 * top["live_bytes"] < spread < 1.5 * top["live_bytes"], _describe(report)
    assert top["live_count"] > 0


# --------------------------------------------------------------------------
# 2. Bounded caches, full early in the run, flat afterwards.


def test_bounded_caches_filled_during_warmup_are_not_a_leak(run):
    assert_no_leak(run("bounded_cache.py"))


# --------------------------------------------------------------------------
# 3. Sawtooth: a buffer flushed every 8 iterations.


def test_sawtooth_buffer_is_not_a_leak(run):
    assert_no_leak(run("sawtooth.py"))


# --------------------------------------------------------------------------
# 4. Heavy churn with a slow leak under it.

# Each pass allocates ~0.5 MB of short-lived rows and keeps one ~1 KB string.
# At one sample per 4 KiB a 1 KB object is sampled with probability
# 1 - exp(-1000/4096) ~ 0.22 (0.39 at 2 KiB), so a 200-pass run sees only a few
# dozen survivors spread thinly over the epochs; at one sample per 512 bytes
# the probability is ~0.86 and nearly every old epoch has one. (--exact would
# also do, but makes this program about ten times slower.)
CHURN_OPTIONS = ("--sample-bytes", "512")


def test_slow_leak_under_heavy_churn_is_found(run, marker_line):
    report = run("churn_slow_leak.py", options=CHURN_OPTIONS)
    assert report["mode"]["sample_bytes"] == 512
    assert_leak_at(report, "churn_slow_leak.py", marker_line, "one_pass")
    # The churn itself (the parser's rows) is never reported as a leak.
    lines = {l["site"]["line"] for l in report["leaks"]}
    assert lines == {marker_line(str(PROGRAMS / "churn_slow_leak.py"), "LEAK")}, _describe(report)


# --------------------------------------------------------------------------
# 5. A leak on every tenth iteration only.


def test_leak_every_tenth_iteration_is_found(run, marker_line):
    report = run("every_tenth.py")
    top = assert_leak_at(report, "every_tenth.py", marker_line, "handle")
    kept = 36 * 24_000
    assert 0.7 * kept < top["live_bytes"] < 1.4 * kept, _describe(report)


# --------------------------------------------------------------------------
# 6. A leak made in another thread.


def test_leak_in_a_worker_thread_is_found_at_the_workers_line(run, marker_line):
    report = run("thread_leak.py")
    top = assert_leak_at(report, "thread_leak.py", marker_line, "worker")
    # The worker's stack starts in the worker function (it has no caller in
    # the program's own code: threading's bootstrap is below it).
    assert top["stack"][0] == top["site"], _describe(report)
    assert all(f["function"] != "<module>" or f["file"] != top["site"]["file"]
               for f in top["stack"]), top["stack"]


@pytest.mark.parametrize("ending", ["return", "exit"])
def test_leak_in_a_thread_that_outlives_the_main_thread_is_found(run, marker_line, ending):
    # The main thread starts a non-daemon worker and returns (or calls
    # sys.exit(0), as `sys.exit(main())` does); Python waits for the worker
    # before the program ends, so the run includes its ~1.5 s and the ~5 MB
    # it keeps.
    report = run("detached_worker.py", *(["exit"] if ending == "exit" else []))
    assert report["duration_s"] > 1.0, _describe(report)
    top = assert_leak_at(report, "detached_worker.py", marker_line, "worker")
    assert top["live_bytes"] > 0.7 * 300 * 16_000, _describe(report)


# --------------------------------------------------------------------------
# 7. Reference cycles: a leak with the collector off, none with it on.


def test_cycles_with_gc_disabled_are_a_leak(run, marker_line):
    report = run("gc_cycles.py", "off")
    assert_leak_at(report, "gc_cycles.py", marker_line, "make_pairs", marker="CYCLE")


def test_cycles_collected_by_the_gc_are_not_a_leak(run):
    assert_no_leak(run("gc_cycles.py", "on"))


# --------------------------------------------------------------------------
# 8. --epoch-on: epochs are calls of a function.

#: What epoch_loop.py keeps per call of Worker.step: a 5000-byte bytearray
#: (~5060 bytes with its header) and a slot in a list.
PER_CALL = 5070


@pytest.mark.parametrize("spec", ["handle", "__main__:Worker.step", "Worker.step"])
def test_epoch_on_function_gives_per_call_rates(run, marker_line, spec):
    report = run("epoch_loop.py", options=("--epoch-on", spec))
    info = _describe(report)
    epochs = report["epochs"]
    assert epochs["kind"] == "function", info
    assert epochs["units_per_epoch"] >= 1, info
    # 400 calls: every call closes one unit, and units are grouped into
    # between 64 and 128 epochs of equal size.
    assert 64 <= epochs["count"] <= 128, info
    assert abs(epochs["count"] * epochs["units_per_epoch"] - 400) <= epochs["units_per_epoch"] + 1, info
    top = assert_leak_at(report, "epoch_loop.py", marker_line, "Worker.step")
    # Rates are per call, not per (merged) epoch.
    assert 0.75 * PER_CALL < top["bytes_per_epoch"] < 1.3 * PER_CALL, info
    assert "per call" in report["verdict"]["summary"], info


def test_epoch_on_a_clean_loop_is_not_a_leak(run):
    report = run("steady.py", options=("--epoch-on", "step"))
    info = _describe(report)
    assert report["epochs"]["kind"] == "function", info
    assert report["epochs"]["count"] >= 64, info
    assert_no_leak(report)


def test_manual_epochs_are_the_programs_own_units(run, marker_line):
    report = run("manual_epochs.py", options=("--manual-epochs",))
    info = _describe(report)
    epochs = report["epochs"]
    assert epochs["kind"] == "manual", info
    assert epochs["units_per_epoch"] >= 1, info
    # 200 units, grouped like --epoch-on's calls into 64 to 128 epochs, so the
    # tables (one row per stack and epoch) stay bounded however long the run.
    assert 64 <= epochs["count"] <= 128, info
    assert abs(epochs["count"] * epochs["units_per_epoch"] - 200) <= epochs["units_per_epoch"] + 1, info
    top = assert_leak_at(report, "manual_epochs.py", marker_line, "unit")
    # bytes(3000) is ~3030 bytes with its header, plus a list slot.
    assert 0.75 * 3040 < top["bytes_per_epoch"] < 1.3 * 3040, info


def test_epoch_on_with_another_modules_name_closes_no_epochs(run):
    # Worker.step exists, but not in a module called "elsewhere": no epoch
    # ends, and the verdict says the run is too short to judge.
    report = run("epoch_loop.py", options=("--epoch-on", "elsewhere:Worker.step"))
    info = _describe(report)
    assert report["epochs"]["kind"] == "function", info
    assert report["epochs"]["count"] <= 1, info
    assert report["verdict"]["leaking"] is False, info
    assert report["verdict"]["diagnosis"] == "too-short", info


# --------------------------------------------------------------------------
# 9. Native growth under a flat Python heap.


def test_native_growth_is_diagnosed_as_native_not_a_python_leak(run):
    report = run("native_growth.py")
    info = _describe(report)
    verdict = report["verdict"]
    assert verdict["leaking"] is False, info
    assert report["leaks"] == [], info
    assert verdict["diagnosis"] == "native", info
    assert "RSS" in verdict["summary"], info
    # ~100 KB per iteration, a few ms each: well over a MB per second.
    assert verdict["rss_bytes_per_second"] > 1e6, info
    assert abs(verdict["tracked_bytes_per_second"]) < 0.25 * verdict["rss_bytes_per_second"], info
    assert report["memory"]["final_rss"] - report["timeline"][0]["rss"] > 15e6, info
