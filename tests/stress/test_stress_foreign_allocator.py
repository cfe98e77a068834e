"""Another tool replacing Python's allocators around memhound: tracemalloc.

What this protects: memhound wraps whatever allocator it finds (so it can
start on top of tracemalloc), puts back exactly what it found, and, when
another tool wrapped memhound's hooks after start(), leaves them in place as
pass-through at stop() (with a RuntimeWarning) instead of pulling them out from
under the other tool. Without that care, blocks get freed by an allocator that
did not allocate them, or a hook calls into a stale chain: a crash, or
tracemalloc's books corrupted.
"""
import pytest

from _stress_harness import assert_exit, ok_lines, run_script

COMMON = r'''
import gc
import sys
import threading
import tracemalloc
import warnings

import memhound
from _stress_child import RawLoad, Threads, check_consistent, innermost_at, line_of, live_where

ME = __file__


def background(stop):
    # Python objects (with the GIL), across every switch.
    keep = []
    i = 0
    while not stop.is_set():
        i += 1
        keep.append([str(i)] * (i % 50))
        keep.append(bytearray(i % 7000))
        if len(keep) > 300:
            del keep[:200]


class switching:
    """Park the RAW thread while allocators are swapped: CPython's own
    tracemalloc start/stop is not safe against RAW calls in flight on these
    interpreters (python/cpython#128679), and memhound's own install race has
    its test in test_stress_start_stop.py. Between switches it runs."""

    def __enter__(self):
        raw.pause()

    def __exit__(self, *exc):
        raw.resume()


def work(n, size):
    return [bytearray(size) for _ in range(n)]  # <work>


def traced_at_work():
    snap = tracemalloc.take_snapshot()
    line = line_of("work")
    return sum(s.size for s in snap.statistics("lineno")
               if s.traceback[0].filename == ME and s.traceback[0].lineno == line)


stop = threading.Event()
threads = Threads()
for _ in range(2):
    threads.start(background, stop)
raw = RawLoad()
'''

TRACEMALLOC_AFTER = COMMON + r'''
try:
    with switching():
        memhound.start(1)
    a = work(20, 100_000)
    with switching():
        tracemalloc.start(5)  # wraps memhound's hooks
    b = work(20, 100_001)
    with warnings.catch_warnings(record=True) as caught, switching():
        warnings.simplefilter("always")
        memhound.stop()
    assert [w.category for w in caught] == [RuntimeWarning], [str(w.message) for w in caught]
    assert "another tool" in str(caught[0].message), caught[0].message
    assert not memhound.is_tracking()
    # The program keeps working, and tracemalloc keeps its books.
    c = work(30, 100_002)
    traced = traced_at_work()
    assert 50 * 100_001 <= traced <= 50 * 100_002 + 20_000, traced
    del a, b, c
    gc.collect()
    assert traced_at_work() < 20_000
    with switching():
        tracemalloc.stop()
    assert not tracemalloc.is_tracing()
    d = work(40, 100_003)
    del d
    # memhound's hooks are still in the chain (below nothing now), passing
    # through; it refuses to start on top of itself.
    try:
        memhound.start(1)
    except RuntimeError as e:
        print(f"OK start refused: {e}")
    else:
        raise AssertionError("memhound.start() accepted hooks still wrapped")
    # tracemalloc can come and go again over the orphaned hooks.
    with switching():
        tracemalloc.start()
    e = work(10, 100_004)
    assert traced_at_work() >= 10 * 100_004
    del e
    with switching():
        tracemalloc.stop()
finally:
    stop.set()
    raw.stop()
threads.join()
assert raw.ops > 0, raw.ops
print("OK done")
'''


def test_tracemalloc_started_after_memhound_then_memhound_stop_warns_and_program_continues(tmp_path):
    proc = run_script(tmp_path, TRACEMALLOC_AFTER, timeout=60)
    assert_exit(proc, 0)
    lines = ok_lines(proc)
    assert len(lines) == 2 and lines[0].startswith("OK start refused") and lines[1] == "OK done", (
        proc.stdout
    )


TRACEMALLOC_BEFORE = COMMON + r'''
try:
    for cycle in range(3):
        with switching():
            tracemalloc.start(3)
        a = work(10, 100_000)
        with switching():
            memhound.start(1)  # wraps tracemalloc's hooks
        b = work(20, 100_001)
        snap = memhound.snapshot()
        check_consistent(snap, True, "on top of tracemalloc")
        mb, mn = live_where(snap, innermost_at(ME, [line_of("work")]))
        # memhound sees what it wrapped: b, not a.
        assert 20 * 100_001 <= mb <= 20 * 100_001 + 10_000, mb
        # tracemalloc, below memhound, sees both.
        traced = traced_at_work()
        assert 10 * 100_000 + 20 * 100_001 <= traced <= 30 * 100_001 + 20_000, traced
        with warnings.catch_warnings(), switching():
            warnings.simplefilter("error")
            memhound.stop()  # puts tracemalloc's hooks back: no warning
        assert tracemalloc.is_tracing()
        c = work(5, 100_002)
        assert traced_at_work() >= 10 * 100_000 + 20 * 100_001 + 5 * 100_002
        del a, b, c
        gc.collect()
        assert traced_at_work() < 20_000, traced_at_work()
        with switching():
            tracemalloc.stop()
        assert not tracemalloc.is_tracing()
        # And memhound alone once more.
        with switching():
            memhound.start(1)
        f = work(3, 100_005)
        mb, _ = live_where(memhound.snapshot(), innermost_at(ME, [line_of("work")]))
        assert 3 * 100_005 <= mb <= 3 * 100_005 + 5_000, mb
        del f
        with switching():
            memhound.stop()
finally:
    stop.set()
    raw.stop()
threads.join()
assert raw.ops > 0, raw.ops
print("OK done")
'''


def test_memhound_started_on_top_of_tracemalloc_and_stopped_first(tmp_path):
    proc = run_script(tmp_path, TRACEMALLOC_BEFORE, timeout=60)
    assert_exit(proc, 0)
    assert ok_lines(proc) == ["OK done"], proc.stdout


# The other order: memhound started on top of tracemalloc, tracemalloc stopped
# first. tracemalloc puts back the allocator it saved, which drops memhound's
# hooks out of the chain: nothing of memhound's is installed any more. The
# program must keep working, memhound.stop() must not fail, and since none of
# its hooks remain, memhound must be able to start again and track.
TRACEMALLOC_STOPPED_UNDERNEATH = COMMON + r"""
try:
    with switching():
        tracemalloc.start()
    with switching():
        memhound.start(1)
    a = work(5, 100_000)
    with switching():
        tracemalloc.stop()  # restores the allocator it saved: memhound is cut out
    b = work(5, 100_001)
    with warnings.catch_warnings(record=True), switching():
        warnings.simplefilter("always")
        memhound.stop()
    assert not memhound.is_tracking()
    del a, b
    with switching():
        memhound.start(1)  # nothing of memhound's is in the chain: must work
    c = work(7, 100_002)
    mb, _ = live_where(memhound.snapshot(), innermost_at(ME, [line_of("work")]))
    assert 7 * 100_002 <= mb <= 7 * 100_002 + 5_000, mb
    del c
    with switching():
        memhound.stop()
finally:
    stop.set()
    raw.stop()
threads.join()
print("OK done")
"""


def test_tracemalloc_stopped_underneath_memhound_then_memhound_can_start_again(tmp_path):
    proc = run_script(tmp_path, TRACEMALLOC_STOPPED_UNDERNEATH, timeout=60)
    assert_exit(proc, 0)
    assert ok_lines(proc) == ["OK done"], proc.stdout
