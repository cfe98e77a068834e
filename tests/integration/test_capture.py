"""The capture file: written by the core's background thread about once a
second, it outlives the process. ``memhound report`` rebuilds the verdict from it
after a kill -9, after a kill at a memory limit (what the OOM killer does), and
while the process still runs; a forked child writes its own rows; ``memhound
diff`` compares two captures. Bad captures get one line and exit 2."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import pytest

from markers import marker_line
from test_run_cli import PROGRAMS, _env, assert_one_line_error, memhound_run

PROGRAM = PROGRAMS / "capture_leak.py"


def _line(marker: str) -> int:
    return marker_line(str(PROGRAM), marker)


def memhound(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memhound", *args], capture_output=True,
                          env=_env(), cwd=str(cwd), timeout=timeout)


def report_json(capture: Path, cwd: Path, *extra: str) -> Dict[str, Any]:
    out = cwd / f"report-{len(list(cwd.iterdir()))}.json"
    proc = memhound("report", "-q", "--json", str(out), *extra, str(capture), cwd=cwd)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(out.read_text())


def flushes(capture: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{capture}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT max(flushes) FROM process").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0) if row else 0


def start_forever(capture: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "memhound", "run", "-q", "-o", str(capture),
                             str(PROGRAM), "forever"], env=_env(), cwd=str(cwd),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def program_pid(launcher: subprocess.Popen) -> int:
    """The program's process: memhound run's only child."""
    wait_for(lambda: _children(launcher.pid))
    return _children(launcher.pid)[0]


def _children(pid: int) -> list:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def killed_run(capture: Path, cwd: Path, flushed: int) -> None:
    """Run the leaking program forever with a capture, and SIGKILL the program
    (what the OOM killer does) once the capture holds ``flushed`` flushes:
    memhound dies of the same signal after its report."""
    proc = start_forever(capture, cwd)
    try:
        pid = program_pid(proc)
        wait_for(lambda: flushes(capture) >= flushed)
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def wait_for(cond, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.05)


def assert_leak_at_build(report: Dict[str, Any]) -> None:
    assert report["verdict"]["leaking"] is True, report["verdict"]
    site = report["leaks"][0]["site"]
    assert site["file"] == str(PROGRAM) and site["line"] == _line("LEAK"), site
    assert site["function"] == "build"


# --------------------------------------------------------------------------
# crash safety


def test_report_after_kill_9_shows_the_leak_up_to_the_last_flush(tmp_path):
    cap = tmp_path / "run.db"
    killed_run(cap, tmp_path, 7)
    report = report_json(cap, tmp_path)
    assert_leak_at_build(report)
    assert report["program"]["status"] == "signal" and report["program"]["signal"] == signal.SIGKILL
    assert report["program"]["complete"] is False
    assert "killed by SIGKILL" in report["verdict"]["summary"]
    # Seven flushes: 1/16 s apart at first, doubling to one a second.
    assert report["duration_s"] >= 1.9
    assert len(report["timeline"]) > 100
    # The terminal report says the same, on one run of the command.
    text = memhound("report", str(cap), cwd=tmp_path)
    assert text.returncode == 0
    assert "build" in text.stdout.decode() and "killed" in text.stdout.decode()


def test_report_after_a_kill_at_a_memory_limit(tmp_path):
    """What the kernel's OOM killer does: SIGKILL once the process passes a
    memory limit (here a watcher reading its RSS, as a cgroup limit would)."""
    cap = tmp_path / "oom.db"
    limit = 160 << 20
    proc = start_forever(cap, tmp_path)
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        pid = program_pid(proc)

        def over_limit() -> bool:
            try:
                with open(f"/proc/{pid}/statm") as f:
                    return int(f.read().split()[1]) * page > limit
            except (OSError, ValueError):
                return False
        wait_for(over_limit, timeout=120)
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    report = report_json(cap, tmp_path)
    assert_leak_at_build(report)
    assert report["program"]["status"] == "signal" and report["program"]["signal"] == signal.SIGKILL
    # The capture holds the growth up to the last flush: the peak RSS it saw is
    # most of the way to the limit (the last second may be lost).
    assert report["memory"]["peak_rss"] > 0.4 * limit


def test_report_on_a_capture_still_being_written_is_labelled_partial(tmp_path):
    cap = tmp_path / "live.db"
    proc = start_forever(cap, tmp_path)
    try:
        wait_for(lambda: flushes(cap) >= 3)
        report = report_json(cap, tmp_path)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert report["program"]["status"] == "running"
    assert report["program"]["complete"] is False
    assert "still running" in report["verdict"]["summary"]
    assert_leak_at_build(report)


# --------------------------------------------------------------------------
# a whole run: the capture holds what the run's own report says


def test_capture_rebuilds_the_runs_own_report(tmp_path):
    run_json = tmp_path / "run.json"
    proc = memhound_run("-q", "-o", "job.db", "--json", str(run_json), str(PROGRAM), "150", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    a = json.loads(run_json.read_text())
    b = report_json(tmp_path / "job.db", tmp_path)
    assert_leak_at_build(a)
    assert_leak_at_build(b)
    assert b["program"] == a["program"] and b["program"]["status"] == "completed"
    assert b["argv"] == a["argv"] and b["pid"] == a["pid"] and b["python"] == a["python"]
    assert b["mode"] == a["mode"]
    assert b["epochs"]["count"] == a["epochs"]["count"]
    assert b["capture"] == a["capture"] == str(tmp_path / "job.db")
    la, lb = a["leaks"][0], b["leaks"][0]
    assert la["stack"] == lb["stack"]
    assert lb["live_bytes"] == pytest.approx(la["live_bytes"], rel=0.02)
    assert lb["bytes_per_epoch"] == pytest.approx(la["bytes_per_epoch"], rel=0.05)
    assert b["memory"]["peak_rss"] == a["memory"]["peak_rss"]
    # The retention analysis and the census, done at the end of the run while
    # the objects were alive, are kept in the capture and come back with it.
    assert la["retained_by"] and lb["retained_by"] == la["retained_by"], (la, lb)
    assert "_records" in la["retained_by"][0]
    assert lb["type"] == la["type"] == "bytes"
    assert lb["retention"] == la["retention"]
    assert b["census"] == a["census"]


def test_default_capture_name_is_printed_and_written_here(tmp_path):
    proc = memhound_run(str(PROGRAM), "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    caps = list(tmp_path.glob("memhound-capture_leak.*.db"))
    assert len(caps) == 1, list(tmp_path.iterdir())
    assert f"capture written to {caps[0].name}" in proc.stderr.decode()
    assert not list(tmp_path.glob("*.db-wal"))  # the log is folded into the file at the end


def test_no_capture_writes_no_file(tmp_path):
    proc = memhound_run("-q", "--no-capture", str(PROGRAM), "20", cwd=tmp_path)
    assert proc.returncode == 0
    assert not list(tmp_path.glob("*.db"))


def test_existing_capture_is_not_overwritten_without_force(tmp_path):
    (tmp_path / "x.db").write_bytes(b"keep me")
    line = assert_one_line_error(memhound_run("-o", "x.db", str(PROGRAM), "5", cwd=tmp_path))
    assert "already exists" in line and "--force" in line
    assert (tmp_path / "x.db").read_bytes() == b"keep me"
    proc = memhound_run("-q", "-f", "-o", "x.db", str(PROGRAM), "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert report_json(tmp_path / "x.db", tmp_path)["program"]["status"] == "completed"


def test_unwritable_capture_path_is_one_line_and_the_program_does_not_run(tmp_path):
    line = assert_one_line_error(memhound_run("-o", str(tmp_path / "no" / "x.db"), str(PROGRAM), "5",
                                              cwd=tmp_path))
    assert "capture" in line


def test_fork_writes_the_childs_rows_under_its_own_pid(tmp_path):
    proc = memhound_run("-q", "-o", "fork.db", str(PROGRAM), "fork", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().count("parent done") == 1
    db = sqlite3.connect(str(tmp_path / "fork.db"))
    procs = db.execute("SELECT pid, ppid, status FROM process ORDER BY started").fetchall()
    sites = dict(db.execute("SELECT pid, count(*) FROM site GROUP BY pid").fetchall())
    db.close()
    assert len(procs) == 2, procs
    (parent, ppid0, st0), (child, ppid1, st1) = procs
    assert ppid1 == parent and child != parent
    assert st0 == "exited" and st1 in ("exited", "os._exit")
    assert sites[parent] > 0 and sites[child] > 0
    # Each process's report names its own leak.
    parent_report = report_json(tmp_path / "fork.db", tmp_path)
    child_report = report_json(tmp_path / "fork.db", tmp_path, "--pid", str(child))
    assert parent_report["pid"] == parent and child_report["pid"] == child
    assert_leak_at_build(parent_report)
    child_sites = [(lk["site"]["function"], lk["site"]["line"]) for lk in child_report["leaks"]]
    assert ("child_work", _line("CHILD LEAK")) in child_sites, child_report["verdict"]


# --------------------------------------------------------------------------
# memhound diff


def test_diff_shows_what_grew_what_is_new_and_what_went_away(tmp_path):
    prog = tmp_path / "phases.py"
    prog.write_text(
        "import sys\n"
        "kept = []\n"
        "def common(n):\n"
        "    for _ in range(n): kept.append(bytearray(2000))  # COMMON\n"
        "def only_a():\n"
        "    for _ in range(400): kept.append(bytearray(3000))  # ONLY A\n"
        "def only_b():\n"
        "    for _ in range(400): kept.append(bytearray(5000))  # ONLY B\n"
        "if sys.argv[1] == 'a':\n"
        "    common(300); only_a()\n"
        "else:\n"
        "    common(1500); only_b()\n")
    for side in ("a", "b"):
        proc = memhound_run("-q", "--exact", "-o", f"{side}.db", str(prog), side, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
    out = tmp_path / "diff.json"
    proc = memhound("diff", "--json", str(out), "a.db", "b.db", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    sites = {(s["site"]["function"], s["site"]["line"]): s for s in json.loads(out.read_text())["sites"]
             if s["site"]["file"] == str(prog)}
    common, a_only, b_only = sites[("common", 4)], sites[("only_a", 6)], sites[("only_b", 8)]
    assert common["status"] == "grew" and common["delta_bytes"] > 1_500_000
    assert b_only["status"] == "new" and b_only["b_bytes"] > 1_900_000
    assert a_only["status"] == "gone" and a_only["a_bytes"] > 1_100_000
    text = proc.stdout.decode()
    assert "grew" in text and "new" in text and "went away" in text
    assert "only_b" in text


def test_diff_of_a_bad_capture_is_one_line(tmp_path):
    (tmp_path / "a.db").write_text("not a capture")
    proc = memhound("diff", "a.db", "b.db", cwd=tmp_path)
    assert_one_line_error(proc)


def test_report_exports_pprof_and_speedscope_from_the_capture(tmp_path):
    from test_pprof_go import go_pprof

    proc = memhound_run("-q", "-o", "job.db", str(PROGRAM), "80", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    proc = memhound("report", "-q", "--pprof", "live.pb.gz", "--speedscope", "live.json", "job.db",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    top = go_pprof(tmp_path / "live.pb.gz", "-top", "-sample_index=inuse_space")
    assert "build" in top, top
    doc = json.loads((tmp_path / "live.json").read_text())
    names = {f["name"] for f in doc["shared"]["frames"]}
    assert "build" in names
    assert_one_line_error(memhound("report", "--pprof", str(tmp_path / "no" / "x.pb.gz"), "job.db",
                                   cwd=tmp_path))


def test_report_of_a_killed_run_renders_the_html_page(tmp_path):
    """The HTML report from a capture whose process was killed: it loads in
    the browser, draws its charts, and says the run is partial."""
    from test_html_report import assert_page_works

    cap = tmp_path / "killed.db"
    killed_run(cap, tmp_path, 3)
    page = tmp_path / "killed.html"
    out = memhound("report", "-q", "--html", str(page), str(cap), cwd=tmp_path)
    assert out.returncode == 0, out.stderr.decode()
    assert_page_works(page, charts=2)
    text = page.read_text()
    assert "killed by SIGKILL" in text
    assert "build" in text
