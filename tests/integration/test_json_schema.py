"""The JSON report of ``memhound run --json`` follows schema 1 (DESIGN.md, "The
JSON report (schema 1)"): every documented key with its type, ``site`` the
innermost frame of the user's own code with an absolute path, ``stack`` the
Python stack innermost first, a timeline of t/rss/heap/tracked points, and an
empty ``leaks`` list when nothing leaks. ``--fail-on-leak`` turns a leak into
exit code 3 and leaves every other run's exit code alone.
"""
from __future__ import annotations

import json
import numbers
import os
import platform
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import memhound
from memhound.cli.run import RUN_SAMPLE_BYTES

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
SRC = Path(memhound.__file__).resolve().parent.parent
STDLIB = os.path.normcase(os.path.abspath(sysconfig.get_paths()["stdlib"])) + os.sep

TOP_LEVEL = {"memhound": str, "schema": int, "argv": list, "python": str, "pid": int,
             "duration_s": numbers.Real, "mode": dict, "epochs": dict, "memory": dict,
             "verdict": dict, "leaks": list, "timeline": list}


def _marker_line(path: Path, marker: str) -> int:
    with open(path, encoding="utf-8") as f:
        hits = [i for i, text in enumerate(f, start=1) if text.rstrip().endswith("# " + marker)]
    if len(hits) != 1:
        raise LookupError(f"marker {marker!r} found {len(hits)} times in {path}")
    return hits[0]


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    parts = [str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _reject_constant(name: str) -> Any:
    raise ValueError(f"the report contains {name}, which is not JSON")


class Run:
    def __init__(self, report: Dict[str, Any], returncode: int, pid: int, wall: float,
                 stdout: str, stderr: str, folder: Path):
        self.report, self.returncode, self.pid, self.wall = report, returncode, pid, wall
        self.stdout, self.stderr, self.folder = stdout, stderr, folder


def _run(folder: Path, program: str, *args: str, options: Tuple[str, ...] = ()) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "report.json"
    cmd = [sys.executable, "-m", "memhound", "run", "-q", "--json", str(report), *options,
           str(PROGRAMS / program), *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=str(folder))
    out, err = proc.communicate(timeout=300)
    wall = time.monotonic() - t0
    assert report.exists(), f"{cmd} wrote no report (exit {proc.returncode}):\n{err}"
    data = json.loads(report.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    return Run(data, proc.returncode, proc.pid, wall, out, err, folder)


@pytest.fixture(scope="module")
def leak_run(tmp_path_factory) -> Run:
    return _run(tmp_path_factory.mktemp("schema") / "leak", "json_leak.py", "300",
                options=("--fail-on-leak",))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Run:
    return _run(tmp_path_factory.mktemp("schema") / "clean", "steady.py", "250",
                options=("--fail-on-leak", "--sample-bytes", "2048"))


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_frame(frame: Dict[str, Any]) -> None:
    assert set(frame) >= {"file", "line", "function"}, frame
    assert isinstance(frame["file"], str) and frame["file"], frame
    assert frame["file"].startswith("<") or os.path.isabs(frame["file"]), frame
    assert _is_int(frame["line"]) and frame["line"] >= 0, frame
    assert isinstance(frame["function"], str) and frame["function"], frame


def check_schema(report: Dict[str, Any]) -> None:
    """Every key and type DESIGN.md documents for schema 1."""
    for key, typ in TOP_LEVEL.items():
        assert key in report, f"missing top-level key {key!r}"
        assert isinstance(report[key], typ) and not isinstance(report[key], bool), (key, report[key])
    assert report["schema"] == 1
    assert report["memhound"] == memhound.__version__
    assert report["argv"] and all(isinstance(a, str) for a in report["argv"])
    assert report["duration_s"] > 0

    mode = report["mode"]
    assert _is_int(mode["sample_bytes"]) and mode["sample_bytes"] >= 1, mode
    assert mode["native"] is False, mode

    epochs = report["epochs"]
    assert epochs["kind"] in ("time", "function", "manual"), epochs
    assert _is_int(epochs["count"]) and epochs["count"] >= 1, epochs

    memory = report["memory"]
    for key in ("peak_rss", "final_rss", "peak_tracked", "final_tracked"):
        assert _is_int(memory[key]) and memory[key] >= 0, memory
    assert memory["final_rss"] > 0, memory
    assert memory["peak_rss"] >= memory["final_rss"], memory
    assert memory["peak_tracked"] >= memory["final_tracked"], memory

    verdict = report["verdict"]
    assert isinstance(verdict["leaking"], bool), verdict
    assert _is_number(verdict["bytes_per_epoch"]), verdict
    assert _is_number(verdict["bytes_per_second"]), verdict
    assert isinstance(verdict["summary"], str) and verdict["summary"].strip(), verdict
    assert "\n" not in verdict["summary"], verdict

    for rank, leak in enumerate(report["leaks"], start=1):
        assert leak["rank"] == rank, [l["rank"] for l in report["leaks"]]
        check_frame(leak["site"])
        assert not leak["site"]["file"].startswith("<"), leak["site"]
        assert isinstance(leak["stack"], list) and leak["stack"], leak
        for frame in leak["stack"]:
            check_frame(frame)
        assert isinstance(leak["native_stack"], list), leak
        assert _is_number(leak["bytes_per_epoch"]), leak
        ci = leak["ci95"]
        assert isinstance(ci, list) and len(ci) == 2 and all(_is_number(x) for x in ci), ci
        assert ci[0] <= leak["bytes_per_epoch"] <= ci[1], leak
        assert _is_number(leak["p_value"]) and 0.0 <= leak["p_value"] <= 1.0, leak
        assert _is_number(leak["live_bytes"]) and leak["live_bytes"] >= 0, leak
        assert _is_int(leak["live_count"]) and leak["live_count"] >= 0, leak
        assert leak["type"] is None or isinstance(leak["type"], str), leak
        assert isinstance(leak["retained_by"], list), leak
        assert all(isinstance(r, str) for r in leak["retained_by"]), leak
        # Live bytes per epoch (additive field): one value per epoch.
        series = leak["series"]
        assert isinstance(series, list) and all(_is_int(b) for b in series), leak
        assert len(series) == report["epochs"]["count"], (len(series), report["epochs"])
    rates = [l["bytes_per_epoch"] for l in report["leaks"]]
    assert rates == sorted(rates, reverse=True), rates

    timeline = report["timeline"]
    assert timeline, "empty timeline"
    for point in timeline:
        assert set(point) >= {"t", "rss", "heap", "tracked"}, point
        assert _is_number(point["t"]) and point["t"] >= 0, point
        assert _is_int(point["rss"]) and point["rss"] > 0, point
        assert _is_int(point["tracked"]) and point["tracked"] >= 0, point
        if platform.libc_ver()[0] != "glibc":  # no mallinfo2 in this C library
            assert point["heap"] is None or _is_int(point["heap"]), point
        else:
            assert _is_int(point["heap"]) and point["heap"] > 0, point
    ts = [p["t"] for p in timeline]
    assert ts == sorted(ts), "timeline is not in time order"
    assert ts[-1] <= report["duration_s"] + 1.0


# --------------------------------------------------------------------------


def test_leak_report_has_every_schema_1_field(leak_run):
    check_schema(leak_run.report)


def test_clean_report_has_every_schema_1_field(clean_run):
    check_schema(clean_run.report)


def test_run_facts_describe_this_run(leak_run):
    report = leak_run.report
    assert report["argv"] == [str(PROGRAMS / "json_leak.py"), "300"]
    assert report["python"] == platform.python_version()
    # The program runs as itself, in a process of its own that memhound started.
    assert report["pid"] != leak_run.pid
    assert report["processes"][0]["pid"] == report["pid"]
    assert report["processes"][0]["ppid"] == leak_run.pid
    assert 0 < report["duration_s"] <= leak_run.wall
    assert report["mode"]["sample_bytes"] == RUN_SAMPLE_BYTES  # memhound run's default
    assert report["epochs"]["kind"] == "time"
    assert report["epochs"]["count"] >= 6
    # The program's stdout went through; only the report went to the file.
    assert leak_run.stdout.startswith("loaded 300 documents ("), leak_run.stdout
    left = [p.name for p in leak_run.folder.iterdir()
            if p.name != "report.json" and not (p.name.startswith("memhound-json_leak.") and p.name.endswith(".db"))]
    assert not left, f"the report's temporary file was left behind: {left}"


def test_sample_bytes_option_is_reported(clean_run):
    assert clean_run.report["mode"]["sample_bytes"] == 2048


def test_exact_mode_is_reported_as_one_byte(tmp_path):
    run = _run(tmp_path, "steady.py", "20", options=("--exact",))
    assert run.returncode == 0, run.stderr
    assert run.report["mode"]["sample_bytes"] == 1


def test_site_is_the_innermost_user_frame_and_stack_is_innermost_first(leak_run):
    report = leak_run.report
    assert report["verdict"]["leaking"] is True, report["verdict"]
    program = str(PROGRAMS / "json_leak.py")
    top = report["leaks"][0]
    assert top["site"]["file"] == program, top["site"]
    assert top["site"]["line"] == _marker_line(PROGRAMS / "json_leak.py", "LEAK"), top["site"]
    stack: List[Dict[str, Any]] = top["stack"]
    # The documents are built inside json.loads: the stack starts in the
    # standard library, and the site is the first frame of the program's own.
    assert os.path.normcase(stack[0]["file"]).startswith(STDLIB), stack[0]
    assert os.path.basename(os.path.dirname(stack[0]["file"])) == "json", stack[0]
    first_user = next(i for i, f in enumerate(stack) if f["file"] == program)
    assert all(os.path.normcase(f["file"]).startswith(STDLIB) for f in stack[:first_user]), stack
    assert stack[first_user] == top["site"], stack
    # Then the callers, innermost first: main's call line, the module's call of main().
    callers = [(f["line"], f["function"]) for f in stack[first_user + 1:first_user + 3]]
    assert callers == [(_marker_line(PROGRAMS / "json_leak.py", "CALLS"), "main"),
                       (_marker_line(PROGRAMS / "json_leak.py", "ENTRY"), "<module>")], stack
    # Sites are never memhound's own code, nor the standard library.
    for leak in report["leaks"]:
        assert not os.path.normcase(leak["site"]["file"]).startswith(STDLIB), leak["site"]
        assert not leak["site"]["file"].startswith(str(SRC)), leak["site"]


def test_verdict_rate_is_the_sum_of_the_leaks(leak_run):
    report = leak_run.report
    total = sum(l["bytes_per_epoch"] for l in report["leaks"])
    assert report["verdict"]["bytes_per_epoch"] == pytest.approx(total, rel=1e-6)
    assert report["verdict"]["bytes_per_second"] > 0


def test_timeline_follows_the_leak(leak_run):
    timeline = leak_run.report["timeline"]
    assert len(timeline) >= 9
    n = len(timeline)
    early = max(p["tracked"] for p in timeline[: n // 4])
    late = min(p["tracked"] for p in timeline[-(n // 4):])
    # 300 documents of ~4 KB or more each are kept: over a megabyte.
    assert late - early > 0.5e6, (early, late)


def test_no_leak_means_leaking_false_and_empty_leaks(clean_run):
    report = clean_run.report
    assert report["verdict"]["leaking"] is False, report["verdict"]
    assert report["leaks"] == []
    assert report["verdict"]["bytes_per_epoch"] == 0


def test_fail_on_leak_exits_3_on_a_leak(leak_run):
    assert leak_run.report["verdict"]["leaking"] is True
    assert leak_run.returncode == 3, leak_run.stderr


def test_fail_on_leak_exits_0_without_a_leak(clean_run):
    assert clean_run.report["verdict"]["leaking"] is False
    assert clean_run.returncode == 0, clean_run.stderr


def test_program_status_is_reported_for_a_completed_run(clean_run):
    program = clean_run.report.get("program")
    assert program == {"status": "completed", "exit_code": 0, "complete": True,
                       "signal": None, "ended": "exited with code 0"}
