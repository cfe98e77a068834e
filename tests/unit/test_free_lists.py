"""Blocks parked on CPython's free lists are dead objects, not live memory:
``_core.forget_free_lists()`` reports the sampled ones to the engine as freed.

Each test runs in exact mode (every allocation is a sample), makes more objects
of one type at a marked line than the type's free list holds (so that most are
fresh allocations, not blocks handed out again from the list), drops them, and
checks that the ones CPython kept on its free list were still counted live at
that line before the call and are not after it."""
from __future__ import annotations

import contextvars
import sys

import pytest
from markers import allocation_stats, marker_line

import memhound
from memhound import _core

THIS_FILE = sys._getframe().f_code.co_filename
N = 5000  # more than any free list keeps (tuples: 2000 per size)


def live_at(snap: memhound.Snapshot, marker: str):
    stats = allocation_stats(snap, THIS_FILE, marker_line(THIS_FILE, "fl:" + marker))
    return sum(s.size for s in stats), sum(s.count for s in stats)


def make(kind: str, n: int):
    """n objects of one kind, each made by the marked line and nothing else
    (the list that holds them is made elsewhere)."""
    out = [None] * n
    for i in range(n):
        if kind == "tuple":
            out[i] = (i, i, i)  # fl:tuple
        elif kind == "float":
            out[i] = i * 1.5  # fl:float
        elif kind == "list":
            out[i] = [i]  # fl:list
        elif kind == "dict":
            out[i] = {"k": i}  # fl:dict
        elif kind == "context":
            out[i] = contextvars.copy_context()  # fl:context
        elif kind == "slice":
            out[i] = slice(i, None)  # fl:slice
    return out


def test_tuples_put_on_the_free_list_are_forgotten():
    memhound.start(sample_bytes=1)
    try:
        objs = make("tuple", N)
        made_bytes, made_count = live_at(memhound.snapshot(), "tuple")
        assert made_count >= N - 2000  # fresh allocations once the free list ran dry
        del objs
        before_bytes, before_count = live_at(memhound.snapshot(), "tuple")
        # Dropped tuples of size 3 went back to the free list (up to 2000 of
        # them) without being freed: they still count as live at their line.
        assert before_count >= 1000
        live_before = memhound.snapshot().tracked_bytes
        forgotten = _core.forget_free_lists()
        snap = memhound.snapshot()
        after_bytes, after_count = live_at(snap, "tuple")
    finally:
        memhound.stop()
    assert forgotten >= before_count
    assert after_count == 0
    assert after_bytes == 0
    # Forgotten through the engine's free path: the run's live total drops too.
    assert snap.tracked_bytes <= live_before - before_bytes + 1


# How many blocks each free list keeps at least (floats 100, lists 80, dicts 80
# and as many keys tables, contexts 255, one slice).
KEPT = {"float": 50, "list": 50, "dict": 50, "context": 100, "slice": 1}


@pytest.mark.parametrize("kind", sorted(KEPT))
def test_other_free_lists_are_forgotten(kind):
    memhound.start(sample_bytes=1)
    try:
        objs = make(kind, N)
        del objs
        before_bytes, before_count = live_at(memhound.snapshot(), kind)
        assert before_count >= KEPT[kind]
        forgotten = _core.forget_free_lists()
        after_bytes, after_count = live_at(memhound.snapshot(), kind)
    finally:
        memhound.stop()
    assert forgotten >= before_count
    assert (after_bytes, after_count) == (0, 0)


def test_live_objects_are_not_forgotten():
    memhound.start(sample_bytes=1)
    try:
        objs = make("tuple", N)
        before_bytes, before_count = live_at(memhound.snapshot(), "tuple")
        _core.forget_free_lists()
        after_bytes, after_count = live_at(memhound.snapshot(), "tuple")
        assert len(objs) == N
    finally:
        memhound.stop()
    assert before_count >= N - 2000
    assert (after_bytes, after_count) == (before_bytes, before_count)


def test_a_block_handed_out_again_is_simply_untracked():
    # After the call, a tuple taken from the free list is a new object in a
    # forgotten block: nothing is counted for it, and it can die onto the list
    # and be forgotten again without anything being subtracted twice.
    memhound.start(sample_bytes=1)
    try:
        objs = make("tuple", N)
        del objs
        first = _core.forget_free_lists()
        live_after_first = _core.totals()["live_bytes"]
        again = make("tuple", 1000)
        count_again = live_at(memhound.snapshot(), "tuple")[1]
        del again
        _core.forget_free_lists()
        count_end = live_at(memhound.snapshot(), "tuple")[1]
        totals = _core.totals()
    finally:
        memhound.stop()
    assert first >= 1000
    assert count_again == 0  # all 1000 came from the free list
    assert count_end == 0
    assert live_after_first >= 0
    assert totals["live_bytes"] >= 0


def test_forget_without_tracking_does_nothing():
    assert not memhound.is_tracking()
    assert _core.forget_free_lists() == 0
