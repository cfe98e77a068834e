"""The retention analysis and the census, in-process: object starts match the
core's sampled addresses on this interpreter (pre-header layouts of 3.10-3.13),
dominators and retained sizes are right on hand-built graphs (pure Python and
real objects), the census counts types the GC does not track and their growth,
no user __eq__/__hash__/__repr__ is ever called, and a heap mutated by another
thread during the analysis does not crash it."""
from __future__ import annotations

import gc
import itertools
import random
import struct
import sys
import threading
from array import array
from typing import Dict, List, Set

import pytest

import memhound
from memhound import _core
from memhound.analysis import retention as rt
from memhound.analysis.census import census, census_growth

SECRET = "SECRET-5be1-unit"


def _live_ptrs() -> Set[int]:
    return {p for p, _s, _st, _e in struct.iter_unpack("=QQII", _core.live_samples(None))}


class Managed:
    def __init__(self) -> None:
        self.a = 1
        self.b = [1, 2, 3]


class Slotted:
    __slots__ = ("x", "__weakref__")


FACTORIES = {
    "managed instance": lambda i: Managed(),
    "slotted instance": lambda i: Slotted(),
    "list": lambda i: [i] * 100,
    "dict": lambda i: {"k%d" % k: k for k in range(20)},
    "set": lambda i: set(range(i, i + 50)),
    "bytearray": lambda i: bytearray(b"x" * 200),
    "str": lambda i: "s" * 1000 + str(i),
    "bytes": lambda i: b"b" * 500 + str(i).encode(),
    "int": lambda i: 10 ** 40 + i,
    "tuple": lambda i: tuple(range(i, i + 30)),
    "float": lambda i: i + 0.25,
}


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_object_starts_match_sampled_addresses(kind: str) -> None:
    """In exact mode every object's allocation is sampled: its start (the GC
    header and pre-header before the object) and its buffers are in the live
    table. Objects reused from a free list were never allocated, hence the
    margin."""
    make = FACTORIES[kind]
    memhound.start(sample_bytes=1)
    try:
        objs = [make(i) for i in range(300)]
        live = _live_ptrs()
    finally:
        memhound.stop()
    hits = sum(_core.alloc_start(o)[0] in live for o in objs)
    assert hits >= 150, (kind, hits)
    if kind in ("list", "dict", "set", "bytearray"):
        bufs = [b for o in objs for b in _core.alloc_start(o)[1]]
        assert bufs and sum(b in live for b in bufs) >= 0.9 * len(bufs), kind


def test_heap_sizeof_is_sys_getsizeof_for_builtins() -> None:
    for o in ([1, 2], {"a": 1}, "abc", b"x" * 9, 10 ** 30, 1.5, (1, 2), set(), Managed()):
        assert _core.heap_sizeof(o) == sys.getsizeof(o), type(o).__name__

    class Liar:
        def __sizeof__(self) -> int:
            raise AssertionError("a Python-level __sizeof__ was called")

    assert _core.heap_sizeof(Liar()) > 0


def _brute_idom(succ: Dict[int, List[int]], root: int) -> Dict[int, int]:
    def reach(skip: int) -> Set[int]:
        seen, todo = {root}, [root]
        while todo:
            for w in succ.get(todo.pop(), ()):
                if w != skip and w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    nodes = reach(-1)
    dom = {v: {d for d in nodes if d == v or d == root or v not in reach(d)} for v in nodes}
    idom = {root: root}
    for v in nodes - {root}:
        strict = dom[v] - {v}
        idom[v] = next(d for d in strict if all(e in dom[d] for e in strict))
    return idom


def test_pure_python_dominators_match_brute_force() -> None:
    rnd = random.Random(7)
    for _ in range(40):
        n = rnd.randint(2, 14)
        succ = {v: rnd.sample(range(n), min(n, rnd.randint(0, 3))) for v in range(n)}
        assert rt.dominators(succ, 0) == _brute_idom(succ, 0)


def test_retained_sizes_on_a_hand_built_graph() -> None:
    # 0 -> 1 -> 3, 0 -> 2 -> 3, 3 -> 4, 1 -> 5: 3 is shared, so only 0 retains it.
    succ = {0: [1, 2], 1: [3, 5], 2: [3], 3: [4]}
    size = {0: 1, 1: 10, 2: 100, 3: 1000, 4: 10000, 5: 5}
    ret = rt.retained_sizes(succ, 0, size)
    assert ret == {0: 11116, 1: 15, 2: 100, 3: 11000, 4: 10000, 5: 5}


def test_core_retained_sizes_on_real_objects() -> None:
    """The same shape made of lists: the core's retained sizes agree."""
    n4 = "".join(["x"] * 5000)
    n3 = [n4]
    n5: List[object] = []
    n1 = [n3, n5]
    n2 = [n3]
    root = [n1, n2]
    size = {k: sys.getsizeof(o) for k, o in enumerate((root, n1, n2, n3, n4, n5))}
    expect = rt.retained_sizes({0: [1, 2], 1: [3, 5], 2: [3], 3: [4]}, 0, size)
    start = _core.alloc_start(n4)[0]
    samples = struct.pack("=QII", start, 0, 0)
    _stats, groups = _core.heap_retention([root], None, samples, 1, 4, 0, True)
    matched, n_obj, _bytes, types, chains = groups[0]
    assert (matched, n_obj, dict(types)) == (1, 1, {"str": 1})
    kind, which, objs, sizes = chains[0]
    assert which == 0 and objs[0] is root and objs[-1] is n4 and len(objs) == 4
    by_obj = {id(o): s for o, s in zip(objs, sizes)}
    assert by_obj[id(root)] == expect[0]
    assert by_obj[id(n3)] == expect[3]
    assert by_obj[id(n4)] == expect[4]
    assert objs[1] is n1 or objs[1] is n2  # a shortest chain


def test_unreachable_cycle_and_c_held_objects_are_named() -> None:
    gc.disable()
    try:
        a: List[object] = []
        b = [a, "".join(["z"] * 3000)]
        a.append(b)
        start = _core.alloc_start(b[1])[0]
        del a, b
        samples = struct.pack("=QII", start, 0, 0)
        _stats, groups = _core.heap_retention([], gc.get_objects(), samples, 1, 2, 0, True)
        chains = groups[0][4]
        assert chains and chains[0][1] == -2  # unreachable
    finally:
        gc.enable()


def test_census_counts_untracked_types_and_growth() -> None:
    before = census()
    keep = ["s%07d" % i for i in range(5000)] + [float(i) + 0.5 for i in range(3000)]
    after = census()
    assert not gc.is_tracked(keep[0])
    growth = {t: d for t, _n, d in census_growth(before, after)}
    assert growth.get("str", 0) >= 4900
    assert growth.get("float", 0) >= 3000
    assert after["str"] >= 5000
    assert memhound.census()["str"] >= 5000
    del keep


class Booby:
    """Every special method a careless analysis might call raises."""

    calls = 0

    def __init__(self, i: int) -> None:
        self.secret = SECRET + str(i)
        self.pad = [i] * 30

    def _boom(self, *a: object) -> object:
        Booby.calls += 1
        raise AssertionError("user code was called")

    __eq__ = __ne__ = __repr__ = __str__ = __lt__ = _boom  # type: ignore[assignment]
    __hash__ = lambda self: Booby._boom(self)  # type: ignore[assignment]  # noqa: E731
    __len__ = __iter__ = __sizeof__ = __getattr__ = _boom  # type: ignore[assignment]


class Store(dict):  # type: ignore[type-arg]
    def items(self):  # type: ignore[no-untyped-def]
        raise AssertionError("an overridden items() was called")


_keep_store = Store()


def _fill(n: int) -> None:
    for i in range(n):
        _keep_store[i] = Booby(i)  # FILL


def test_no_user_code_runs_and_no_value_is_printed() -> None:
    memhound.start(sample_bytes=256)
    try:
        _fill(400)
        snap = memhound.snapshot()
        site = next(s.traceback[0] for s in snap.statistics("lineno")
                    if s.traceback[0].function.endswith("_fill"))
        r = snap.retention(site, program_globals=globals())
    finally:
        memhound.stop()
    assert Booby.calls == 0
    text = repr(r.retained_by) + repr(r.to_json()) + "\n".join(r.lines())
    assert SECRET not in text
    assert r.retained_by[0] == "module test_retention, global _keep_store (Store)" or \
        r.retained_by[0].endswith("global _keep_store (Store)"), r.retained_by
    assert r.type in ("Booby", "list", "str")
    _keep_store.clear()


def test_analysis_survives_a_heap_mutated_by_other_threads() -> None:
    stop = threading.Event()
    shared: Dict[int, object] = {}

    def churn() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            shared[i % 500] = [i] * (i % 50)
            if i % 7 == 0:
                shared.pop((i * 3) % 500, None)

    threads = [threading.Thread(target=churn, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    memhound.start(sample_bytes=64)
    try:
        for _ in range(5):
            samples = _core.live_samples(None)
            ids = array("I", range(1, 50)).tobytes()
            _core.live_samples(ids)
            res = rt.analyze_retention([("x", list(range(1, 200)))], samples)
            assert res.nodes > 0
            census()
    finally:
        memhound.stop()
        stop.set()
        for t in threads:
            t.join()


def test_enormous_heap_is_skipped_with_a_note() -> None:
    res = rt.analyze_retention([("site", [1])], b"", max_objects=10)
    assert res.skipped and res.sites[0].note == res.skipped


def test_live_samples_requires_tracking() -> None:
    with pytest.raises(RuntimeError):
        _core.live_samples(None)
