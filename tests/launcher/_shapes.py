"""The battery's harness: run one program under plain python and under
``memhound run``, the same way, and compare what each did.

Every run is a child process in its own session (so that a hung run can be
killed with all its children), started from a copy of tests/programs/shapes in
a temporary folder (so that no capture lands in the repository), with a
timeout. ``memhound run`` is started as ``python -m memhound run ...`` with the
interpreter running the tests.

The reading of the JSON report's fields that are still being designed (the
``processes`` list, how a process ended, the census) is in the functions at the
end of this file, and only there.
"""
from __future__ import annotations

import errno
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

SHAPES = Path(__file__).resolve().parent.parent / "programs" / "shapes"

#: No run of the battery should take more than a few seconds; a run that has not
#: ended after this long is taken to hang (the test fails, the run is killed).
TIMEOUT = 60.0

#: Environment variables that change how python prints or buffers: removed, so
#: that the runs behave as in a plain shell (stdout block-buffered on a pipe).
_NOISY_ENV = ("PYTHONUNBUFFERED", "PYTHONWARNINGS", "PYTHONDEVMODE", "PYTHON_COLORS",
              "NO_COLOR", "FORCE_COLOR", "PYTHONSTARTUP", "PYTHONINSPECT")


@dataclass
class Run:
    """One finished run: ``returncode`` as subprocess gives it (negative: killed
    by that signal); ``output`` is what reached the terminal for pty runs, and
    stdout and stderr together for runs with stderr sent to stdout."""
    argv: List[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float

    def describe(self) -> str:
        return (f"$ {' '.join(self.argv)}\n-> rc {self.returncode} in {self.seconds:.1f} s\n"
                f"stdout: {self.stdout[-3000:]!r}\nstderr: {self.stderr[-3000:]!r}")


def workdir(tmp_path: Path) -> Path:
    """A copy of the shapes folder in ``tmp_path``: the runs' current directory."""
    dest = tmp_path / "shapes"
    shutil.copytree(SHAPES, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def clean_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _NOISY_ENV}
    env.update(extra or {})
    return env


def plain_argv(args: Sequence[str]) -> List[str]:
    """``python ARGS``."""
    return [sys.executable, *args]


def memhound_argv(args: Sequence[str], options: Sequence[str] = ()) -> List[str]:
    """``python -m memhound run OPTIONS ARGS``: the program's command line as
    given to python, with memhound's options before it."""
    return [sys.executable, "-m", "memhound", "run", *options, *args]


def _child_setup() -> None:
    # Whatever the test runner ignores, the program starts with the default
    # actions of SIGINT and SIGTERM, as from a shell.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(argv: Sequence[str], cwd: Path, *, env: Optional[Mapping[str, str]] = None,
        merge_stderr: bool = False, input: Optional[bytes] = None,
        signal_after: Optional[bytes] = None, send: int = signal.SIGINT,
        timeout: float = TIMEOUT) -> Run:
    """Run ``argv`` in ``cwd`` with stdout and stderr on pipes (one pipe with
    ``merge_stderr``) and stdin from ``input`` (else /dev/null). With ``signal_after``, send
    ``send`` to the run's whole process group (as a terminal's Ctrl-C does, or
    `timeout`) once its stdout has shown that text. Fails the test if the run
    has not ended within ``timeout`` seconds."""
    argv = list(argv)
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=str(cwd), env=dict(env if env is not None else clean_env()),
                            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                            preexec_fn=_child_setup)
    try:
        early = b""
        if signal_after is not None:
            early = _read_until(proc, signal_after, t0 + timeout)
            os.killpg(proc.pid, send)
        out, err = proc.communicate(input, timeout=max(0.1, t0 + timeout - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        raise AssertionError(f"did not end within {timeout:.0f} s (killed): {' '.join(argv)}\n"
                             f"stdout: {out[-2000:]!r}\nstderr: {(err or b'')[-2000:]!r}")
    finally:
        _kill_group(proc)  # children the run left behind
    return Run(argv, proc.returncode, early + out, err or b"", time.monotonic() - t0)


def _read_until(proc: subprocess.Popen, text: bytes, deadline: float) -> bytes:
    """Read the run's stdout until ``text`` shows (unbuffered reads, so that
    what comes after is left for communicate())."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    got = b""
    while text not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            _kill_group(proc)
            raise AssertionError(f"{text!r} never came: {' '.join(map(str, proc.args))}: {got!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"stdout closed before {text!r}: {got!r}")
            got += chunk
    return got


def run_on_pty(argv: Sequence[str], cwd: Path, *, env: Optional[Mapping[str, str]] = None,
               timeout: float = TIMEOUT) -> Run:
    """Run ``argv`` with stdin, stdout and stderr on a new pseudo-terminal, as
    from an interactive shell; ``stdout`` is every byte the terminal received."""
    argv = list(argv)
    master, slave = os.openpty()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=str(cwd),
                                env=dict(env if env is not None else clean_env({"TERM": "xterm"})),
                                stdin=slave, stdout=slave, stderr=slave, preexec_fn=_child_setup)
    finally:
        os.close(slave)
    got = bytearray()
    try:
        while True:
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                _kill_group(proc)
                raise AssertionError(f"did not end within {timeout:.0f} s (killed): "
                                     f"{' '.join(argv)}\nterminal: {bytes(got[-2000:])!r}")
            ready, _, _ = select.select([master], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError as e:  # EIO: every process has closed the terminal
                if e.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            got += chunk
        proc.wait(timeout=max(0.1, t0 + timeout - time.monotonic()))
    finally:
        os.close(master)
        _kill_group(proc)
    return Run(argv, proc.returncode, bytes(got), b"", time.monotonic() - t0)


# -- comparing ---------------------------------------------------------------

def assert_report_after(program: bytes, mh: bytes, where: str = "") -> None:
    """The program's own bytes come first, untouched, then memhound's report."""
    assert mh.startswith(program), "the program's output is not left as it was" + where
    assert mh[len(program):].strip(), \
        "memhound printed no report after the program's output" + where


# -- the JSON report ---------------------------------------------------------
# The fields below are new with the launcher; their reading is kept here so that
# it can follow the schema in one place.

def read_json(path: Path, run_: Optional[Run] = None) -> Dict[str, Any]:
    assert path.is_file(), f"no JSON report at {path}" + (f"\n{run_.describe()}" if run_ else "")
    return json.loads(path.read_text(encoding="utf-8"))


def program_exit_code(report: Dict[str, Any]) -> Any:
    """The first process's exit status, as the JSON report gives it."""
    return report["program"]["exit_code"]


def processes(report: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Every process of the run, each as a dict with ``pid``, ``ppid``,
    ``status`` ("exited", "signal", "os._exit", "exec" or "killed"),
    ``exit_code``, ``signal`` and ``leaking`` (the process's verdict)."""
    assert "processes" in report, f"the JSON report has no processes list: {sorted(report)}"
    out = []
    for p in report["processes"]:
        entry = dict(p)
        entry["leaking"] = _leaking(p.get("verdict"))
        out.append(entry)
    return out


def _leaking(verdict: Any) -> bool:
    if isinstance(verdict, dict):
        return bool(verdict.get("leaking"))
    if isinstance(verdict, str):
        return verdict.lower() in ("leak", "leaking")
    return bool(verdict)


def process(report: Dict[str, Any], pid: int) -> Dict[str, Any]:
    """The entry of process ``pid`` in the report."""
    procs = processes(report)
    found = [p for p in procs if p["pid"] == pid]
    assert found, f"process {pid} is not in the report: {[(p['pid'], p['ppid']) for p in procs]}"
    return found[0]


def first_process(report: Dict[str, Any]) -> Dict[str, Any]:
    """The entry of the program's first process (the report's top-level pid)."""
    return process(report, report["pid"])


def how_it_ended(report: Dict[str, Any]) -> Dict[str, Any]:
    """How the program's first process ended: ``status``, ``exit_code``, ``signal``."""
    p = first_process(report)
    return {"status": p["status"], "exit_code": p.get("exit_code"), "signal": p.get("signal")}


def census_growth(report: Dict[str, Any]) -> Dict[str, int]:
    """Type name -> growth in live count during the run (JSON ``census``)."""
    assert report.get("census") is not None, "the JSON report has no census"
    return {g["type"]: g["delta"] for g in report["census"]["growth"]}
