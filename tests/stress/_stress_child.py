"""Child-side helpers for the stress suite: imported by the scripts that the
tests run in a subprocess (see _stress_harness.py). Checks raise AssertionError
with a message; an uncaught one makes the child exit 1 and fails the test."""
from __future__ import annotations

import math
import os
import sys
import threading
from typing import Callable, Iterable, Optional, Tuple

import memhound

#: Running with gcc's AddressSanitizer runtime preloaded (scripts/sanitize.sh).
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")

# -- the program's own source ----------------------------------------------


def line_of(marker: str, filename: Optional[str] = None) -> int:
    """Line number of the one line of `filename` (default: __main__'s file)
    that contains the comment `# <marker>`."""
    if filename is None:
        filename = sys.modules["__main__"].__file__
    tag = f"# <{marker}>"
    hits = [i for i, line in enumerate(open(filename).read().splitlines(), 1) if tag in line]
    assert len(hits) == 1, f"marker {tag} found {len(hits)} times in {filename}"
    return hits[0]


def short(function: str) -> str:
    """Bare function name from a qualified name (3.11+) or a plain one (3.10)."""
    return function.rsplit(".", 1)[-1]


# -- snapshot queries -----------------------------------------------------


def live_where(snap: memhound.Snapshot, pred: Callable) -> Tuple[float, float]:
    """(live bytes, live count) of the stacks whose Traceback satisfies pred."""
    b = n = 0.0
    for sid, (lb, ln, _v, _k) in snap.live_by_stack().items():
        if pred(snap.traceback(sid)):
            b += lb
            n += ln
    return b, n


def allocated_where(snap: memhound.Snapshot, pred: Callable) -> float:
    """Estimated bytes allocated, over all epochs, by stacks satisfying pred."""
    total = 0.0
    for sid, rows in snap.site_epochs().items():
        if pred(snap.traceback(sid)):
            total += sum(r.alloc_bytes for r in rows)
    return total


def in_function(name: str, filename: Optional[str] = None) -> Callable:
    """Predicate: some frame of the stack is function `name` (of `filename`)."""

    def pred(tb) -> bool:
        return any(
            short(f.function) == name and (filename is None or f.filename == filename) for f in tb
        )

    return pred


def innermost_at(filename: str, lines: Iterable[int]) -> Callable:
    lines = set(lines)

    def pred(tb) -> bool:
        return bool(tb) and tb[0].filename == filename and tb[0].lineno in lines

    return pred


def check_consistent(snap: memhound.Snapshot, exact: bool, where: str = "") -> None:
    """The tables agree with each other: nothing dropped; samples minus frees
    is the number of live entries; the live table summed by stack equals the
    running totals (exactly in exact mode, where every weight is 1)."""
    t = snap.totals
    ctx = f" ({where})" if where else ""
    assert t["dropped"] == 0, f"dropped samples: {t['dropped']}{ctx}"
    assert t["samples"] - t["frees"] == t["live_entries"], (
        f"samples {t['samples']} - frees {t['frees']} != live entries {t['live_entries']}{ctx}"
    )
    by_stack = snap.live_by_stack()
    b = sum(v[0] for v in by_stack.values())
    n = sum(v[1] for v in by_stack.values())
    k = sum(v[3] for v in by_stack.values())
    assert k == t["live_entries"], f"live entries by stack {k} != {t['live_entries']}{ctx}"
    if exact:
        assert b == t["live_bytes"], f"live bytes by stack {b} != total {t['live_bytes']}{ctx}"
        assert n == t["live_count"] == t["live_entries"], (
            f"live count {n} / {t['live_count']} / {t['live_entries']}{ctx}"
        )
    else:
        tol = 1e-6 * max(t["peak_bytes"], 1.0) + 1.0
        assert math.isclose(b, t["live_bytes"], abs_tol=tol), (
            f"live bytes by stack {b} != total {t['live_bytes']}{ctx}"
        )
    assert t["live_bytes"] >= -1e-6 * max(t["peak_bytes"], 1.0), f"negative live bytes{ctx}"
    for sid in by_stack:
        assert sid in snap.stack_ids, f"live entry with unknown stack id {sid}{ctx}"


# -- threads ----------------------------------------------------------------


class Threads:
    """Start functions in threads; join() re-raises the first exception any of
    them raised, so that a failed check in a thread fails the child. Threads
    are daemons unless asked otherwise, so that a failed check in the main
    thread ends the child at once instead of waiting for them."""

    def __init__(self) -> None:
        self.threads = []
        self.errors = []

    def start(self, fn: Callable, *args, daemon: bool = True, name: Optional[str] = None):
        def run() -> None:
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - reported by join()
                self.errors.append(e)
                raise

        t = threading.Thread(target=run, daemon=daemon, name=name)
        t.start()
        self.threads.append(t)
        return t

    def join(self, timeout: float = 120.0) -> None:
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive(), f"thread {t.name} did not finish"
        if self.errors:
            raise self.errors[0]


# -- raw allocator through ctypes -------------------------------------------


def raw_api(release_gil: bool = True):
    """PyMem_RawMalloc/Realloc/Free of the running interpreter. Through
    ctypes.CDLL the GIL is released for the duration of each call, so the hooks
    run in a thread that does not hold it; PyDLL keeps it."""
    import ctypes

    lib = ctypes.CDLL(None) if release_gil else ctypes.PyDLL(None)
    malloc = lib.PyMem_RawMalloc
    malloc.restype = ctypes.c_void_p
    malloc.argtypes = [ctypes.c_size_t]
    realloc = lib.PyMem_RawRealloc
    realloc.restype = ctypes.c_void_p
    realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    free = lib.PyMem_RawFree
    free.restype = None
    free.argtypes = [ctypes.c_void_p]
    return malloc, realloc, free


class RawLoad:
    """A thread making RAW allocations without the GIL (through ctypes.CDLL)
    that can be parked: pause() returns once it is between calls, resume()
    lets it go on. Used to keep such calls away from moments when another
    tool (tracemalloc) swaps the allocators, which is racy in CPython itself
    before 3.12.9 / 3.13.2 (python/cpython#128679)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.want_pause = False
        self.parked = False
        self.quit = False
        self.ops = 0
        self.malloc, self.realloc, self.free = raw_api(release_gil=True)
        self.thread = threading.Thread(target=self._run, daemon=True, name="raw-load")
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while True:
            with self.cond:
                if self.quit:
                    return
                if self.want_pause:
                    self.parked = True
                    self.cond.notify_all()
                    while self.want_pause and not self.quit:
                        self.cond.wait()
                    self.parked = False
                    continue
            for _ in range(50):
                i += 1
                p = self.malloc(64 + i % 4000)
                p = self.realloc(p, 32 + i % 9000)
                self.free(p)
            self.ops += 50

    def pause(self) -> None:
        with self.cond:
            self.want_pause = True
            while not self.parked:
                self.cond.wait()

    def resume(self) -> None:
        with self.cond:
            self.want_pause = False
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.quit = True
            self.cond.notify_all()
        self.thread.join(30)
        assert not self.thread.is_alive(), "raw-load thread did not stop"


class NativeRawLoop:
    """Threads running the C loop built by _stress_harness.build_raw_loop: RAW
    allocations without the GIL, back to back. pause() returns once every
    loop is parked between two allocations; resume() lets them go on."""

    def __init__(self, lib_path: str, n_threads: int = 1) -> None:
        import ctypes

        self.lib = ctypes.CDLL(lib_path)
        self.lib.raw_loop.restype = ctypes.c_long
        self.lib.raw_loop.argtypes = [ctypes.POINTER(ctypes.c_int)] * 3
        self.flag_stop = ctypes.c_int(0)
        self.flag_pause = ctypes.c_int(0)
        self.parked = [ctypes.c_int(0) for _ in range(n_threads)]
        self.counts = []
        self.threads = []
        for k in range(n_threads):
            t = threading.Thread(target=self._run, args=(k,), daemon=True, name=f"raw-loop-{k}")
            t.start()
            self.threads.append(t)

    def _run(self, k: int) -> None:
        import ctypes

        self.counts.append(self.lib.raw_loop(ctypes.byref(self.flag_stop),
                                             ctypes.byref(self.flag_pause),
                                             ctypes.byref(self.parked[k])))

    def pause(self) -> None:
        import time

        self.flag_pause.value = 1
        while not all(p.value for p in self.parked):
            if not any(t.is_alive() for t in self.threads):
                return
            time.sleep(0.0002)

    def resume(self) -> None:
        self.flag_pause.value = 0

    def stop(self) -> int:
        self.flag_stop.value = 1
        for t in self.threads:
            t.join(30)
            assert not t.is_alive(), "raw loop did not stop"
        return sum(self.counts)
