"""The background thread and the capture under stress: fork while flushes are
under way and other threads allocate, and stop while a flush runs.

What this protects: fork's prepare handler waits for a flush in progress, so no
SQLite call is half-done in a child and no connection is ever copied into one;
each child restarts the thread with a capture of its own and writes its rows
under its pid; the parent's capture stays consistent. Without that care a child
deadlocks in SQLite or the allocator (caught by the timeout), or the file is
corrupt (caught by quick_check).
"""
import sqlite3

from _stress_harness import assert_exit, ok_lines, run_script

FORK_FLUSH = r'''
import os
import sys
import threading
import time
import warnings

import memhound
from memhound.session import Session

warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads
path, n_forks = sys.argv[1], int(sys.argv[2])
keep = []
stop = threading.Event()

def churn():
    while not stop.is_set():
        keep.append(bytearray(3000))
        if len(keep) > 2000:
            del keep[:1000]

session = Session(2048, capture=path, flush_every=0.02, meta={"argv": ["stress"]})
session.start()
threads = [threading.Thread(target=churn) for _ in range(3)]
for t in threads:
    t.start()
children = []
for k in range(n_forks):
    time.sleep(0.013 * (k % 5))
    pid = os.fork()
    if pid == 0:
        held = [bytearray(5000) for _ in range(200)]
        time.sleep(0.1)
        if k % 2:
            os._exit(0)          # no final flush: the rows so far stay
        result = session.finish("completed", 0)
        print(f"OK child {k}", flush=True)
        os._exit(0)
    children.append(pid)
for pid in children:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
stop.set()
for t in threads:
    t.join()
result = session.finish("completed", 0)
assert result.capture_error is None, result.capture_error
print("OK parent", flush=True)
'''


def test_fork_during_flushes_keeps_every_capture_consistent(tmp_path):
    cap = tmp_path / "stress.db"
    n = 12
    proc = run_script(tmp_path, FORK_FLUSH, args=[str(cap), str(n)], timeout=120)
    assert_exit(proc, 0)
    lines = ok_lines(proc)
    assert lines.count("OK parent") == 1, proc.stdout
    assert sorted(line for line in lines if line.startswith("OK child")) == sorted(
        f"OK child {k}" for k in range(0, n, 2)), proc.stdout
    db = sqlite3.connect(str(cap))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        procs = db.execute("SELECT pid, ppid, status, flushes FROM process").fetchall()
    finally:
        db.close()
    pids = {p[0] for p in procs}
    parents = [p for p in procs if p[1] not in pids]  # its parent is the test
    kids = [p for p in procs if p[1] in pids]
    assert len(parents) == 1 and parents[0][2] == "completed"
    # Every child that lived long enough to flush wrote its own process row; the
    # ones that finished recorded it.
    assert len([k for k in kids if k[2] == "completed"]) == n // 2, procs
    assert all(k[1] == parents[0][0] for k in kids)
