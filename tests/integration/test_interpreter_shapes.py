"""Program shapes whose handling depends on the CPython version (3.10 to 3.13).

What this protects:
- no internal frame reaches a stack: 3.13's shim frame between a class call and
  its ``__init__`` (pushed once the call site is specialised), entry frames,
  frames in their prologue; and no frame has a negative line;
- a subinterpreter created and destroyed under tracking does not crash stop(),
  and what it allocates carries the placeholder stack ``<subinterpreter>``;
- ``--epoch-on`` counts one unit per completed call of the named function on
  every interpreter: not per generator yield or coroutine suspension, calls
  that raise included, ``Class.method`` only for that class (3.10 too);
- ``--epoch-on`` leaves the sys.monitoring ids of standard tools (cProfile's)
  alone, and falls back to time epochs, saying so, when no id is free;
- os.fork() under a running background thread gives the program the warnings
  plain python gives it (none on 3.12+ for a single-threaded program).
"""
from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import textwrap

import pytest
from markers import marker_line

import memhound
from memhound.session import Session

THIS_FILE = sys._getframe().f_code.co_filename
HAS_MONITORING = hasattr(sys, "monitoring")


def line(marker: str) -> int:
    return marker_line(THIS_FILE, "shapes:" + marker)


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------
# N1: internal frames never reach a stack


class Rec:
    def __init__(self, i):
        self.payload = bytearray(333)  # shapes:rec-init


def _make_queues(keep):
    for _ in range(3000):  # long enough for the call site to be specialised
        keep.append(queue.Queue())  # shapes:queue


def _make_recs(keep):
    for i in range(3000):
        keep.append(Rec(i))  # shapes:rec-call


def _stacks_through(snap, lineno):
    """Every recorded stack with a frame of this file at `lineno`."""
    return [st.traceback for st in snap.statistics("traceback")
            if any(f.filename == THIS_FILE and f.lineno == lineno for f in st.traceback)]


def _assert_no_internal_frames(stacks):
    for tb in stacks:
        for f in tb:
            assert f.lineno >= 0, f"frame with line {f.lineno}: {list(tb)}"
            assert f.filename != "__init__", f"CPython's __init__ shim frame in {list(tb)}"


def test_class_call_in_a_hot_loop_has_no_shim_frame():
    keep: list = []
    memhound.start(sample_bytes=1)
    try:
        _make_queues(keep)
        snap = memhound.snapshot()
    finally:
        memhound.stop()
    stacks = _stacks_through(snap, line("queue"))
    assert stacks
    _assert_no_internal_frames(stacks)
    # Queue.__init__'s frames are called straight from the marked line: the
    # frame after the last queue.py frame is this file's.
    through_queue = 0
    for tb in stacks:
        files = [f.filename for f in tb]
        i = files.index(THIS_FILE)
        if i > 0:
            assert files[i - 1] == queue.__file__, list(tb)
            through_queue += 1
    assert through_queue > 0


def test_user_init_in_a_hot_loop_is_called_from_the_program_line():
    keep: list = []
    memhound.start(sample_bytes=1)
    try:
        _make_recs(keep)
        snap = memhound.snapshot()
    finally:
        memhound.stop()
    stacks = _stacks_through(snap, line("rec-init"))
    assert stacks
    _assert_no_internal_frames(stacks)
    total = 0
    for tb in stacks:
        assert (tb[0].lineno, tb[0].function) == (line("rec-init"), "Rec.__init__" if sys.version_info >= (3, 11) else "__init__")
        assert (tb[1].filename, tb[1].lineno) == (THIS_FILE, line("rec-call")), list(tb)
    for st in snap.statistics("lineno"):
        if st.traceback[0].filename == THIS_FILE and st.traceback[0].lineno == line("rec-init"):
            total += st.count
    assert total >= 3000


# --------------------------------------------------------------------------
# N2: subinterpreters

SUBINTERP = '''
import sys
try:
    import _interpreters as subinterp
except ImportError:
    import _xxsubinterpreters as subinterp
import memhound
{start}
interp = subinterp.create()
subinterp.run_string(interp, "keep = [bytearray(5000) for i in range(400)]")
{check}
subinterp.destroy(interp)
keep = [bytearray(1000) for i in range(100)]
{stop}
print("ok")
'''


def test_subinterpreter_under_the_api_stops_cleanly():
    code = SUBINTERP.format(
        start="memhound.start(sample_bytes=1)",
        check=textwrap.dedent('''
            snap = memhound.snapshot()
            big = [st for st in snap.statistics("traceback") if st.size >= 400 * 5000]
            frames = [f for st in big for f in st.traceback]
            # 3.12+: the subinterpreter's own stack is the placeholder; 3.10 and
            # 3.11 keep the main thread's stack, the call that runs the code.
            print("frames", sorted({(f.filename, f.function) for f in frames}))
        '''),
        stop="memhound.stop()")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "ok"
    frames = r.stdout.splitlines()[0]
    if sys.version_info >= (3, 12):
        assert "('<subinterpreter>', '<subinterpreter>')" in frames, frames
    else:
        assert "'<string>'" in frames, frames  # the -c program's run_string line


def test_subinterpreter_under_memhound_run_writes_its_report(tmp_path):
    prog = tmp_path / "sub.py"
    prog.write_text(SUBINTERP.format(start="", check="", stop=""))
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "memhound", "run", "-q", "--json", str(out),
                        "-o", str(tmp_path / "c.db"), str(prog)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "ok"
    assert json.loads(out.read_text())["program"]


# --------------------------------------------------------------------------
# N4/N5: --epoch-on counts completed calls


def produce(n):
    for i in range(n):
        yield bytearray(200)


async def handle_async(i):
    for k in range(3):
        await asyncio.sleep(0)
    return bytearray(500)


def handle_raising(i):
    buf = bytearray(1000)
    if i % 2:
        raise ValueError(i)
    return len(buf)


class A:
    def step(self):
        return [0] * 100


class B:
    def step(self):
        return [1] * 100


class C(A):
    """Inherits A.step: its calls through C are A.step's."""


def plain(i):
    return [i] * 10


def body_plain():
    for i in range(37):
        plain(i)


def body_generator():
    for _ in range(20):
        for _item in produce(100):
            pass
    g = produce(100)  # closed half-way: not a completed call
    next(g)
    g.close()
    del g


def body_coroutine():
    async def main():
        for i in range(50):
            await handle_async(i)
    asyncio.run(main())


def body_raising():
    for i in range(100):
        try:
            handle_raising(i)
        except ValueError:
            pass


def body_methods():
    a, b = A(), B()
    for _ in range(10):
        a.step()
        for _ in range(100):
            b.step()


def body_inherited():
    for _ in range(5):
        C().step()
    for _ in range(3):
        A().step()


COUNT = """
import sys
sys.path[:0] = [{here!r}, {tests!r}]
import {module} as m
from memhound.session import Session
s = Session(epoch_on=sys.argv[1], max_epochs=0)
s.start()
try:
    getattr(m, sys.argv[2])()
finally:
    print(s.finish().function_epochs)
"""


def _count(spec, body):
    """Completed calls counted by --epoch-on `spec` while `body` runs, in a
    fresh process (sys.monitoring's instrumentation of code objects would
    otherwise change what later tests in this process see allocated)."""
    here = os.path.dirname(THIS_FILE)
    module = os.path.splitext(os.path.basename(THIS_FILE))[0]
    r = run_python(COUNT.format(here=here, tests=os.path.dirname(here), module=module),
                   spec, body.__name__)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1])


MODULE = os.path.splitext(os.path.basename(THIS_FILE))[0]


def test_epoch_on_counts_plain_calls():
    assert _count("plain", body_plain) == 37


def test_epoch_on_counts_a_generator_once_per_call_not_per_yield():
    assert _count("produce", body_generator) == 20


def test_epoch_on_counts_a_coroutine_once_per_call_not_per_await():
    assert _count("handle_async", body_coroutine) == 50


def test_epoch_on_counts_calls_that_raise():
    assert _count("handle_raising", body_raising) == 100


def test_epoch_on_class_method_matches_only_that_class():
    assert _count("A.step", body_methods) == 10
    assert _count(f"{MODULE}:A.step", body_methods) == 10
    assert _count("other_module:A.step", body_methods) == 0
    assert _count("step", body_methods) == 1010


def test_epoch_on_inherited_method_is_its_own_class_method():
    assert _count("A.step", body_inherited) == 8
    assert _count("C.step", body_inherited) == 0


# --------------------------------------------------------------------------
# N3: profilers coexist with --epoch-on

CPROFILE = '''
import cProfile, io, pstats, sys
from memhound.session import Session

def step(i):
    return [i] * 1000

s = Session(epoch_on="step", max_epochs=0)
s.start()
for i in range(50):
    step(i)
pr = cProfile.Profile()
pr.enable()
for i in range(50):
    step(i)
pr.disable()
out = io.StringIO()
pstats.Stats(pr, stream=out).sort_stats("calls").print_stats(1)
for i in range(50):
    step(i)
r = s.finish()
print("profiled", "step" in out.getvalue(), "epochs", r.function_epochs)
'''


def test_epoch_on_leaves_cprofile_its_tool_id():
    r = run_python(CPROFILE)
    assert r.returncode == 0, r.stderr
    _, profiled, _, epochs = r.stdout.split()
    assert profiled == "True"
    if HAS_MONITORING:
        # sys.monitoring: both tools see every call.
        assert int(epochs) == 150, r.stdout
        assert "memhound: warning" not in r.stderr
    else:
        # One profile-function slot per thread: cProfile holds it for 50 calls;
        # memhound's is put back when cProfile lets go, and the run says so.
        assert int(epochs) == 100, r.stdout
        assert r.stderr.count("memhound: warning: --epoch-on step: another profiler") == 1, r.stderr


NO_FREE_ID = '''
import sys
from memhound.session import Session
mon = getattr(sys, "monitoring", None)
if mon is not None:
    for tool in (3, 4):
        mon.use_tool_id(tool, "someone else")

def step(i):
    return [i] * 10

s = Session(epoch_on="step", max_epochs=0)
s.start()
for i in range(20):
    step(i)
r = s.finish()
print(r.epoch_kind, r.function_epochs)
'''


def test_epoch_on_falls_back_to_time_epochs_when_no_tool_id_is_free():
    r = run_python(NO_FREE_ID)
    assert r.returncode == 0, r.stderr
    if HAS_MONITORING:
        assert r.stdout.split() == ["time", "0"]
        warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("memhound: warning")]
        assert len(warnings) == 1 and "time windows" in warnings[0], r.stderr
    else:
        assert r.stdout.split() == ["function", "20"]
        assert r.stderr == ""


# --------------------------------------------------------------------------
# N6: fork warnings

FORK = '''
import os, sys, time, warnings
from memhound import _core
from memhound.session import Session

s = Session()
s.start()
assert _core.bg_status()["running"]
points_before = len(_core.timeline())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if _core.bg_status()["running"] else 7)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child has no background thread"
time.sleep(0.3)
with open("/proc/self/status") as f:
    threads = [int(l.split()[1]) for l in f if l.startswith("Threads:")][0]
points_after = len(_core.timeline())
s.finish()
print("warnings", [str(w.message) for w in caught])
print("threads", threads, "points grew", points_after > points_before)
'''


def test_fork_under_the_background_thread_gives_plain_pythons_warnings():
    r = run_python(FORK)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "warnings []", r.stdout
    # The paused thread was started again after each fork.
    assert out[1] == "threads 2 points grew True", r.stdout
    assert "multi-threaded" not in r.stderr
