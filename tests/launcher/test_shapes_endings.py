"""Programs that end other ways than by returning: ``os._exit``, ``os.execv``, a
signal's default action (SIGTERM; SIGINT through KeyboardInterrupt), and
``sys.exit`` with odd codes. Under ``memhound run`` they end with plain
python's exit status (dying of the same signal), and the JSON report exists
and says how the program ended.
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import List, Optional

import pytest

from _shapes import (assert_report_after, clean_env, how_it_ended, memhound_argv, processes,
                     plain_argv, program_exit_code, read_json, run, workdir)


def _both(args: List[str], tmp_path: Path, quiet: bool, *, signal_after: Optional[bytes] = None,
          send: int = signal.SIGINT):
    """The program under plain python, then under memhound with --json (and -q
    when ``quiet``), compared; returns (plain, memhound's run, the JSON report).
    With ``signal_after`` the program is signalled from outside, at a moment
    that differs between runs: a KeyboardInterrupt's traceback may then point
    at another line, so only its last line is compared."""
    wd = workdir(tmp_path)
    report = tmp_path / "report.json"
    options = (["-q"] if quiet else []) + ["--json", str(report)]
    plain = run(plain_argv(args), wd, env=clean_env(), signal_after=signal_after, send=send)
    mh = run(memhound_argv(args, options), wd, env=clean_env(), signal_after=signal_after,
             send=send)
    where = f"\n--- plain\n{plain.describe()}\n--- memhound\n{mh.describe()}"
    assert mh.returncode == plain.returncode, "exit status differs" + where
    assert mh.stdout == plain.stdout, "stdout differs" + where
    if quiet and signal_after is not None:
        assert mh.stderr.splitlines()[-1:] == plain.stderr.splitlines()[-1:], \
            "stderr differs (with -q)" + where
    elif quiet:
        assert mh.stderr == plain.stderr, "stderr differs (with -q)" + where
    else:
        assert_report_after(plain.stderr, mh.stderr, where)
    return plain, mh, read_json(report, mh)


MODES = ["quiet", "report"]


@pytest.mark.parametrize("mode", MODES)
def test_os_exit(tmp_path, mode):
    plain, mh, report = _both(["os_exit7.py"], tmp_path, mode == "quiet")
    assert plain.returncode == 7
    ended = how_it_ended(report)
    assert ended["status"] == "os._exit", ended
    assert ended["exit_code"] == 7, ended


@pytest.mark.parametrize("mode", MODES)
def test_execv_of_another_python(tmp_path, mode):
    plain, mh, report = _both(["execv_py.py"], tmp_path, mode == "quiet")
    assert plain.returncode == 5 and plain.stdout == b"before exec\nexec child\n"
    # The program the process became is the first process now (same pid); the
    # image that exec'd is kept beside it, ended by exec.
    ended = how_it_ended(report)
    assert ended["status"] == "exited" and ended["exit_code"] == 5, ended
    assert [p["status"] for p in processes(report)].count("exec") == 1, processes(report)


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_default_action(tmp_path, mode):
    plain, mh, report = _both(["signal_self.py", "SIGTERM"], tmp_path, mode == "quiet")
    assert plain.returncode == -signal.SIGTERM
    ended = how_it_ended(report)
    assert ended["status"] == "signal" and ended["signal"] == signal.SIGTERM, ended


@pytest.mark.parametrize("mode", MODES)
def test_sigint_keyboard_interrupt(tmp_path, mode):
    plain, mh, report = _both(["signal_self.py", "SIGINT"], tmp_path, mode == "quiet")
    assert plain.returncode == -signal.SIGINT
    assert b"KeyboardInterrupt" in plain.stderr
    ended = how_it_ended(report)
    assert ended["status"] == "signal" and ended["signal"] == signal.SIGINT, ended


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "timeout_kill"])
def test_signal_to_the_process_group(tmp_path, sig):
    """Ctrl-C on a terminal, and `timeout`, signal the whole process group:
    memhound's own process included. The program dies of it as under python."""
    plain, mh, report = _both(["wait_for_signal.py"], tmp_path, True, signal_after=b"ready\n",
                              send=sig)
    assert plain.returncode == -sig
    ended = how_it_ended(report)
    assert ended["status"] == "signal" and ended["signal"] == sig, ended


@pytest.mark.parametrize("arg,code", [("true", 1), ("259", 3)], ids=["exit_true", "exit_259"])
def test_exit_code_is_the_process_status(tmp_path, arg, code):
    plain, mh, report = _both(["exit_with.py", arg], tmp_path, False)
    assert plain.returncode == code
    got = program_exit_code(report)
    assert type(got) is int and got == code, got
    ended = how_it_ended(report)
    assert ended["status"] == "exited" and ended["exit_code"] == code, ended
