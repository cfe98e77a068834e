"""start() and stop() again and again while other threads allocate, switching
between exact and sampled modes and stack depths.

What this protects: installing and removing the hooks while allocations are in
flight; clearing the tables at each start while other threads are about to
record into them (the generation check under tables_lock); per-thread sampler
state from an earlier run (a stale countdown, or exact mode's countdown, must
not leak into the next run); pinned code objects handed back at every stop.
Without that care: crashes on a stale or half-cleared table, samples recorded
into the wrong run, or code objects leaked or freed twice.
"""
import pytest

from _stress_harness import assert_exit, build_raw_loop, ok_lines, run_script

CYCLES = r'''
import gc
import sys
import threading

import memhound
from _stress_child import Threads, check_consistent

N_CYCLES = int(sys.argv[1])
MODES = [1, 512, 1, 65536, 4096, 1, 1 << 20]
DEPTHS = [128, 1, 3, 512, 16]


class Item:
    def __init__(self, i):
        self.i = i
        self.data = [i] * (i % 17)


def allocate(stop, seed):
    keep = []
    i = seed
    while not stop.is_set():
        i += 1
        keep.append(Item(i))
        keep.append(bytearray(i % 9000))
        ba = bytearray(10)
        for k in range(i % 20):
            ba += b"x" * (k * 100)   # realloc while start/stop run
        keep.append(ba)
        keep.append({str(k): k for k in range(i % 30)})
        if len(keep) > 400:
            del keep[:300]


def nested(n, size):
    if n == 0:
        return bytearray(size)
    return nested(n - 1, size)


stop = threading.Event()
threads = Threads()
for s in range(3):
    threads.start(allocate, stop, s * 10_000)
checked = 0
try:
    for c in range(N_CYCLES):
        mode = MODES[c % len(MODES)]
        depth = DEPTHS[c % len(DEPTHS)]
        memhound.start(mode, depth, seed=c + 1 if c % 3 else None)
        assert memhound.is_tracking()
        mine = [nested(20, 70_000 + c) for _ in range(3)]
        if c % 4 == 0:
            snap = memhound.snapshot()
            check_consistent(snap, mode == 1, f"cycle {c}")
            assert snap.sample_bytes == mode and snap.max_frames == depth, (c, mode, depth)
            # A fresh run: epoch 0, nothing from the previous run's tables.
            assert snap.epoch == 0, snap.epoch
            assert all(len(snap.traceback(s)) <= depth for s in snap.live_by_stack())
            if mode == 1:
                b = sum(v[0] for s, v in snap.live_by_stack().items()
                        if snap.traceback(s) and snap.traceback(s)[0].function.endswith("nested"))
                assert b >= 3 * (70_000 + c), (c, b)
            assert memhound.next_epoch() == 1
            checked += 1
        del mine
        memhound.stop()
        assert not memhound.is_tracking()
        for fn in (memhound.snapshot, memhound.next_epoch, memhound.stop):
            try:
                fn()
            except RuntimeError:
                pass
            else:
                raise AssertionError(f"{fn.__name__}() worked while not tracking")
finally:
    stop.set()
threads.join()
gc.collect()
print(f"OK cycles={N_CYCLES} checked={checked}")
'''


def test_start_stop_cycles_while_threads_allocate_switching_modes(tmp_path):
    proc = run_script(tmp_path, CYCLES, args=["200"], timeout=90)
    assert_exit(proc, 0)
    assert ok_lines(proc) == ["OK cycles=200 checked=50"], proc.stdout


# RAW allocations without the GIL, back to back, in C (_stress_harness's
# RAW_LOOP_C: a ctypes call per allocation is far too coarse to meet the
# install window often), from threads that entered it through ctypes.CDLL.
RAW_RACE = r'''
import sys
import time

import memhound
from _stress_child import NativeRawLoop

SECONDS = float(sys.argv[2])
MIN_CYCLES = int(sys.argv[3])
loop = NativeRawLoop(sys.argv[1], n_threads=2)
time.sleep(0.05)
cycles = 0
t0 = time.monotonic()
try:
    while cycles < MIN_CYCLES or time.monotonic() - t0 < SECONDS:
        memhound.start(1 if cycles % 2 else 4096, 8)
        if cycles % 500 == 0:
            memhound.snapshot()
        memhound.stop()
        cycles += 1
finally:
    ops = loop.stop()
assert ops > 0, ops
print(f"OK cycles={cycles} raw_ops={ops}")
'''


def test_start_stop_while_threads_without_gil_allocate_raw(tmp_path):
    """Installing the hooks must be safe against a PyMem_RawMalloc running at
    that moment in a thread that does not hold the GIL. Such a call reads the
    allocator's ctx and its function pointer as two separate loads while
    PyMem_SetAllocator overwrites the pair, so it can pair the old ctx with the
    new function; the hooks must work with either ctx."""
    lib = build_raw_loop(tmp_path)
    # Each start() is one chance to hit the window; on 3.11-3.13 the old code
    # crashes within a second or two, on 3.10 within 10 s five times in six.
    proc = run_script(tmp_path, RAW_RACE, args=[str(lib), "10", "2000"], timeout=60)
    assert_exit(proc, 0)
    lines = ok_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("OK cycles="), proc.stdout
