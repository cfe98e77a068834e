"""Threads started before start() and after it are tracked alike, with their own
stacks.

What this protects: per-thread state that is created lazily (a thread that
existed before start() has a stale or empty sampler state and must pick up the
new run on its first allocation), and a frame walker that reads the calling
thread's frames, not the main thread's nor another thread's. Without that care
the early thread's allocations go missing or land on the wrong stack.
"""
import pytest

from _stress_harness import assert_exit, ok_lines, run_script

BEFORE_AND_AFTER = r'''
import gc
import sys
import threading

import memhound
from _stress_child import check_consistent, line_of, live_where, short

SAMPLE_BYTES = int(sys.argv[1])
EXACT = SAMPLE_BYTES == 1
ME = __file__
N, SIZE = 50, 200_003


def alloc_early(out):
    out.extend(bytearray(SIZE) for _ in range(N))  # <early-alloc>


def early_thread(go, out, done):
    go.wait()
    alloc_early(out)
    done.set()


def alloc_late(out):
    out.extend(bytearray(SIZE + 1) for _ in range(N))  # <late-alloc>


def late_thread(out):
    alloc_late(out)


# The early thread exists, and has allocated, before tracking starts.
warmup = [bytearray(1000) for _ in range(100)]
go, done = threading.Event(), threading.Event()
early_out, late_out = [], []
t1 = threading.Thread(target=early_thread, args=(go, early_out, done), name="early")
t1.start()
memhound.start(SAMPLE_BYTES, seed=3)
go.set()
done.wait(30)
t2 = threading.Thread(target=late_thread, args=(late_out,), name="late")
t2.start()
t2.join()
t1.join()
snap = memhound.snapshot()
check_consistent(snap, EXACT)

early_line, late_line = line_of("early-alloc"), line_of("late-alloc")


def stack_is(line, names):
    """Innermost frame at our line, then exactly these functions of ours, then
    threading's frames only."""
    def pred(tb):
        if not tb or tb[0].filename != ME or tb[0].lineno != line:
            return False
        ours = [short(f.function) for f in tb if f.filename == ME]
        rest = [f for f in tb if f.filename != ME]
        return ours[-len(names):] == names and all(
            f.filename.endswith("threading.py") for f in rest)
    return pred


# The comprehension is a frame of its own before 3.12.
early_names = ["alloc_early", "early_thread"]
late_names = ["alloc_late", "late_thread"]
eb, ec = live_where(snap, stack_is(early_line, early_names))
lb, lc = live_where(snap, stack_is(late_line, late_names))
print(f"OK early={eb:.0f}/{ec:.0f} late={lb:.0f}/{lc:.0f}")
if EXACT:
    assert N * SIZE <= eb <= N * (SIZE + 200) and ec >= N, (eb, ec)
    assert N * (SIZE + 1) <= lb <= N * (SIZE + 201) and lc >= N, (lb, lc)
else:
    assert 0.8 * N * SIZE <= eb <= 1.2 * N * SIZE, eb
    assert 0.8 * N * SIZE <= lb <= 1.2 * N * SIZE, lb
# No block of that size is attributed anywhere else (e.g. to the main thread).
elsewhere = 0.0
for sid, (b, n, _v, _k) in snap.live_by_stack().items():
    tb = snap.traceback(sid)
    if tb and tb[0].filename == ME and tb[0].lineno in (early_line, late_line):
        continue
    elsewhere += b
assert elsewhere < 0.2 * N * SIZE, elsewhere
del early_out[:], late_out[:]
gc.collect()
snap = memhound.snapshot()
eb2, _ = live_where(snap, stack_is(early_line, early_names))
lb2, _ = live_where(snap, stack_is(late_line, late_names))
assert eb2 < 0.05 * N * SIZE and lb2 < 0.05 * N * SIZE, (eb2, lb2)
memhound.stop()
print("OK stopped")
'''


@pytest.mark.parametrize("sample_bytes", [pytest.param(1, id="exact"),
                                          pytest.param(65536, id="sampled")])
def test_threads_started_before_and_after_start_are_tracked_on_their_own_stacks(
    tmp_path, sample_bytes
):
    proc = run_script(tmp_path, BEFORE_AND_AFTER, args=[str(sample_bytes)], timeout=40)
    assert_exit(proc, 0)
    assert len(ok_lines(proc)) == 2, proc.stdout
