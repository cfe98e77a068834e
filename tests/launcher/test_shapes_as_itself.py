"""The program runs as itself under ``memhound run``: each program shape is run
under plain python and under ``memhound run`` in the same folder, and the two
runs must end the same way (exit status, stdout, stderr), and end at all.

Each case runs twice under memhound: with ``-q --no-capture`` (then memhound
prints nothing of its own, the program's stderr is plain python's byte for
byte, and no capture file is left behind) and with a report and ``--json``
(then the program's stderr comes first, untouched, and the report after it;
the JSON report is written and has the program's exit status).
"""
from __future__ import annotations

import os
import sys
import zipfile
import zipapp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from _shapes import (Run, assert_report_after, clean_env, memhound_argv, plain_argv,
                     program_exit_code, read_json, run, run_on_pty, workdir)


def _symlinked_script(wd: Path) -> None:
    # bin/app.py -> ../real/app.py, as `pip install` or a deployment would link it.
    (wd / "bin").mkdir()
    os.symlink(os.path.join("..", "real", "app.py"), wd / "bin" / "app.py")


def _zipapp(wd: Path) -> None:
    zipapp.create_archive(wd / "dirapp", wd / "app.pyz")
    with zipfile.ZipFile(wd / "app.pyz") as z:
        assert "__main__.py" in z.namelist()


def _coloured_on_313(plain: Run) -> None:
    # The case means something only if plain python colours its traceback.
    if sys.version_info >= (3, 13):
        assert b"\x1b[" in plain.stdout + plain.stderr, plain.describe()


@dataclass
class Shape:
    id: str
    args: List[str]                       # python's arguments: the program and its own
    setup: Optional[Callable[[Path], None]] = None
    merge: bool = False                   # stderr on the same pipe as stdout (`> log 2>&1`)
    pty: bool = False                     # stdin, stdout and stderr on a terminal
    env: Dict[str, str] = field(default_factory=dict)
    input: Optional[bytes] = None         # stdin from a pipe
    check_plain: Optional[Callable[[Run], None]] = None


SHAPES = [
    # K1: executors left without shutdown() end with the interpreter.
    Shape("thread_pool_no_shutdown", ["pool_threads_noshutdown.py"]),
    Shape("process_pool_no_shutdown", ["pool_processes_noshutdown.py"]),
    # D12: __file__, argv, __package__ None, __builtins__ a module, a relative ./path.
    Shape("main_env_relative_path", ["./main_env.py", "rel", "a b"]),
    # D12: traceback paths as given (./uncaught.py, not normalized).
    Shape("traceback_relative_path", ["./uncaught.py"]),
    # D12: inspect.stack() depth 1 at module level, no caller frame, warn(stacklevel=2) -> sys:1.
    Shape("stack_at_module_level", ["stack_inspect.py"]),
    # D12: atexit handlers see the script's __main__.
    Shape("atexit_sees_main", ["atexit_main.py"]),
    # D12: a -m package's __init__ sees ['-m', ...] as python shows it.
    Shape("m_package_init_argv", ["-m", "argvpkg.mod", "x", "y"]),
    # D4: platform.py / sysconfig.py beside the script.
    Shape("platform_py_beside_script", ["game/main.py"]),
    Shape("sysconfig_py_beside_script", ["game2/stats_main.py"]),
    # D5: a symlinked script imports the module next to the real file.
    Shape("symlinked_script", ["bin/app.py", "a", "b"], setup=_symlinked_script),
    # D7: the program's sys.excepthook prints the exception.
    Shape("custom_excepthook", ["excepthook.py"]),
    # D16: a folder with __main__.py, and a zipapp.
    Shape("folder_with_main", ["dirapp", "a", "b"]),
    Shape("zipapp", ["app.pyz", "a", "b"], setup=_zipapp),
    # Point 6: every argument after the script or -m module is the program's.
    Shape("options_after_script", ["show_argv.py", "-q", "-f", "-h", "--json", "x"]),
    Shape("options_after_module", ["-m", "show_argv", "-q", "-f", "-h", "-w", "2", "--json", "x"]),
    # memhound's own modules are not imported into the program.
    Shape("no_memhound_modules_in_program", ["modules_seen.py"]),
    # D8: stdout block-buffered and stderr on the same pipe: python flushes stdout
    # before it prints the traceback or the SystemExit message.
    Shape("buffered_stdout_then_traceback", ["uncaught.py"], merge=True),
    Shape("buffered_stdout_then_exit_message", ["exitmsg.py"], merge=True),
    # D9 / N9: a program that closes or replaces sys.stderr.
    Shape("stderr_closed", ["stderr_closed.py"]),
    Shape("stderr_replaced", ["stderr_swapped.py"]),
    # D6: no progress line mixed into an interactive program's terminal output.
    Shape("terminal_ticker", ["tty_ticker.py"], pty=True),
    # Regression guards for what worked in the field: stdin from a pipe, threads
    # left running at the end, a forked child leaving through sys.exit, a spawn pool.
    Shape("stdin_from_pipe", ["read_stdin.py"],
          input=b"".join(b"%d\n" % i for i in range(20000))),
    Shape("threads_at_exit", ["threads_at_exit.py"]),
    Shape("fork_child_sys_exit", ["fork_return.py"]),
    Shape("spawn_pool", ["pool_spawn.py"]),
    # N8: 3.13 colours a traceback on a terminal (or with PYTHON_COLORS / FORCE_COLOR).
    Shape("traceback_on_terminal", ["uncaught.py"], pty=True, check_plain=_coloured_on_313),
    Shape("traceback_on_terminal_python_colors", ["uncaught.py"], pty=True,
          env={"PYTHON_COLORS": "1"}, check_plain=_coloured_on_313),
    Shape("traceback_force_color_on_pipe", ["uncaught.py"], env={"FORCE_COLOR": "1"},
          check_plain=_coloured_on_313),
]


def _run(shape: Shape, argv: List[str], wd: Path) -> Run:
    if shape.pty:
        return run_on_pty(argv, wd, env=clean_env({"TERM": "xterm", **shape.env}))
    return run(argv, wd, env=clean_env(shape.env), merge_stderr=shape.merge, input=shape.input)


@pytest.mark.parametrize("mode", ["quiet", "report"])
@pytest.mark.parametrize("shape", SHAPES, ids=[s.id for s in SHAPES])
def test_runs_as_under_plain_python(shape: Shape, mode: str, tmp_path: Path):
    wd = workdir(tmp_path)
    if shape.setup:
        shape.setup(wd)
    plain = _run(shape, plain_argv(shape.args), wd)
    if shape.check_plain:
        shape.check_plain(plain)
    before = set(wd.rglob("*"))
    report = tmp_path / "report.json"
    options = ["-q", "--no-capture"] if mode == "quiet" else ["--json", str(report)]
    mh = _run(shape, memhound_argv(shape.args, options), wd)

    where = f"\n--- plain\n{plain.describe()}\n--- memhound\n{mh.describe()}"
    assert mh.returncode == plain.returncode, "exit status differs" + where
    # What the program alone writes to (stdout and stderr together on a terminal
    # or one pipe): byte for byte with -q, and first, untouched, with a report.
    if shape.pty or shape.merge:
        program_bytes, mh_bytes = plain.stdout, mh.stdout
    else:
        assert mh.stdout == plain.stdout, "stdout differs" + where
        program_bytes, mh_bytes = plain.stderr, mh.stderr
    if mode == "quiet":
        assert mh_bytes == program_bytes, "the program's output differs (with -q)" + where
        left = sorted(str(p.relative_to(wd)) for p in set(wd.rglob("*")) - before
                      if "__pycache__" not in p.parts)
        assert left == [], f"memhound left files behind with --no-capture: {left}" + where
    else:
        assert_report_after(program_bytes, mh_bytes, where)
        data = read_json(report, mh)
        code = program_exit_code(data)
        assert type(code) is int and code == plain.returncode, (code, plain.returncode)


def test_relative_json_path_is_where_memhound_started(tmp_path: Path):
    """The program moves to another folder and ends there: ``--json r.json`` is
    still written where ``memhound run`` was started."""
    wd = workdir(tmp_path)
    plain = run(plain_argv(["chdir_away.py"]), wd)
    mh = run(memhound_argv(["chdir_away.py"], ["-q", "--json", "r.json"]), wd)
    assert (mh.returncode, mh.stdout, mh.stderr) == (plain.returncode, plain.stdout,
                                                     plain.stderr), mh.describe()
    report = read_json(wd / "r.json", mh)
    assert program_exit_code(report) == 0
