"""memhound run follows every process of the program: a forked child starts a
run of its own (its own clock, epochs and warm-up, only what is new to it); an
image that execs keeps its rows apart from the program it becomes; the launcher
records how the first process ended; and the environment switch is read back
exactly as the launcher wrote it."""
from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from memhound import config
from test_run_cli import memhound_run

FORK_LATE = textwrap.dedent("""\
    import os, time
    parent_keep, child_keep = [], []
    t = time.time()
    while time.time() - t < 0.8:
        parent_keep.append(bytearray(2000))  # PARENT
        time.sleep(0.0003)
    pid = os.fork()
    if pid == 0:
        t = time.time()
        while time.time() - t < 0.8:
            child_keep.append(bytearray(3000))  # CHILD
            time.sleep(0.0003)
        os._exit(0)
    os.waitpid(pid, 0)
    print("done")
""")


def _report(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_forked_child_runs_on_its_own_clock_with_only_its_own_rows(tmp_path):
    prog = tmp_path / "late.py"
    prog.write_text(FORK_LATE)
    out = tmp_path / "r.json"
    proc = memhound_run("-q", "-o", "c.db", "--json", str(out), str(prog), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    report = _report(out)
    procs = {p["pid"]: p for p in report["processes"]}
    assert len(procs) == 2, procs
    first = report["pid"]
    (child,) = [pid for pid in procs if pid != first]
    assert procs[child]["ppid"] == first
    assert procs[child]["status"] == "os._exit" and procs[child]["exit_code"] == 0
    # The child's leak is found in the child, at the child's line, and the
    # parent's line is the parent's alone.
    child_sites = {leak["site"]["line"] for leak in procs[child]["leaks"]}
    assert child_sites == {11}, procs[child]
    parent_sites = {leak["site"]["line"] for leak in procs[first]["leaks"]}
    assert 11 not in parent_sites
    db = sqlite3.connect(str(tmp_path / "c.db"))
    started = dict(db.execute("SELECT pid, started FROM process").fetchall())
    # Only what is new to the child: no stack of the parent's loop was written
    # again under the child's pid.
    child_lines = {r[0] for r in db.execute(
        "SELECT f.line FROM stack_frame sf JOIN frame f ON f.id = sf.frame"
        " WHERE sf.pid = ? AND sf.pos = 0", (child,))}
    db.close()
    assert 5 not in child_lines, child_lines
    # Its clock starts when it was forked, not when the program started.
    assert started[child] - started[first] > 0.6
    assert procs[child]["duration_s"] < 1.5


EXEC = textwrap.dedent("""\
    import os, sys, time
    keep = []
    t = time.time()
    while time.time() - t < 0.5:
        keep.append(bytearray(2000))  # BEFORE EXEC
        time.sleep(0.0003)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, sys.argv[1]])
""")
AFTER = textwrap.dedent("""\
    import time
    kept = []
    t = time.time()
    while time.time() - t < 0.5:
        kept.append(bytearray(1500))  # AFTER EXEC
        time.sleep(0.0003)
    raise SystemExit(5)
""")


def test_exec_keeps_both_images_and_the_status_of_the_last(tmp_path):
    prog, after = tmp_path / "first.py", tmp_path / "after.py"
    prog.write_text(EXEC)
    after.write_text(AFTER)
    out = tmp_path / "r.json"
    proc = memhound_run("-q", "--no-capture", "--json", str(out), str(prog), str(after), cwd=tmp_path)
    assert proc.returncode == 5, proc.stderr.decode()
    report = _report(out)
    by_status = {p["status"]: p for p in report["processes"]}
    assert set(by_status) == {"exited", "exec"}, report["processes"]
    assert by_status["exited"]["exit_code"] == 5
    assert by_status["exec"]["pid"] < 0  # the image that exec'd, set aside
    assert {leak["site"]["file"] for leak in by_status["exec"]["leaks"]} == {str(prog)}
    assert report["argv"][0] == str(after)
    assert report["leaks"] and report["leaks"][0]["site"]["line"] == 5
    assert report["leaks"][0]["site"]["file"] == str(after)


def test_no_children_tracks_the_first_process_only(tmp_path):
    prog = tmp_path / "late.py"
    prog.write_text(FORK_LATE)
    out = tmp_path / "r.json"
    proc = memhound_run("-q", "--no-capture", "--no-children", "--json", str(out), str(prog),
                        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert [p["pid"] for p in _report(out)["processes"]] == [_report(out)["pid"]]


@pytest.mark.parametrize("path", ["/tmp/x.db", "/odd; path=with;capture=/and\u00e9/é.db"])
def test_the_switch_reads_back_as_written(path):
    value = config.encode(path, sample_bytes=1, max_frames=64, epoch_on="mod:Cls.run",
                          manual_epochs=True, retention=False, top=9, children=False)
    got = config.decode(value)
    assert got is not None
    assert got["capture"] == path
    assert (got["sample_bytes"], got["max_frames"], got["epoch_on"]) == (1, 64, "mod:Cls.run")
    assert (got["manual_epochs"], got["retention"], got["top"], got["children"]) == (1, 0, 9, 0)


@pytest.mark.parametrize("value", [None, "", "2;capture=/x", "1;sample_bytes=abc;capture=/x",
                                   "1;sample_bytes=3", "1;capture="])
def test_a_bad_switch_is_ignored(value):
    assert config.decode(value) is None


def test_the_switch_refuses_a_setting_that_would_not_read_back():
    with pytest.raises(ValueError):
        config.encode("/x.db", epoch_on="a;b")
    with pytest.raises(TypeError):
        config.encode("/x.db", colour="red")


def test_an_unreadable_switch_lets_the_program_run_untracked(tmp_path):
    import os
    import subprocess

    prog = tmp_path / "p.py"
    prog.write_text("import sys; print('ran', 'memhound.program.startup' in sys.modules)\n")
    env = dict(os.environ, MEMHOUND_CONFIG="1;sample_bytes=zero;capture=/nowhere/x.db")
    proc = subprocess.run([sys.executable, str(prog)], capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout == b"ran True\n"
    assert proc.stderr == b""
    env = dict(os.environ, MEMHOUND_CONFIG=f"1;capture={tmp_path}/no/such/dir/x.db")
    proc = subprocess.run([sys.executable, str(prog)], capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout == b"ran True\n"
    assert proc.stderr.decode().startswith("memhound: process ") and b"not tracked" in proc.stderr


OUTLIVES = textwrap.dedent("""\
    import subprocess, sys
    subprocess.Popen([sys.executable, "-c", "import time; k = [bytearray(1000) for _ in range(500)]; time.sleep(0.3)"])
    print("parent done")
""")


def test_a_child_that_ends_just_after_the_program_is_waited_for(tmp_path):
    """multiprocessing's resource tracker, a worker finishing: a child that
    ends shortly after the first process records its end before the report is
    made, and with --no-capture it never finds its capture gone."""
    prog = tmp_path / "outlives.py"
    prog.write_text(OUTLIVES)
    out = tmp_path / "r.json"
    proc = memhound_run("-q", "--no-capture", "--json", str(out), str(prog), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    statuses = sorted(p["status"] for p in _report(out)["processes"])
    assert statuses == ["completed", "exited"], _report(out)["processes"]
