"""start() and no stop(): the interpreter shuts down with memhound's hooks in.

What this protects: the atexit handler that stops tracking, hooks that stay
safe while threads still allocate during and after it (daemon threads run
until the interpreter freezes them; non-daemon threads are joined first), and
an exit path that never changes what the program prints or the status it exits
with. Without that care, shutdown crashes (hooks reading tables being torn
down, frames of a finalizing interpreter), hangs (a lock held by a frozen
daemon thread), or swallows output.
"""
import pytest

from _stress_harness import assert_exit, run_script

# Threads that are still allocating when the main thread returns: Python
# objects, bytearrays and lists grown and shrunk, and RAW blocks allocated
# without the GIL.
WORKERS = r'''
import sys
import threading
import time

import memhound
from _stress_child import raw_api

raw_malloc, raw_realloc, raw_free = raw_api(release_gil=True)
started = threading.Barrier(int(sys.argv[2]) + 1)
print_lock = threading.Lock()


def say(text):
    with print_lock:
        print(text, flush=True)


def python_objects(n):
    started.wait()
    keep = []
    i = 0
    while True:
        i += 1
        keep.append({"i": i, "s": str(i) * (i % 30), "b": bytearray(i % 5000)})
        if len(keep) > 500:
            del keep[:250]
        if n is not None and i >= n:
            say(f"worker done {n}")
            return


def raw_blocks(n):
    started.wait()
    i = 0
    while True:
        i += 1
        p = raw_malloc(64 + i % 10000)
        p = raw_realloc(p, 128 + i % 20000)
        raw_free(p)
        if n is not None and i >= n:
            say(f"raw done {n}")
            return
'''

DAEMONS_AT_EXIT = WORKERS + r'''
mode = int(sys.argv[1])
memhound.start(mode)
for k in range(int(sys.argv[2])):
    target = python_objects if k % 2 == 0 else raw_blocks
    threading.Thread(target=target, args=(None,), daemon=True).start()
started.wait()
time.sleep(0.2)
snap = memhound.snapshot()
assert snap.samples > 0
for i in range(5):
    print(f"line {i}")
sys.stderr.write("program's own stderr\n")
print("last line", end="")
'''


@pytest.mark.parametrize("sample_bytes", [pytest.param(1, id="exact"),
                                          pytest.param(65536, id="sampled")])
def test_exit_without_stop_while_daemon_threads_allocate_is_clean(tmp_path, sample_bytes):
    for attempt in range(3):
        proc = run_script(tmp_path, DAEMONS_AT_EXIT, args=[str(sample_bytes), "4"], timeout=40)
        assert_exit(proc, 0, allowed_stderr=["program's own stderr"])
        assert proc.stdout == "".join(f"line {i}\n" for i in range(5)) + "last line"
        assert proc.stderr == "program's own stderr\n"


NON_DAEMONS_AT_EXIT = WORKERS + r'''
mode = int(sys.argv[1])
memhound.start(mode)
n = int(sys.argv[2])
for k in range(n):
    target = python_objects if k % 2 == 0 else raw_blocks
    threading.Thread(target=target, args=(20000 + k,), daemon=False).start()
started.wait()
say("main done")
'''


@pytest.mark.parametrize("sample_bytes", [pytest.param(1, id="exact"),
                                          pytest.param(65536, id="sampled")])
def test_exit_without_stop_while_non_daemon_threads_finish_is_clean(tmp_path, sample_bytes):
    proc = run_script(tmp_path, NON_DAEMONS_AT_EXIT, args=[str(sample_bytes), "4"], timeout=60)
    assert_exit(proc, 0)
    lines = proc.stdout.splitlines()
    assert lines[0] == "main done"
    assert sorted(lines[1:]) == sorted(
        ["worker done 20000", "raw done 20001", "worker done 20002", "raw done 20003"]
    ), proc.stdout


EXIT_CODE = WORKERS + r'''
memhound.start(int(sys.argv[1]))
for k in range(int(sys.argv[2])):
    target = python_objects if k % 2 == 0 else raw_blocks
    threading.Thread(target=target, args=(None,), daemon=True).start()
started.wait()
print("before exit", flush=True)
how = sys.argv[3]
if how == "sys.exit":
    sys.exit(7)
elif how == "raise":
    raise KeyError("the program's own error")
elif how == "nested-sys.exit":
    # SystemExit raised in the main thread from a nested call, with a finally.
    def deep(n):
        try:
            if n == 0:
                sys.exit(7)
            deep(n - 1)
        finally:
            print(f"finally {n}") if n % 10 == 0 else None
    deep(30)
'''


@pytest.mark.parametrize(
    "how,rc,stdout,stderr_tail",
    [
        ("sys.exit", 7, "before exit\n", ""),
        ("nested-sys.exit", 7, "before exit\nfinally 0\nfinally 10\nfinally 20\nfinally 30\n", ""),
        ("raise", 1, "before exit\n", "KeyError: \"the program's own error\"\n"),
    ],
)
def test_exit_status_and_output_pass_through(tmp_path, how, rc, stdout, stderr_tail):
    proc = run_script(tmp_path, EXIT_CODE, args=["1", "2", how], timeout=40)
    assert_exit(proc, rc, clean_stderr=not stderr_tail)
    assert proc.stdout == stdout
    if stderr_tail:
        assert proc.stderr.startswith("Traceback (most recent call last):\n"), proc.stderr
        assert proc.stderr.endswith(stderr_tail), proc.stderr
        assert "memhound" not in proc.stderr.replace(str(tmp_path), ""), proc.stderr


# Tracking still on when the interpreter finalizes: a snapshot taken from an
# atexit handler registered after start() (so it runs before memhound's own
# stop), and objects with __del__ that allocate while modules are torn down.
ATEXIT_ORDER = r'''
import atexit
import sys

import memhound

memhound.start(1)


class Noisy:
    def __del__(self):
        # Allocates during finalization, possibly after memhound stopped.
        junk = [bytearray(1000) for _ in range(10)]
        sys.stdout.write(f"del {len(junk)}\n")


def late_snapshot():
    snap = memhound.snapshot()
    print(f"atexit snapshot ok {snap.samples > 0} {memhound.is_tracking()}")


atexit.register(late_snapshot)
keeper = Noisy()
cycle = [Noisy()]
cycle.append(cycle)
del cycle
print("main done")
'''


def test_atexit_snapshot_and_finalizers_that_allocate_are_clean(tmp_path):
    proc = run_script(tmp_path, ATEXIT_ORDER, timeout=30)
    assert_exit(proc, 0)
    lines = proc.stdout.splitlines()
    assert lines[0] == "main done"
    assert "atexit snapshot ok True True" in lines
    assert lines.count("del 10") >= 1, proc.stdout
