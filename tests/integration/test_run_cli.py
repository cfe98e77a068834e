"""``memhound run`` on bad input and at the edges of the program's life.

memhound's own errors (a missing script or module, an unknown option, an
unwritable report path) are one line on stderr starting "memhound: error:" and
exit code 2, and the program does not run. The program's own output, traceback
and exit code pass through unchanged: each test compares with what plain
``python`` prints for the same program. A program that raises or exits still
gets its JSON report, marked as covering a partial run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

import memhound

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
SRC = Path(memhound.__file__).resolve().parent.parent
EXIT_ERROR = 2


def _env(extra_path: Optional[Path] = None) -> Dict[str, str]:
    env = dict(os.environ)
    parts = [str(SRC)] + ([str(extra_path)] if extra_path else [])
    parts += [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def memhound_run(*args: str, cwd: Path, extra_path: Optional[Path] = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m memhound run ARGS`` (bytes in, bytes out)."""
    return subprocess.run([sys.executable, "-m", "memhound", "run", *args], capture_output=True,
                          env=_env(extra_path), cwd=str(cwd), timeout=timeout)


def plain_python(*args: str, cwd: Path, extra_path: Optional[Path] = None) -> subprocess.CompletedProcess:
    """The same program under plain ``python``: the reference for pass-through."""
    return subprocess.run([sys.executable, *args], capture_output=True, env=_env(extra_path),
                          cwd=str(cwd), timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == EXIT_ERROR, (proc.returncode, err)
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("memhound: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


def read_report(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------
# memhound's own errors


def test_missing_script_is_one_line_and_exit_2(tmp_path):
    proc = memhound_run(str(tmp_path / "no_such_script.py"), cwd=tmp_path)
    line = assert_one_line_error(proc)
    assert "no_such_script.py" in line
    assert proc.stdout == b""


def test_no_script_at_all_is_one_line_and_exit_2(tmp_path):
    assert_one_line_error(memhound_run(cwd=tmp_path))


def test_directory_as_script_is_one_line_and_exit_2(tmp_path):
    assert_one_line_error(memhound_run(str(tmp_path), cwd=tmp_path))


def test_unwritable_json_path_fails_before_the_program_runs(tmp_path):
    marker = tmp_path / "program-ran"
    report = tmp_path / "no" / "such" / "dir" / "report.json"
    proc = memhound_run("--json", str(report), str(PROGRAMS / "echo_io.py"), "--touch", str(marker),
                        cwd=tmp_path)
    line = assert_one_line_error(proc)
    assert str(report) in line
    assert not marker.exists(), "the program ran although the report could not be written"
    assert proc.stdout == b""
    assert not report.parent.exists()


def test_json_path_that_is_a_directory_fails_before_the_program_runs(tmp_path):
    marker = tmp_path / "program-ran"
    proc = memhound_run("--json", str(tmp_path), str(PROGRAMS / "echo_io.py"), "--touch", str(marker),
                        cwd=tmp_path)
    assert_one_line_error(proc)
    assert not marker.exists()


@pytest.mark.parametrize("options", [
    ["--no-such-option"],
    ["--sample-bytes", "0"],
    ["--sample-bytes", "lots"],
    ["--exact", "--sample-bytes", "512"],
    ["--epoch-on", "not a name"],
    ["--epoch-on", "f", "--manual-epochs"],
], ids=["unknown", "zero-rate", "bad-rate", "exact-and-rate", "bad-epoch-on", "two-epoch-kinds"])
def test_bad_options_are_one_line_and_exit_2_without_running(tmp_path, options):
    marker = tmp_path / "program-ran"
    proc = memhound_run(*options, str(PROGRAMS / "echo_io.py"), "--touch", str(marker), cwd=tmp_path)
    assert_one_line_error(proc)
    assert not marker.exists()
    assert proc.stdout == b""


def test_missing_module_is_one_line_and_exit_2(tmp_path):
    module = "no_such_module_for_memhound"
    proc = memhound_run("-m", module, cwd=tmp_path, extra_path=PROGRAMS)
    line = assert_one_line_error(proc)
    assert module in line


def test_missing_submodule_is_pythons_to_say(tmp_path):
    """Finding a submodule imports its package, which is the program's first
    act: python says it is missing, exactly as without memhound."""
    module = "mh_demo_pkg.no_such_sub"
    plain = plain_python("-m", module, cwd=tmp_path, extra_path=PROGRAMS)
    proc = memhound_run("-q", "--no-capture", "-m", module, cwd=tmp_path, extra_path=PROGRAMS)
    assert proc.returncode == plain.returncode == 1
    assert proc.stderr == plain.stderr
    assert b"No module named mh_demo_pkg.no_such_sub" in proc.stderr


# --------------------------------------------------------------------------
# The program's own output, errors and exit code


def test_stdout_and_stderr_pass_through_unchanged(tmp_path):
    args = [str(PROGRAMS / "echo_io.py"), "alpha", "--json", "x y", "-q", "--fail-on-leak"]
    plain = plain_python(*args, cwd=tmp_path)
    proc = memhound_run("-q", *args, cwd=tmp_path)
    assert proc.returncode == plain.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout
    # Options after the script belong to the program.
    assert b"argv: ['alpha', '--json', 'x y', '-q', '--fail-on-leak']" in proc.stdout
    assert proc.stderr == plain.stderr == b"program stderr line\n"


def test_stdout_is_unchanged_when_the_terminal_report_is_shown(tmp_path):
    args = [str(PROGRAMS / "echo_io.py"), "one", "two"]
    plain = plain_python(*args, cwd=tmp_path)
    proc = memhound_run(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout
    # The report goes to stderr, after the program's own stderr.
    assert proc.stderr.startswith(b"program stderr line\n"), proc.stderr
    assert b"memhound" in proc.stderr[len(b"program stderr line\n"):]


def test_syntax_error_passes_through_as_python_prints_it(tmp_path):
    script = tmp_path / "broken_syntax.py"
    script.write_text("total = 0\nfor i in range(3)\n    total += i\nprint(total)\n", encoding="utf-8")
    plain = plain_python(str(script), cwd=tmp_path)
    proc = memhound_run("-q", str(script), cwd=tmp_path)
    assert plain.returncode == 1 and b"SyntaxError" in plain.stderr  # the reference
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == b""
    assert proc.stderr.decode() == plain.stderr.decode()


def test_exception_traceback_passes_through_as_python_prints_it(tmp_path):
    program = str(PROGRAMS / "raises.py")
    plain = plain_python(program, cwd=tmp_path)
    assert plain.returncode == 1 and b"ValueError: bad record" in plain.stderr  # the reference
    report = tmp_path / "report.json"
    proc = memhound_run("-q", "--json", str(report), program, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == plain.stdout == b"about to fail\n"
    # Exactly the program's traceback: no frame of memhound's runner or of runpy.
    assert proc.stderr.decode() == plain.stderr.decode()


def test_report_is_written_and_marked_partial_when_the_program_raises(tmp_path):
    report = tmp_path / "report.json"
    proc = memhound_run("-q", "--json", str(report), str(PROGRAMS / "raises.py"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert b"ValueError: bad record: 'broken!'" in proc.stderr
    data = read_report(report)
    assert data["schema"] == 1
    assert data["program"]["status"] == "raised"
    assert data["program"]["exit_code"] == 1
    assert data["program"]["complete"] is False
    assert "partial" in data["verdict"]["summary"]
    assert "raised" in data["verdict"]["summary"]


@pytest.mark.parametrize("code", [7, 3, 0])
def test_sys_exit_code_passes_through_and_the_report_is_written(tmp_path, code):
    report = tmp_path / "report.json"
    program = str(PROGRAMS / "exits.py")
    proc = memhound_run("-q", "--json", str(report), program, str(code), cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == f"exiting with {code} after 100 items\n".encode()
    assert proc.stderr == b""
    data = read_report(report)
    assert data["program"]["status"] == ("completed" if code == 0 else "exited")
    assert data["program"]["exit_code"] == code
    if code:
        assert data["program"]["complete"] is False
        assert "partial" in data["verdict"]["summary"]
        assert f"code {code}" in data["verdict"]["summary"]


def test_sys_exit_with_a_message_behaves_as_under_python(tmp_path):
    program = str(PROGRAMS / "exits.py")
    plain = plain_python(program, "giving up: no input", cwd=tmp_path)
    proc = memhound_run("-q", program, "giving up: no input", cwd=tmp_path)
    assert plain.returncode == 1
    assert proc.returncode == plain.returncode
    assert proc.stdout == plain.stdout
    assert proc.stderr == plain.stderr == b"giving up: no input\n"


def test_keyboard_interrupt_traceback_passes_through_as_python_prints_it(tmp_path):
    script = tmp_path / "interrupted.py"
    script.write_text("def wait_for_input():\n    raise KeyboardInterrupt\n\n\nwait_for_input()\n",
                      encoding="utf-8")
    plain = plain_python(str(script), cwd=tmp_path)
    proc = memhound_run("-q", str(script), cwd=tmp_path)
    # Python ends an uncaught KeyboardInterrupt by killing itself with SIGINT
    # (-2 here, 130 in a shell); 130 is the same status as a shell sees it.
    assert plain.returncode in (-2, 130)
    assert proc.returncode in (-2, 130), proc.stderr
    assert proc.stderr.decode() == plain.stderr.decode()


def test_program_exit_code_wins_over_fail_on_leak(tmp_path):
    # A failing program keeps its own exit code even with --fail-on-leak.
    proc = memhound_run("-q", "--fail-on-leak", str(PROGRAMS / "exits.py"), "5", cwd=tmp_path)
    assert proc.returncode == 5, proc.stderr


def test_relative_json_path_is_relative_to_where_memhound_started(tmp_path):
    # The program changes its working directory; the report still goes where
    # the user asked, relative to the directory memhound was started in.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = memhound_run("-q", "--json", "report.json", str(PROGRAMS / "chdir_work.py"), str(elsewhere),
                        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"working in elsewhere with 2000 words\n"
    found = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert (tmp_path / "report.json").exists(), found
    assert not (elsewhere / "report.json").exists()
    assert read_report(tmp_path / "report.json")["program"]["status"] == "completed"


# --------------------------------------------------------------------------
# -m module


def test_dash_m_runs_a_package_from_the_working_directory(tmp_path):
    report = tmp_path / "report.json"
    plain = plain_python("-m", "mh_demo_pkg", "a", "--b", cwd=PROGRAMS)
    proc = memhound_run("-q", "--json", str(report), "-m", "mh_demo_pkg", "a", "--b", cwd=PROGRAMS)
    assert plain.returncode == 0, plain.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout
    assert proc.stdout.startswith(b"mh_demo_pkg main: name=__main__ argv=['a', '--b']")
    data = read_report(report)
    assert data["argv"] == ["mh_demo_pkg", "a", "--b"]
    assert data["program"]["status"] == "completed"


def test_dash_m_runs_a_submodule_found_on_pythonpath(tmp_path):
    plain = plain_python("-m", "mh_demo_pkg.worker", "x", cwd=tmp_path, extra_path=PROGRAMS)
    proc = memhound_run("-q", "-m", "mh_demo_pkg.worker", "x", cwd=tmp_path, extra_path=PROGRAMS)
    assert plain.returncode == 0, plain.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout
    assert proc.stdout.startswith(b"mh_demo_pkg.worker: argv=['x']")


def test_dash_m_finds_a_package_in_the_working_directory_from_the_memhound_command(tmp_path):
    # The installed ``memhound`` command is a small script in the environment's
    # bin directory that calls memhound.cli.main, so sys.path[0] is that
    # directory, not the working directory. ``memhound run -m pkg`` must still
    # find pkg where ``python -m pkg`` finds it: in the working directory.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    entry = bindir / "memhound"
    entry.write_text("import sys\nfrom memhound.cli import main\n\n"
                     "if __name__ == '__main__':\n    sys.exit(main())\n", encoding="utf-8")
    plain = plain_python("-m", "mh_demo_pkg", "z", cwd=PROGRAMS)
    proc = subprocess.run([sys.executable, str(entry), "run", "-q", "-m", "mh_demo_pkg", "z"],
                          capture_output=True, env=_env(), cwd=str(PROGRAMS), timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout


# --------------------------------------------------------------------------
# The terminal report


def test_terminal_report_names_the_leaking_line(tmp_path):
    program = PROGRAMS / "epoch_loop.py"
    with open(program, encoding="utf-8") as f:
        line = next(i for i, text in enumerate(f, start=1) if text.rstrip().endswith("# LEAK"))
    proc = memhound_run("--epoch-on", "handle", str(program), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.decode()
    lines: List[str] = err.splitlines()
    assert any(l.startswith("Leaking about") and "per call" in l for l in lines), err
    assert f"{program}:{line} in " in err, err
    assert proc.stdout == b"handled 400 requests (80400)\n"
