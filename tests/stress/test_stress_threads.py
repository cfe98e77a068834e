"""Eight threads allocating, reallocating and freeing at once, while another
thread takes snapshots and closes epochs.

What this protects: tables_lock around every table update, the lock-free
"was this sampled?" filter on the free path, forgetting a block *before* it is
released or reallocated (so that another thread reusing the address cannot be
confused with it), and per-thread sampler state. Without that care the child
crashes, deadlocks, or leaves live entries behind for memory that was freed:
the checks below catch the last through the "everything freed, nothing left"
balance and the cross-checks between the running totals and the live table.
"""
import pytest

from _stress_harness import assert_exit, ok_lines, run_script

CHURN = r'''
import gc
import random
import sys
import threading

import memhound
from _stress_child import (Threads, allocated_where, check_consistent, in_function,
                           live_where)

SAMPLE_BYTES = int(sys.argv[1])
ITERATIONS = int(sys.argv[2])
EXACT = SAMPLE_BYTES == 1
N_THREADS = 8
ME = __file__


class Node:
    def __init__(self, i):
        self.i = i
        self.payload = [i, str(i), (i, i + 1)]
        self.meta = {"i": i, "s": "x" * (i % 50)}


SMALL = [1, 7, 16, 31, 64, 100, 255, 512]
MEDIUM = [513, 1000, 4096, 10000, 40000, 65535]
LARGE = [65537, 200000, 1 << 20]


def grow_shrink_bytearray(rng):
    # A realloc storm: grow in uneven steps, then shrink by halves.
    ba = bytearray()
    for _ in range(rng.randint(5, 40)):
        ba += b"x" * rng.randint(1, 6000)
    while len(ba) > 8:
        del ba[len(ba) // 2:]
    ba.extend(b"y" * rng.randint(0, 300))
    return ba


def grow_shrink_list(rng):
    lst = []
    for j in range(rng.randint(10, 3000)):
        lst.append(j)
    lst.extend(range(rng.randint(0, 5000)))
    while len(lst) > 3:
        del lst[len(lst) // 2:]
    return lst


def churn(seed, barrier):
    rng = random.Random(seed)
    pool = []
    barrier.wait()
    for i in range(ITERATIONS):
        op = rng.random()
        if op < 0.25:
            pool.append([Node(i) for _ in range(rng.randint(1, 12))])
        elif op < 0.45:
            pool.append(bytearray(rng.choice(SMALL)))
        elif op < 0.55:
            pool.append(bytearray(rng.choice(MEDIUM)))
        elif op < 0.58:
            pool.append(bytearray(rng.choice(LARGE)))
        elif op < 0.75:
            pool.append(grow_shrink_bytearray(rng))
        elif op < 0.88:
            pool.append(grow_shrink_list(rng))
        else:
            d = {str(k): k for k in range(rng.randint(1, 200))}
            pool.append(d)
            if pool and rng.random() < 0.5:
                # Realloc an object that was allocated a while ago.
                victim = pool[rng.randrange(len(pool))]
                if isinstance(victim, bytearray):
                    victim.extend(b"z" * rng.randint(1, 20000))
                elif isinstance(victim, list):
                    victim.extend(range(rng.randint(1, 500)))
        while len(pool) > 48 or (pool and rng.random() < 0.4):
            pool.pop(rng.randrange(len(pool)))
    pool.clear()


def observer(done, counts):
    while not done.is_set():
        snap = memhound.snapshot()
        check_consistent(snap, EXACT, "concurrent snapshot")
        if counts["snapshots"] % 5 == 0:
            snap.statistics("lineno")
            snap.statistics("traceback")
        memhound.next_epoch()
        counts["snapshots"] += 1
        counts["epochs"] += 1


memhound.start(SAMPLE_BYTES, seed=1234)
threads = Threads()
barrier = threading.Barrier(N_THREADS)
done = threading.Event()
counts = {"snapshots": 0, "epochs": 0}
threads.start(observer, done, counts, name="observer")
workers = Threads()
for n in range(N_THREADS):
    workers.start(churn, 1000 + n, barrier, name=f"churn-{n}")
workers.join()
done.set()
threads.join()
gc.collect()

snap = memhound.snapshot()
check_consistent(snap, EXACT, "final")
mine = in_function("churn", ME)
left_bytes, left_count = live_where(snap, mine)
allocated = allocated_where(snap, mine)
print(f"OK snapshots={counts['snapshots']} epochs={snap.epoch} allocated={allocated:.0f} "
      f"left={left_bytes:.0f} left_count={left_count:.0f} samples={snap.samples} "
      f"peak={snap.peak_bytes}")
assert counts["snapshots"] >= 3, counts
assert snap.epoch >= counts["epochs"], (snap.epoch, counts)
# Every thread freed everything it allocated: what is still attributed to churn
# is the interpreter's free lists and caches, a few dozen KiB at most, against
# tens of MiB allocated.
assert allocated > 20e6, allocated
limit = 256 * 1024 if EXACT else 4 * 1024 * 1024
assert left_bytes < limit, (left_bytes, left_count)
memhound.stop()
assert not memhound.is_tracking()
print("OK stopped")
'''


@pytest.mark.parametrize(
    "sample_bytes,iterations",
    [pytest.param(1, 1500, id="exact"), pytest.param(4096, 2500, id="sampled-4KiB"),
     pytest.param(65536, 2500, id="sampled-64KiB")],
)
def test_eight_threads_churning_with_concurrent_snapshots_balance_to_zero(
    tmp_path, sample_bytes, iterations
):
    proc = run_script(tmp_path, CHURN, args=[str(sample_bytes), str(iterations)], timeout=90)
    assert_exit(proc, 0)
    assert len(ok_lines(proc)) == 2, proc.stdout
