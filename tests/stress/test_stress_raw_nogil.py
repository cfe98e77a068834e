"""RAW-domain allocations from threads that do not hold the GIL.

PyMem_RawMalloc and friends may be called without the GIL (ctypes.CDLL drops
it for the duration of the foreign call), and from threads Python knows nothing
about. The hooks must then take no GIL, run no Python code, walk only the
calling thread's own frames, and not pin code objects (pinning needs the GIL).
Several such threads at once exercise tables_lock from threads the GIL does not
serialise.
"""
import pytest

from _stress_harness import assert_exit, ok_lines, run_script

RAW_THREADS = r'''
import gc
import sys
import threading

import memhound
from _stress_child import (Threads, check_consistent, innermost_at, line_of, live_where,
                           raw_api)

SAMPLE_BYTES = int(sys.argv[1])
EXACT = SAMPLE_BYTES == 1
N_THREADS = 6
PER_THREAD = 150
ME = __file__
raw_malloc, raw_realloc, raw_free = raw_api(release_gil=True)

# Distinct, known sizes: thread t's k-th block is BASE + t * 4096 + 8 * k bytes;
# every other block is then reallocated to twice that.
BASE = 50000


def size_of(t, k):
    return BASE + t * 4096 + 8 * k


def worker(t, ptrs, phase):
    mine = ptrs[t]
    phase[0].wait()
    for k in range(PER_THREAD):
        mine[k] = raw_malloc(size_of(t, k))  # <raw-malloc>
    for k in range(0, PER_THREAD, 2):
        mine[k] = raw_realloc(mine[k], 2 * size_of(t, k))  # <raw-realloc>
    phase[1].wait()  # allocated: the main thread looks
    phase[2].wait()  # looked: free everything
    for k in range(PER_THREAD):
        raw_free(mine[k])
        mine[k] = 0
    phase[3].wait()


memhound.start(SAMPLE_BYTES, seed=99)
malloc_line = line_of("raw-malloc")
realloc_line = line_of("raw-realloc")
ptrs = [[0] * PER_THREAD for _ in range(N_THREADS)]
phase = [threading.Barrier(N_THREADS + 1) for _ in range(4)]
threads = Threads()
for t in range(N_THREADS):
    threads.start(worker, t, ptrs, phase)
gc.collect()
before = memhound.snapshot()
phase[0].wait()
phase[1].wait()
during = memhound.snapshot()
phase[2].wait()
phase[3].wait()
threads.join()
gc.collect()
after = memhound.snapshot()

for name, snap in (("before", before), ("during", during), ("after", after)):
    check_consistent(snap, EXACT, name)
assert all(p == 0 for row in ptrs for p in row)  # every block was freed

expected_malloc = sum(size_of(t, k) for t in range(N_THREADS) for k in range(1, PER_THREAD, 2))
expected_realloc = sum(2 * size_of(t, k) for t in range(N_THREADS) for k in range(0, PER_THREAD, 2))
expected = expected_malloc + expected_realloc
n_blocks = N_THREADS * PER_THREAD

# Where the blocks went: to the worker's call line when its stack was first
# seen with the GIL (the frames are pinned then), otherwise to "<unknown>"
# frames; never to another line.
at_malloc = innermost_at(ME, [malloc_line])
at_realloc = innermost_at(ME, [realloc_line])
unknown = lambda tb: bool(tb) and all(f.filename == "<unknown>" for f in tb)
def raw_bytes(snap):
    return [live_where(snap, pred) for pred in (at_malloc, at_realloc, unknown)]


(m_b, m_n), (r_b, r_n), (u_b, u_n) = raw_bytes(during)
(m_a, _), (r_a, _), (u_a, _) = raw_bytes(after)
(m_0, _), (r_0, _), (u_0, _) = raw_bytes(before)
print(f"OK during={m_b:.0f}+{r_b:.0f}+{u_b:.0f} counts={m_n:.0f}+{r_n:.0f}+{u_n:.0f} "
      f"expected={expected} after={m_a:.0f}+{r_a:.0f}+{u_a:.0f}")
assert m_0 == r_0 == 0, (m_0, r_0)
if EXACT:
    # Every block at its known size, plus a little Python bookkeeping made at
    # the same lines (the ints holding the pointers, ctypes' argument objects).
    slack = 200 * n_blocks
    assert expected <= m_b + r_b + u_b - u_0 <= expected + slack, (m_b, r_b, u_b, expected)
    assert m_b + u_b - u_0 >= expected_malloc, (m_b, u_b, expected_malloc)
    assert r_b + u_b - u_0 >= expected_realloc, (r_b, u_b, expected_realloc)
    assert m_n + r_n >= n_blocks or u_n > 0, (m_n, r_n, u_n)
    # Nothing else picked up blocks this large.
    others = sum(
        v[0]
        for sid, v in during.live_by_stack().items()
        if not (at_malloc(during.traceback(sid)) or at_realloc(during.traceback(sid))
                or unknown(during.traceback(sid)))
    )
    assert others < expected_malloc / 4, others
    # Freed: nothing is left at those lines.
    assert m_a + r_a + u_a - u_0 < 4096, (m_a, r_a, u_a, u_0)
else:
    # Sampled: an unbiased estimate; with 900 blocks of 50-200 KB at R=64 KiB
    # nearly every block is sampled, so the estimate is tight.
    got = m_b + r_b + u_b - u_0
    assert 0.8 * expected <= got <= 1.2 * expected, (got, expected)
    assert m_a + r_a + u_a - u_0 < 0.01 * expected, (m_a, r_a, u_a)
memhound.stop()
print("OK stopped")
'''


@pytest.mark.parametrize("sample_bytes", [pytest.param(1, id="exact"),
                                          pytest.param(65536, id="sampled")])
def test_raw_allocations_without_gil_are_tracked_then_released(tmp_path, sample_bytes):
    proc = run_script(tmp_path, RAW_THREADS, args=[str(sample_bytes)], timeout=60)
    assert_exit(proc, 0)
    assert len(ok_lines(proc)) == 2, proc.stdout


# Threads that Python does not know at all: pthread_create() with
# PyMem_RawMalloc itself as the start routine (its one argument is the size)
# and PyMem_RawFree to give the block back. The hooks find no thread state, so
# the stack is empty.
NATIVE_THREADS = r'''
import ctypes
import gc
import sys

import memhound
from _stress_child import check_consistent

libc = ctypes.CDLL(None)
create = libc.pthread_create
create.argtypes = [ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p, ctypes.c_void_p,
                   ctypes.c_void_p]
create.restype = ctypes.c_int
join = libc.pthread_join
join.argtypes = [ctypes.c_ulong, ctypes.POINTER(ctypes.c_void_p)]
join.restype = ctypes.c_int
RAW_MALLOC = ctypes.cast(libc.PyMem_RawMalloc, ctypes.c_void_p).value
RAW_FREE = ctypes.cast(libc.PyMem_RawFree, ctypes.c_void_p).value


def native_threads(routine, args):
    """Run routine(arg) in one native thread per arg, all at once; return the
    threads' results."""
    tids = []
    for a in args:
        tid = ctypes.c_ulong()
        rc = create(ctypes.byref(tid), None, routine, a)
        assert rc == 0, rc
        tids.append(tid)
    out = []
    for tid in tids:
        res = ctypes.c_void_p()
        assert join(tid.value, ctypes.byref(res)) == 0
        out.append(res.value)
    return out


def empty_stack(snap):
    b = n = 0.0
    for sid, (lb, ln, _v, _k) in snap.live_by_stack().items():
        if len(snap.traceback(sid)) == 0:
            b += lb
            n += ln
    return b, n


memhound.start(1)
SIZES = [123457 + 24 * i for i in range(64)]
gc.collect()
before = memhound.snapshot()
ptrs = native_threads(RAW_MALLOC, SIZES)
assert all(ptrs), ptrs
during = memhound.snapshot()
native_threads(RAW_FREE, ptrs)
after = memhound.snapshot()
for name, snap in (("before", before), ("during", during), ("after", after)):
    check_consistent(snap, True, name)
b0, n0 = empty_stack(before)
b1, n1 = empty_stack(during)
b2, n2 = empty_stack(after)
print(f"OK before={b0:.0f}/{n0:.0f} during={b1:.0f}/{n1:.0f} after={b2:.0f}/{n2:.0f}")
# Exactly the 64 blocks, at their sizes, with no frames; then exactly gone.
assert (b1 - b0, n1 - n0) == (sum(SIZES), len(SIZES)), (b1 - b0, n1 - n0, sum(SIZES))
assert (b2, n2) == (b0, n0), (b0, n0, b2, n2)
memhound.stop()
print("OK stopped")
'''


def test_raw_allocations_from_threads_unknown_to_python_are_tracked_exactly(tmp_path):
    proc = run_script(tmp_path, NATIVE_THREADS, timeout=60)
    assert_exit(proc, 0)
    assert len(ok_lines(proc)) == 2, proc.stdout
