"""fork() while other threads allocate.

What this protects: tables_lock is held across fork() (pthread_atfork), so the
child never inherits it locked by a thread that no longer exists, nor tables
half-way through an update; the forking thread's reentrancy guard is balanced
in the child; the child's sampler is reseeded. The child keeps tracking with
the inherited tables. Without that care the child deadlocks on its first
tracked allocation (caught by the per-child timeout) or reads torn tables.
"""
import pytest

from _stress_harness import TIMEOUT_FACTOR, assert_exit, build_raw_loop, ok_lines, run_script

# The parent's threads keep allocating (Python objects, bytearrays, and RAW
# blocks without the GIL) while the main thread forks repeatedly. Each child
# checks that it is still tracking, that snapshots work and agree with
# themselves, that its own new allocations (in the child, and in a thread the
# child starts) appear at the right line and go away when freed, and that
# epochs and stop() work. Some children leave with os._exit, others run the
# normal interpreter shutdown.
FORK = r'''
import gc
import os
import sys
import threading
import time
import warnings

import memhound
from _stress_child import (UNDER_ASAN, NativeRawLoop, RawLoad, Threads, check_consistent,
                           innermost_at, line_of, live_where)

warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads
SAMPLE_BYTES = int(sys.argv[1])
EXACT = SAMPLE_BYTES == 1
N_FORKS = int(sys.argv[2])
CHILD_TIMEOUT = float(sys.argv[3])
RAW_LOOP_LIB = sys.argv[4] if len(sys.argv) > 4 else ""
ME = __file__


def busy(stop, seed):
    keep = []
    i = seed
    while not stop.is_set():
        i += 1
        keep.append([str(i)] * (i % 40))
        keep.append(bytearray(1 + (i * 7919) % 30000))
        if len(keep) > 200:
            del keep[: len(keep) // 2]


def child_allocate(n, size):
    return [bytearray(size) for _ in range(n)]  # <child-alloc>


def child_thread_allocate(out, n, size):
    out.extend(bytearray(size) for _ in range(n))  # <child-thread-alloc>


def child_main(k):
    assert memhound.is_tracking(), "child is not tracking"
    snap = memhound.snapshot()
    check_consistent(snap, EXACT, "child, first snapshot")
    at = innermost_at(ME, [line_of("child-alloc")])
    at_thread = innermost_at(ME, [line_of("child-thread-alloc")])
    b0, _ = live_where(snap, at)
    size, n = 300000 + k, 40
    blocks = child_allocate(n, size)
    out = []
    t = threading.Thread(target=child_thread_allocate, args=(out, n, size))
    t.start()
    t.join()
    epoch = memhound.next_epoch()
    snap = memhound.snapshot()
    check_consistent(snap, EXACT, "child, after allocating")
    assert snap.epoch == epoch
    b1, c1 = live_where(snap, at)
    b2, c2 = live_where(snap, at_thread)
    if EXACT:
        assert n * size <= b1 - b0 <= n * (size + 200), (b0, b1, c1)
        assert n * size <= b2 <= n * (size + 200), (b2, c2)
    else:
        assert 0.7 * n * size <= b1 - b0 <= 1.3 * n * (size + 200), (b0, b1)
        assert 0.7 * n * size <= b2 <= 1.3 * n * (size + 200), (b2,)
    del blocks, out
    gc.collect()
    snap = memhound.snapshot()
    check_consistent(snap, EXACT, "child, after freeing")
    b3, _ = live_where(snap, at)
    b4, _ = live_where(snap, at_thread)
    assert b3 - b0 < 0.01 * n * size and b4 < 0.01 * n * size, (b0, b3, b4)
    memhound.stop()
    assert not memhound.is_tracking()
    memhound.start(SAMPLE_BYTES)  # and again, from scratch, in the child
    assert memhound.is_tracking()
    check_consistent(memhound.snapshot(), EXACT, "child, restarted")


def wait_child(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            return status
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"child {pid} hung (killed after {timeout}s)")


memhound.start(SAMPLE_BYTES, seed=5)
stop = threading.Event()
threads = Threads()
for s in range(3):
    threads.start(busy, stop, s * 1000)
# RAW blocks without the GIL: such a thread may hold tables_lock as fork()
# happens, which memhound's fork handlers must cope with. The C loop spends
# most of its time in the hooks, so that this is likely at every fork.
raw = NativeRawLoop(RAW_LOOP_LIB, n_threads=2) if RAW_LOOP_LIB else RawLoad()
if UNDER_ASAN:
    # gcc's libasan takes no lock around fork(): a child forked while another
    # thread is inside ASan's malloc can deadlock in ASan itself. Park the
    # GIL-less thread across fork there (every other thread waits for the GIL).
    os.register_at_fork(before=raw.pause, after_in_parent=raw.resume)
time.sleep(0.05)
for k in range(N_FORKS):
    time.sleep(0.005)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            child_main(k)
            print(f"OK child {k}", flush=True)
        except BaseException:
            import traceback
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(3)
        if k % 2:
            os._exit(0)
        # Normal shutdown: atexit stops memhound, the interpreter finalizes.
        sys.exit(0)
    status = wait_child(pid, CHILD_TIMEOUT)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
        f"child {k} ended badly: status {status:#x}")
    assert memhound.is_tracking()
    check_consistent(memhound.snapshot(), EXACT, f"parent after child {k}")
stop.set()
threads.join()
ops = raw.stop()
assert (ops if RAW_LOOP_LIB else raw.ops) > 0
gc.collect()
check_consistent(memhound.snapshot(), EXACT, "parent, end")
memhound.stop()
print("OK parent", flush=True)
'''

N_FORKS = 20


@pytest.mark.parametrize("sample_bytes", [pytest.param(1, id="exact"),
                                          pytest.param(4096, id="sampled")])
def test_fork_while_threads_allocate_child_keeps_tracking(tmp_path, sample_bytes):
    child_timeout = 20 * TIMEOUT_FACTOR
    lib = build_raw_loop(tmp_path, required=False)
    args = [str(sample_bytes), str(N_FORKS), str(child_timeout)] + ([str(lib)] if lib else [])
    proc = run_script(tmp_path, FORK, args=args, timeout=90)
    assert_exit(proc, 0)
    lines = ok_lines(proc)
    assert lines.count("OK parent") == 1, proc.stdout
    assert sorted(line for line in lines if line.startswith("OK child")) == sorted(
        f"OK child {k}" for k in range(N_FORKS)
    ), proc.stdout


# multiprocessing with the 'fork' start method: a Pool's workers and a plain
# Process, forked while the parent's threads allocate. Each worker measures its
# own allocations through memhound and reports back.
MP_FORK = r'''
import gc
import multiprocessing as mp
import multiprocessing.connection
import multiprocessing.pool
import multiprocessing.queues
import multiprocessing.synchronize
import os
import pickle
import sys
import threading
import warnings

import memhound
from _stress_child import Threads, check_consistent, innermost_at, line_of, live_where

warnings.simplefilter("ignore", DeprecationWarning)
ME = __file__
N_TASKS = 6


def task_alloc(size):
    return [bytearray(size) for _ in range(10)]  # <task-alloc>


def task(i):
    assert memhound.is_tracking()
    at = innermost_at(ME, [line_of("task-alloc")])
    b0, _ = live_where(memhound.snapshot(), at)
    size = 100000 + i
    kept = task_alloc(size)
    snap = memhound.snapshot()
    check_consistent(snap, True, f"worker task {i}")
    b1, _ = live_where(snap, at)
    del kept
    b2, _ = live_where(memhound.snapshot(), at)
    return i, os.getpid(), b1 - b0, b2 - b0, 10 * size


def busy(stop):
    keep = []
    i = 0
    while not stop.is_set():
        i += 1
        keep.append(bytearray(i % 20000))
        keep.append({j: str(j) for j in range(i % 50)})
        if len(keep) > 100:
            keep.clear()


def proc_main(q):
    q.put(task(999))


if __name__ == "__main__":
    memhound.start(1)
    stop = threading.Event()
    threads = Threads()
    for _ in range(2):
        threads.start(busy, stop)
    ctx = mp.get_context("fork")
    # The plain Process first: forked before the Pool's threads come and go.
    q = ctx.Queue()
    p = ctx.Process(target=proc_main, args=(q,))
    p.start()
    i, pid, grew, left, expected = q.get(timeout=60)
    p.join(60)
    assert p.exitcode == 0, p.exitcode
    assert expected <= grew <= expected + 2000 and abs(left) <= 2000, (grew, left, expected)
    with ctx.Pool(2) as pool:
        results = pool.map(task, range(N_TASKS), chunksize=1)
    pids = {pid for _, pid, _, _, _ in results}
    assert os.getpid() not in pids
    for i, _pid, grew, left, expected in results:
        assert expected <= grew <= expected + 2000, (i, grew, expected)
        assert abs(left) <= 2000, (i, left)
    stop.set()
    threads.join()
    gc.collect()
    check_consistent(memhound.snapshot(), True, "parent")
    memhound.stop()
    print(f"OK tasks={len(results)} workers={len(pids)}", flush=True)
'''


def test_multiprocessing_fork_workers_track_their_own_allocations(tmp_path):
    proc = run_script(tmp_path, MP_FORK, timeout=90)
    assert_exit(proc, 0)
    lines = ok_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("OK tasks=6 "), proc.stdout
