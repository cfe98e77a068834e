"""Stacks are right on every supported interpreter (3.10 to 3.13).

Every test tracks in exact mode, makes an allocation of a recognisable size on
a line marked with a ``# stacks:...`` comment, and checks the stack memhound
recorded for it: innermost frame first, the line numbers of every frame we can
predict, and the function names (plain names on 3.10, qualified names from
3.11, and no frame of their own for list/dict/set comprehensions from 3.12).
Line numbers are looked up from the marker comments, never written down.
"""
from __future__ import annotations

import asyncio
import functools
import gc
import os
import sys
import threading
import weakref

import pytest
from markers import allocation_stats, expected_name, marker_line

import memhound

THIS_FILE = sys._getframe().f_code.co_filename
#: PEP 709 (3.12): list, dict and set comprehensions run in the enclosing frame.
INLINED_COMPREHENSIONS = sys.version_info >= (3, 12)


def line(marker: str) -> int:
    return marker_line(THIS_FILE, "stacks:" + marker)


def tracked(fn, *, max_frames: int = memhound.DEFAULT_MAX_FRAMES) -> memhound.Snapshot:
    """Run ``fn()`` in exact mode and return the snapshot taken right after."""
    memhound.start(sample_bytes=1, max_frames=max_frames)
    try:
        fn()
        return memhound.snapshot()
    finally:
        memhound.stop()


def stack_at(snap: memhound.Snapshot, marker: str) -> memhound.Traceback:
    """The stack of the biggest live allocation made on the marked line."""
    stats = allocation_stats(snap, THIS_FILE, line(marker))
    assert stats, f"no live allocation recorded at line {line(marker)} ({marker})"
    return stats[0].traceback


def frames(tb, n=None):
    """(lineno, function) of the first n frames that belong to this file."""
    return [(f.lineno, f.function) for f in tb[:n] if f.filename == THIS_FILE]


# --------------------------------------------------------------------------
# Plain nested calls


def _level3(keep):
    keep.append(bytearray(100_003))  # stacks:level3


def _level2(keep):
    _level3(keep)  # stacks:level2


def _level1(keep):
    _level2(keep)  # stacks:level1


def test_nested_calls_are_reported_innermost_first_with_each_call_line():
    keep = []
    snap = tracked(lambda: _level1(keep))  # stacks:level0
    tb = stack_at(snap, "level3")
    assert not tb.truncated
    assert [(f.filename, f.lineno, f.function) for f in tb[:4]] == [
        (THIS_FILE, line("level3"), "_level3"),
        (THIS_FILE, line("level2"), "_level2"),
        (THIS_FILE, line("level1"), "_level1"),
        (THIS_FILE, line("level0"), expected_name(
            "test_nested_calls_are_reported_innermost_first_with_each_call_line.<locals>.<lambda>")),
    ]
    # The lambda was called by tracked(), which was called by the test itself.
    names = [f.function for f in tb]
    assert "tracked" in names
    assert "test_nested_calls_are_reported_innermost_first_with_each_call_line" in names


def test_the_allocation_size_is_attributed_to_the_allocating_line_only():
    keep = []
    snap = tracked(lambda: _level1(keep))
    size = sum(st.size for st in allocation_stats(snap, THIS_FILE, line("level3")))
    # bytearray(n): the object header plus an n+1 byte buffer.
    assert 100_004 <= size <= 100_004 + 256
    # The callers allocated nothing themselves.
    for marker in ("level2", "level1"):
        assert sum(st.size for st in allocation_stats(snap, THIS_FILE, line(marker))) < 1024


# --------------------------------------------------------------------------
# Generators


def _generator(n):
    for i in range(n):
        yield bytearray(50_000 + i)  # stacks:generator


def _make_generator():
    return _generator(3)


def _advance(gen, keep):
    keep.append(next(gen))  # stacks:generator-resumer


def test_generator_frame_is_innermost_and_its_caller_is_whoever_resumed_it():
    keep = []
    gen = _make_generator()

    def body():
        for _ in range(3):
            _advance(gen, keep)

    snap = tracked(body)
    tb = stack_at(snap, "generator")
    assert (tb[0].lineno, tb[0].function) == (line("generator"), "_generator")
    # The generator was created by _make_generator but resumed by _advance.
    assert (tb[1].filename, tb[1].lineno, tb[1].function) == (
        THIS_FILE, line("generator-resumer"), "_advance")
    assert "_make_generator" not in [f.function for f in tb]
    total = sum(st.size for st in allocation_stats(snap, THIS_FILE, line("generator")))
    assert total >= 3 * 50_001 + 3


def test_generator_consumed_by_list_shows_the_consuming_line():
    keep = []
    snap = tracked(lambda: keep.extend(_generator(4)))  # stacks:generator-list
    tb = stack_at(snap, "generator")
    assert frames(tb, 2) == [
        (line("generator"), "_generator"),
        (line("generator-list"), expected_name(
            "test_generator_consumed_by_list_shows_the_consuming_line.<locals>.<lambda>")),
    ]


# --------------------------------------------------------------------------
# Coroutines (asyncio)


async def _coro_leaf(keep, n):
    await asyncio.sleep(0)
    keep.append(bytearray(n))  # stacks:coroutine


async def _coro_parent(keep):
    await _coro_leaf(keep, 70_001)  # stacks:coroutine-await


async def _coro_gather(keep):
    await asyncio.gather(*(_coro_leaf(keep, 71_000 + 1000 * i) for i in range(4)))


def test_coroutine_stack_shows_the_awaiting_coroutine_after_a_suspension():
    keep = []
    snap = tracked(lambda: asyncio.run(_coro_parent(keep)))
    tb = stack_at(snap, "coroutine")
    assert frames(tb, 2) == [
        (line("coroutine"), "_coro_leaf"),
        (line("coroutine-await"), "_coro_parent"),
    ]
    # After the sleep the task is resumed by the event loop: below the two
    # coroutines come asyncio's frames, then whoever called asyncio.run.
    assert "asyncio" in tb[2].filename
    assert "tracked" in [f.function for f in tb]


def test_gathered_coroutines_each_attribute_their_own_allocation():
    keep = []
    snap = tracked(lambda: asyncio.run(_coro_gather(keep)))
    stats = allocation_stats(snap, THIS_FILE, line("coroutine"))
    assert all(st.traceback[0].function == "_coro_leaf" for st in stats)
    total = sum(st.size for st in stats)
    expected = sum(71_000 + 1000 * i + 1 for i in range(4))
    assert expected <= total <= expected + 4 * 256
    for st in stats:
        assert all(f.function != "_coro_parent" for f in st.traceback)


# --------------------------------------------------------------------------
# Comprehensions and generator expressions


def _list_comp():
    return [bytes(2000 + i) for i in range(40)]  # stacks:listcomp


def _dict_comp():
    return {i: bytes(3000 + i) for i in range(40)}  # stacks:dictcomp


def _set_comp():
    return {bytes(4000 + i) for i in range(40)}  # stacks:setcomp


def _gen_expr():
    return list(bytes(5000 + i) for i in range(40))  # stacks:genexpr


@pytest.mark.parametrize(
    "fn, marker, comp",
    [
        (_list_comp, "listcomp", "<listcomp>"),
        (_dict_comp, "dictcomp", "<dictcomp>"),
        (_set_comp, "setcomp", "<setcomp>"),
    ],
)
def test_comprehension_frames_match_the_interpreter(fn, marker, comp):
    keep = []
    snap = tracked(lambda: keep.append(fn()))  # stacks:comp-caller
    tb = stack_at(snap, marker)
    outer = fn.__name__
    if INLINED_COMPREHENSIONS:
        # PEP 709: the comprehension runs in the enclosing function's frame.
        assert frames(tb, 2) == [
            (line(marker), outer),
            (line("comp-caller"),
             "test_comprehension_frames_match_the_interpreter.<locals>.<lambda>"),
        ]
        assert not any(f.function.endswith(comp) for f in tb)
    else:
        assert frames(tb, 2) == [
            (line(marker), expected_name(f"{outer}.<locals>.{comp}")),
            (line(marker), outer),
        ]
    # Forty objects of 2000+ bytes each, all on the comprehension's line.
    total = sum(st.size for st in allocation_stats(snap, THIS_FILE, line(marker)))
    assert total >= 40 * 2000


def test_generator_expression_keeps_its_own_frame_on_every_version():
    keep = []
    snap = tracked(lambda: keep.append(_gen_expr()))
    tb = stack_at(snap, "genexpr")
    assert frames(tb, 2) == [
        (line("genexpr"), expected_name("_gen_expr.<locals>.<genexpr>")),
        (line("genexpr"), "_gen_expr"),
    ]


# --------------------------------------------------------------------------
# Class bodies, lambdas, decorators


def _make_class():
    class Holder:  # stacks:class-statement
        payload = bytearray(60_001)  # stacks:class-body

    return Holder


def test_class_body_is_a_frame_named_after_the_class():
    keep = []
    snap = tracked(lambda: keep.append(_make_class()))
    tb = stack_at(snap, "class-body")
    assert frames(tb, 2) == [
        (line("class-body"), expected_name("_make_class.<locals>.Holder")),
        (line("class-statement"), "_make_class"),
    ]


_module_lambda = lambda n: bytearray(n)  # noqa: E731  # stacks:module-lambda


def test_lambda_frames_are_named_lambda():
    keep = []
    local_lambda = lambda n: bytearray(n)  # noqa: E731  # stacks:local-lambda

    def body():
        keep.append(_module_lambda(61_001))  # stacks:lambda-caller
        keep.append(local_lambda(62_001))

    snap = tracked(body)
    tb = stack_at(snap, "module-lambda")
    assert frames(tb, 2) == [
        (line("module-lambda"), "<lambda>"),
        (line("lambda-caller"), expected_name("test_lambda_frames_are_named_lambda.<locals>.body")),
    ]
    tb = stack_at(snap, "local-lambda")
    assert tb[0].function == expected_name("test_lambda_frames_are_named_lambda.<locals>.<lambda>")


def test_lambdas_created_in_a_loop_all_attribute_to_the_lambda_line():
    keep = []

    def body():
        for i in range(50):
            make = lambda: bytes(3000 + i)  # noqa: E731  # stacks:loop-lambda
            keep.append(make())
            del make

    snap = tracked(body)
    stats = allocation_stats(snap, THIS_FILE, line("loop-lambda"))
    assert {st.traceback[0].function for st in stats} == {
        expected_name("test_lambdas_created_in_a_loop_all_attribute_to_the_lambda_line"
                       ".<locals>.body.<locals>.<lambda>")}
    # bytes(n) is one allocation of its object size.
    expected = sum(sys.getsizeof(bytes(3000 + i)) for i in range(50))
    assert sum(st.size for st in stats) == expected
    assert sum(st.count for st in stats) == 50


def _logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)  # stacks:wrapper-call

    return wrapper


def _timed(fn):
    @functools.wraps(fn)
    def timing_wrapper(*args, **kwargs):
        return fn(*args, **kwargs)  # stacks:outer-wrapper-call

    return timing_wrapper


@_timed
@_logged
def _decorated(keep):
    keep.append(bytearray(80_001))  # stacks:decorated


def test_decorator_wrapper_frames_appear_between_caller_and_decorated_function():
    keep = []
    snap = tracked(lambda: _decorated(keep))  # stacks:decorated-caller
    tb = stack_at(snap, "decorated")
    assert frames(tb, 4) == [
        (line("decorated"), "_decorated"),  # functools.wraps does not rename code
        (line("wrapper-call"), expected_name("_logged.<locals>.wrapper")),
        (line("outer-wrapper-call"), expected_name("_timed.<locals>.timing_wrapper")),
        (line("decorated-caller"), expected_name(
            "test_decorator_wrapper_frames_appear_between_caller_and_decorated_function"
            ".<locals>.<lambda>")),
    ]


class _Service:
    def handle(self, keep):
        keep.append(bytearray(81_001))  # stacks:method

    @staticmethod
    def helper(keep):
        keep.append(bytearray(82_001))  # stacks:staticmethod


def test_methods_are_named_with_their_class_from_3_11():
    keep = []
    snap = tracked(lambda: (_Service().handle(keep), _Service.helper(keep)))
    assert stack_at(snap, "method")[0].function == expected_name("_Service.handle")
    assert stack_at(snap, "staticmethod")[0].function == expected_name("_Service.helper")


# --------------------------------------------------------------------------
# Threads


def _thread_body(keep, n):
    keep.append(bytearray(n))  # stacks:thread


def _join_all(threads):
    for t in threads:
        t.join()  # stacks:main-waits


def test_allocations_in_a_thread_show_the_threads_frames_not_the_main_threads():
    keep = []

    def body():
        threads = [threading.Thread(target=_thread_body, args=(keep, 90_001 + 1000 * i))
                   for i in range(4)]
        for t in threads:
            t.start()
        _join_all(threads)

    snap = tracked(body)
    stats = allocation_stats(snap, THIS_FILE, line("thread"))
    assert stats
    total = sum(st.size for st in stats)
    expected = sum(90_002 + 1000 * i for i in range(4))
    assert expected <= total <= expected + 4 * 256
    for st in stats:
        tb = st.traceback
        assert tb[0].function == "_thread_body"
        names = [f.function for f in tb]
        # The thread's own stack: threading's bootstrap, then Thread.run...
        assert tb[-1].filename == threading.__file__
        assert any(f.filename == threading.__file__ and f.function.endswith("run") for f in tb)
        # ...and nothing of the main thread, which sat in _join_all meanwhile.
        assert "_join_all" not in names
        assert not any(n.startswith("test_allocations_in_a_thread") for n in names)
        assert [f for f in tb if f.filename == THIS_FILE] == [tb[0]]


def test_main_thread_stack_is_unaffected_by_a_concurrently_allocating_thread():
    keep = []
    churn = []
    started = threading.Event()
    release = threading.Event()

    def worker():
        started.set()
        while not release.is_set():
            churn.append(bytes(100))  # stacks:busy-thread
            if len(churn) > 1000:
                churn.clear()

    def body():
        t = threading.Thread(target=worker)
        t.start()
        started.wait()
        try:
            for _ in range(200):
                keep.append(bytearray(40_001))  # stacks:main-while-thread-runs
        finally:
            release.set()
            t.join()

    snap = tracked(body)
    main_stats = allocation_stats(snap, THIS_FILE, line("main-while-thread-runs"))
    assert sum(st.size for st in main_stats) >= 200 * 40_002
    for st in main_stats:
        assert [f.function for f in st.traceback[:2]] == [expected_name(
            "test_main_thread_stack_is_unaffected_by_a_concurrently_allocating_thread.<locals>.body"),
            "tracked"]
    for st in allocation_stats(snap, THIS_FILE, line("busy-thread")):
        assert st.traceback[-1].filename == threading.__file__
        assert "body" not in [f.function.rsplit(".", 1)[-1] for f in st.traceback]


# --------------------------------------------------------------------------
# Deep recursion and max_frames


def _recurse(depth, keep, probe=None):
    if depth == 0:
        if probe is not None:
            f, n = sys._getframe(), 0
            while f is not None:
                n, f = n + 1, f.f_back
            probe.append(n)
            return
        keep.append(bytearray(110_001))  # stacks:recursion-leaf
        return
    _recurse(depth - 1, keep, probe)  # stacks:recursion-call


def test_recursion_deeper_than_max_frames_keeps_the_innermost_frames_and_is_marked_truncated():
    keep = []
    snap = tracked(lambda: _recurse(40, keep), max_frames=16)
    assert snap.max_frames == 16
    tb = stack_at(snap, "recursion-leaf")
    assert tb.truncated
    assert len(tb) == 16
    assert (tb[0].lineno, tb[0].function) == (line("recursion-leaf"), "_recurse")
    assert all((f.filename, f.lineno, f.function) == (THIS_FILE, line("recursion-call"), "_recurse")
               for f in tb[1:])
    assert "truncated" in "\n".join(tb.format())


def test_max_frames_one_keeps_only_the_allocating_frame():
    keep = []
    snap = tracked(lambda: _recurse(3, keep), max_frames=1)
    tb = stack_at(snap, "recursion-leaf")
    assert tb.truncated
    assert [(f.lineno, f.function) for f in tb] == [(line("recursion-leaf"), "_recurse")]


def test_a_stack_exactly_max_frames_deep_is_complete_and_one_deeper_is_truncated():
    keep = []
    probe = []

    def measure():
        _recurse(10, keep, probe)

    # Count the Python frames at the leaf along the same call path as run().
    tracked(measure)
    depth = probe[0]

    def run():
        _recurse(10, keep)

    # run() and measure() sit at the same depth, so the leaf's stack is `depth` deep.
    snap = tracked(run, max_frames=depth)
    tb = stack_at(snap, "recursion-leaf")
    assert len(tb) == depth
    assert not tb.truncated

    keep.clear()
    snap = tracked(run, max_frames=depth - 1)
    tb = stack_at(snap, "recursion-leaf")
    assert len(tb) == depth - 1
    assert tb.truncated


def test_stacks_shallower_than_max_frames_are_complete():
    keep = []
    snap = tracked(lambda: _recurse(5, keep), max_frames=512)
    tb = stack_at(snap, "recursion-leaf")
    assert not tb.truncated
    assert [f.lineno for f in tb[:6]] == [line("recursion-leaf")] + [line("recursion-call")] * 5


# --------------------------------------------------------------------------
# Code that comes and goes: exec'd snippets, short-lived code objects


def test_exec_snippets_with_distinct_filenames_attribute_to_their_own_file_and_line():
    count = 150
    keep = [None] * count
    names = []

    def body():
        for i in range(count):
            name = f"<memhound-snippet-{i}>"
            names.append(name)
            src = "\n" * (i % 7) + f"KEEP[{i}] = bytes({1000 + 16 * i})\n"
            code = compile(src, name, "exec")
            exec(code, {"KEEP": keep})
            del code

    snap = tracked(body)
    for i, name in enumerate(names):
        stats = allocation_stats(snap, name, i % 7 + 1)
        assert [st.traceback[0].function for st in stats] == ["<module>"], name
        assert sum(st.size for st in stats) == sys.getsizeof(keep[i]), name
        assert sum(st.count for st in stats) == 1, name
    # No snippet's allocation was credited to another snippet's file.
    snippet_stats = [st for st in snap.statistics("lineno")
                     if st.traceback[0].filename.startswith("<memhound-snippet-")]
    assert len(snippet_stats) == count


def test_functions_from_dead_exec_namespaces_keep_their_attribution():
    """Each snippet defines a function, calls it, and is then thrown away, so
    its code objects die and new ones may be allocated at the same addresses.
    A stack recorded for an old snippet must not be credited to a new one."""
    count = 120
    keep = [None] * count

    def body():
        for i in range(count):
            src = (
                "def make():\n"
                f"    return bytes({2000 + 8 * i})\n"
                f"KEEP[{i}] = make()\n"
            )
            ns = {"KEEP": keep}
            exec(compile(src, f"<memhound-dead-{i}>", "exec"), ns)
            ns.clear()
            gc.collect(0)

    snap = tracked(body)
    for i in range(count):
        name = f"<memhound-dead-{i}>"
        stats = allocation_stats(snap, name, 2)
        assert len(stats) == 1, name
        tb = stats[0].traceback
        assert (tb[0].filename, tb[0].lineno, tb[0].function) == (name, 2, "make")
        assert (tb[1].filename, tb[1].lineno, tb[1].function) == (name, 3, "<module>")
        assert stats[0].size == sys.getsizeof(keep[i])


def test_lambdas_compiled_in_a_loop_attribute_to_their_own_source():
    count = 100
    keep = [None] * count

    def body():
        for i in range(count):
            make = eval(compile(f"lambda: bytes({4000 + 8 * i})", f"<memhound-lambda-{i}>", "eval"))
            keep[i] = make()
            del make

    snap = tracked(body)
    for i in range(count):
        stats = allocation_stats(snap, f"<memhound-lambda-{i}>", 1)
        assert [st.traceback[0].function for st in stats] == ["<lambda>"]
        assert stats[0].size == sys.getsizeof(keep[i])


def test_a_new_run_does_not_reuse_stacks_from_code_that_died_after_the_previous_run():
    keep = [None, None]

    def run(i, tag):
        ns = {"KEEP": keep}
        exec(compile(f"def f():\n    KEEP[{i}] = bytes(5000)\nf()\n", f"<memhound-{tag}>", "exec"), ns)
        ns.clear()
        gc.collect()

    snap1 = tracked(lambda: run(0, "first"))
    assert allocation_stats(snap1, "<memhound-first>", 2)
    snap2 = tracked(lambda: run(1, "second"))
    assert allocation_stats(snap2, "<memhound-second>", 2)
    files = {f.filename for st in snap2.statistics("traceback") for f in st.traceback}
    assert "<memhound-first>" not in files


def test_stop_releases_the_code_objects_of_recorded_stacks():
    keep = []
    ns = {"KEEP": keep}
    exec(compile("def f():\n    KEEP.append(bytes(6000))\n", "<memhound-pinned>", "exec"), ns)
    func_ref = weakref.ref(ns["f"])
    code_ref = weakref.ref(ns["f"].__code__)
    tracked(lambda: ns["f"]())
    ns.clear()
    gc.collect()
    assert func_ref() is None
    assert code_ref() is None, "memhound kept a code object alive after stop()"


# --------------------------------------------------------------------------
# The interpreter's own view of the stack as the oracle
#
# Each construct below allocates on a line that also captures the stack as the
# interpreter sees it (sys._getframe). memhound's stack for every allocation
# made on that line must be exactly that list: same files, lines and names,
# same depth, whatever the construct (C-to-Python calls, generators, coroutines,
# inlined comprehensions, finalizers, threads, ...).


def _interpreter_stack():
    """(filename, lineno, name) of the caller's frames, innermost first."""
    f = sys._getframe(1)
    out = []
    while f is not None:
        code = f.f_code
        name = code.co_qualname if sys.version_info >= (3, 11) else code.co_name
        out.append((code.co_filename, f.f_lineno, name))
        f = f.f_back
    return out


ORACLE_CONSTRUCTS = {}


def construct(fn):
    ORACLE_CONSTRUCTS[fn.__name__[len("_oracle_"):]] = fn
    return fn


@construct
def _oracle_plain_function(keep):
    keep.append((bytes(1001), _interpreter_stack()))


@construct
def _oracle_list_comprehension(keep):
    keep.extend([(bytes(1002), _interpreter_stack()) for _ in range(2)])


@construct
def _oracle_dict_comprehension(keep):
    keep.extend({i: (bytes(1003), _interpreter_stack()) for i in range(2)}.values())


@construct
def _oracle_set_comprehension(keep):
    keep.extend({(len(bytes(1004)), tuple(_interpreter_stack())) for _ in range(2)})


@construct
def _oracle_nested_comprehension(keep):
    nested = [[(bytes(1005), _interpreter_stack()) for _ in range(2)] for _ in range(2)]
    keep.extend(nested[0] + nested[1])


@construct
def _oracle_generator_expression(keep):
    keep.extend(list((bytes(1006), _interpreter_stack()) for _ in range(2)))


@construct
def _oracle_class_body(keep):
    class Body:
        data = (bytes(1007), _interpreter_stack())
        comp = [(bytes(1008), _interpreter_stack()) for _ in range(2)]

    keep.append(Body.data)
    keep.extend(Body.comp)


@construct
def _oracle_lambda(keep):
    make = lambda: (bytes(1009), _interpreter_stack())  # noqa: E731
    keep.append(make())


def _gen_body():
    yield (bytes(1010), _interpreter_stack())
    yield from _gen_delegate()


def _gen_delegate():
    yield (bytes(1011), _interpreter_stack())


@construct
def _oracle_generator_and_yield_from(keep):
    keep.extend(_gen_body())


async def _async_leaf(keep):
    await asyncio.sleep(0)
    keep.append((bytes(1012), _interpreter_stack()))


async def _async_gen():
    for _ in range(2):
        await asyncio.sleep(0)
        yield (bytes(1013), _interpreter_stack())


async def _async_main(keep):
    await _async_leaf(keep)
    keep.extend([item async for item in _async_gen()])
    await asyncio.gather(_async_leaf(keep), _async_leaf(keep))


@construct
def _oracle_coroutines_and_async_generators(keep):
    asyncio.run(_async_main(keep))


@construct
def _oracle_decorated_function(keep):
    @_logged
    def decorated():
        keep.append((bytes(1014), _interpreter_stack()))

    decorated()


class _OracleClass:
    def __init__(self, keep):
        keep.append((bytes(1015), _interpreter_stack()))
        self.keep = keep

    def __enter__(self):
        self.keep.append((bytes(1016), _interpreter_stack()))
        return self

    def __exit__(self, *exc):
        self.keep.append((bytes(1017), _interpreter_stack()))

    def __lt__(self, other):
        self.keep.append((bytes(1018), _interpreter_stack()))
        return id(self) < id(other)

    def __hash__(self):
        self.keep.append((bytes(1019), _interpreter_stack()))
        return 1

    @property
    def prop(self):
        self.keep.append((bytes(1020), _interpreter_stack()))
        return 1

    @classmethod
    def factory(cls, keep):
        keep.append((bytes(1021), _interpreter_stack()))
        return cls(keep)

    def __del__(self):
        self.keep.append((bytes(1022), _interpreter_stack()))


@construct
def _oracle_called_from_c(keep):
    a = _OracleClass.factory(keep)  # __init__ called by type.__call__
    b = _OracleClass(keep)
    with a:  # __enter__ / __exit__
        pass
    sorted([a, b])  # __lt__ called by sorted
    {a: 1}  # __hash__ called by dict
    a.prop  # property getter
    list(map(lambda x: (bytes(1023), _interpreter_stack()), range(2)))
    keep.extend(functools.reduce(lambda acc, x: acc + [(bytes(1024), _interpreter_stack())],
                                 range(2), []))
    del a, b  # __del__ from the deallocator


@construct
def _oracle_exception_handlers(keep):
    try:
        raise KeyError("x")
    except KeyError:
        keep.append((bytes(1025), _interpreter_stack()))
    finally:
        keep.append((bytes(1026), _interpreter_stack()))


@construct
def _oracle_closure_with_cells(keep):
    counter = 0

    def inner():
        nonlocal counter
        counter += 1
        keep.append((bytes(1027), _interpreter_stack()))

    inner()
    keep.append((bytes(1028 + counter), _interpreter_stack()))


@construct
def _oracle_thread(keep):
    t = threading.Thread(target=lambda: keep.append((bytes(1030), _interpreter_stack())))
    t.start()
    t.join()


@construct
def _oracle_exec(keep):
    exec(compile("KEEP.append((bytes(1031), STACK()))\n", "<memhound-oracle>", "exec"),
         {"KEEP": keep, "STACK": _interpreter_stack})


@construct
def _oracle_deep_recursion(keep):
    def down(n):
        if n == 0:
            keep.append((bytes(1032), _interpreter_stack()))
        else:
            down(n - 1)

    down(60)


def _gen_with_cleanup(keep):
    try:
        yield 1
    finally:
        keep.append((bytes(1033), _interpreter_stack()))


@construct
def _oracle_generator_finalizers(keep):
    gen = _gen_with_cleanup(keep)
    next(gen)
    gen.close()  # runs the finally block from close()
    gen = _gen_with_cleanup(keep)
    next(gen)
    del gen  # ...and from the generator's deallocator


@construct
def _oracle_under_a_trace_function(keep):
    def tracer(frame, event, arg):
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        keep.append((bytes(1034), _interpreter_stack()))
        keep.extend([(bytes(1035), _interpreter_stack()) for _ in range(2)])
    finally:
        sys.settrace(previous)


@construct
def _oracle_module_import(keep):
    import importlib
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        name = "memhound_oracle_module"
        with open(os.path.join(folder, name + ".py"), "w") as f:
            f.write("import sys\n"
                    "STACK = sys.modules['%s']._interpreter_stack\n"
                    "PAYLOAD = (bytes(1036), STACK())\n" % __name__)
        sys.path.insert(0, folder)
        try:
            module = importlib.import_module(name)
        finally:
            sys.path.remove(folder)
            sys.modules.pop(name, None)
    keep.append(module.PAYLOAD)


@pytest.mark.parametrize("name", sorted(ORACLE_CONSTRUCTS))
def test_stack_matches_the_interpreters_own_frames(name):
    keep = []
    snap = tracked(lambda: ORACLE_CONSTRUCTS[name](keep), max_frames=512)
    oracles = {tuple(tuple(frame) for frame in stack) for _payload, stack in keep}
    assert oracles, "the construct recorded no stack"
    innermost = {stack[0] for stack in oracles}
    recorded = set()
    for filename, lineno, function in innermost:
        # Every allocation whose innermost frame is an oracle's innermost frame
        # (the payload, the tuple, the list growing) has one of the oracles' stacks.
        for st in allocation_stats(snap, filename, lineno):
            if st.traceback[0].function != function:
                continue
            got = tuple((f.filename, f.lineno, f.function) for f in st.traceback)
            assert not st.traceback.truncated
            assert got in oracles, "\n".join(st.traceback.format())
            recorded.add(got)
    assert recorded == oracles
