"""Parent-side helpers for the stress suite.

Every risky scenario runs in a child interpreter (sys.executable) with a
timeout, so that a crash, an abort from a sanitizer or a deadlock is a failed
test with the child's output attached, never a dead or hung pytest. The child
imports the same memhound as the test process, and the child-side helpers from
_stress_child.py.

MEMHOUND_STRESS_TIMEOUT_FACTOR (default 1) stretches every timeout; the
sanitizer run (scripts/sanitize.sh) sets it, since ASan makes everything slower.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from typing import Dict, Iterable, Optional, Sequence

import pytest

import memhound

HERE = pathlib.Path(__file__).resolve().parent
#: Children import the same memhound as the tests (installed, or a build in src/).
SRC = pathlib.Path(memhound.__file__).resolve().parent.parent
TIMEOUT_FACTOR = float(os.environ.get("MEMHOUND_STRESS_TIMEOUT_FACTOR", "1") or 1)
#: gcc's libasan is preloaded (scripts/sanitize.sh). Its allocator takes no
#: lock around fork(), so a child forked while another thread is inside it
#: (a thread exiting drains its allocator cache) can deadlock in ASan itself.
#: The children then run without the faulthandler watchdog, whose thread is
#: stopped and restarted around every fork; the parent's timeout remains.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")

_PRELUDE = """\
import faulthandler as _fh, os as _os, time as _time
_fh.enable()
# A hang dumps every thread's stack and exits before the parent's timeout. The
# watchdog is disarmed across fork(): a forked child that shuts down normally
# would otherwise wait forever for the parent's watchdog thread (CPython).
_fh_deadline = _time.monotonic() + {dump_after}
def _fh_arm(_fh=_fh, _time=_time, _deadline=_fh_deadline):
    _fh.dump_traceback_later(max(1.0, _deadline - _time.monotonic()), exit=True)
_fh_arm()
_os.register_at_fork(before=_fh.cancel_dump_traceback_later, after_in_parent=_fh_arm)
del _fh, _os, _time, _fh_deadline
"""


#: Lines that only a sanitizer report contains (scripts/sanitize.sh).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error: ", "ERROR: LeakSanitizer",
                     "WARNING: AddressSanitizer", "UndefinedBehaviorSanitizer")


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    parts = [str(SRC), str(HERE)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.setdefault("PYTHONFAULTHANDLER", "1")
    env.pop("PYTHONWARNINGS", None)
    if extra:
        env.update(extra)
    return env


def _describe(proc_or_exc, script: pathlib.Path) -> str:
    out = proc_or_exc.stdout or ""
    err = proc_or_exc.stderr or ""
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    if isinstance(err, bytes):
        err = err.decode(errors="replace")
    return f"script: {script}\n--- stdout ---\n{out[-6000:]}\n--- stderr ---\n{err[-12000:]}"


def run_script(
    tmp_path: pathlib.Path,
    body: str,
    *,
    args: Sequence[str] = (),
    timeout: float = 60.0,
    env: Optional[Dict[str, str]] = None,
    name: str = "child.py",
    watchdog: bool = True,
) -> subprocess.CompletedProcess:
    """Write `body` (dedented) to tmp_path/name and run it with sys.executable.

    A child still running after `timeout` seconds fails the test as a hang."""
    timeout *= TIMEOUT_FACTOR
    text = textwrap.dedent(body)
    if watchdog and not UNDER_ASAN:
        text = _PRELUDE.format(dump_after=max(1.0, timeout - 5.0)) + text
    script = tmp_path / name
    script.write_text(text)
    try:
        return subprocess.run(
            [sys.executable, str(script), *args],
            cwd=str(tmp_path),
            env=child_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"child hung: still running after {timeout:.0f}s\n" + _describe(e, script))


def describe_exit(rc: int) -> str:
    if rc < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def assert_exit(proc: subprocess.CompletedProcess, rc: int = 0, *, clean_stderr: bool = True,
                allowed_stderr: Iterable[str] = ()) -> None:
    """The child exited with `rc` (not a crash, not a hang) and, when
    clean_stderr, printed nothing on stderr apart from lines containing one of
    `allowed_stderr`."""
    script = pathlib.Path(proc.args[1])
    assert proc.returncode == rc, (
        f"child {describe_exit(proc.returncode)}, expected exit code {rc}\n" + _describe(proc, script)
    )
    markers = [m for m in SANITIZER_MARKERS if m in proc.stderr]
    assert not markers, f"sanitizer report from child ({markers})\n" + _describe(proc, script)
    if clean_stderr:
        allowed = tuple(allowed_stderr)
        bad = [
            line
            for line in proc.stderr.splitlines()
            if line.strip() and not any(a in line for a in allowed)
        ]
        assert not bad, "unexpected stderr from child\n" + _describe(proc, script)


def ok_lines(proc: subprocess.CompletedProcess) -> list:
    return [line for line in proc.stdout.splitlines() if line.startswith("OK")]


def c_compiler() -> Optional[str]:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


def build_helper(tmp_path: pathlib.Path, source: str, name: str,
                 required: bool = True) -> Optional[pathlib.Path]:
    """Compile a small C helper into a shared library (loaded with ctypes, it
    resolves PyMem_* from the running interpreter). Without a C compiler the
    test is skipped, or None is returned when not `required`."""
    cc = c_compiler()
    if cc is None:
        if required:
            pytest.skip("no C compiler to build the native helper")
        return None
    src = tmp_path / f"{name}.c"
    lib = tmp_path / f"lib{name}.so"
    src.write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        if required:
            pytest.skip(f"could not build the native helper: {r.stderr[-2000:]}")
        return None
    return lib


#: A tight loop of RAW allocations in C, for NativeRawLoop in _stress_child.py:
#: called through ctypes.CDLL, it runs without the GIL and spends most of its
#: time inside the allocator hooks (a ctypes call per allocation would spend
#: most of it in ctypes). `pause` parks it between two allocations and sets
#: `parked`; `stop` ends it.
RAW_LOOP_C = r"""
#include <sched.h>
#include <stddef.h>
void *PyMem_RawMalloc(size_t);
void *PyMem_RawRealloc(void *, size_t);
void PyMem_RawFree(void *);

long raw_loop(volatile int *stop, volatile int *pause, volatile int *parked)
{
    long i = 0;
    while (!__atomic_load_n(stop, __ATOMIC_SEQ_CST)) {
        if (__atomic_load_n(pause, __ATOMIC_SEQ_CST)) {
            __atomic_store_n(parked, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(pause, __ATOMIC_SEQ_CST) &&
                   !__atomic_load_n(stop, __ATOMIC_SEQ_CST)) {
                sched_yield();
            }
            __atomic_store_n(parked, 0, __ATOMIC_SEQ_CST);
            continue;
        }
        void *p = PyMem_RawMalloc(32 + (i & 255));
        p = PyMem_RawRealloc(p, 64 + (i & 1023));
        PyMem_RawFree(p);
        i++;
    }
    return i;
}
"""


def build_raw_loop(tmp_path: pathlib.Path, required: bool = True) -> Optional[pathlib.Path]:
    return build_helper(tmp_path, RAW_LOOP_C, "rawloop", required=required)
