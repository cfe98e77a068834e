"""Ctrl-C typed on a terminal: the terminal sends SIGINT to its whole foreground
process group, memhound and the program alike. The program must get it once
(one KeyboardInterrupt traceback, as under plain python), and memhound must end
as the program did, killed by SIGINT, after its report."""
from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import subprocess
import termios
import time
from pathlib import Path
from typing import List, Tuple

from _shapes import clean_env, memhound_argv, plain_argv, workdir


def _on_controlling_terminal(argv: List[str], cwd: Path) -> Tuple[int, bytes]:
    """Run ``argv`` in a new session whose controlling terminal is a new pty,
    type Ctrl-C once it says "ready", and return (returncode, what the
    terminal received)."""
    master, slave = os.openpty()

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, cwd=str(cwd), env=clean_env({"TERM": "xterm"}), stdin=slave,
                            stdout=slave, stderr=slave, preexec_fn=setup)
    os.close(slave)
    got = bytearray()
    typed = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    break
                if not chunk:
                    break
                got += chunk
            if not typed and b"ready" in got:
                time.sleep(0.3)
                os.write(master, b"\x03")
                typed = True
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert typed, bytes(got)
    return proc.returncode, bytes(got)


def test_ctrl_c_reaches_the_program_once_and_memhound_dies_of_it(tmp_path):
    cwd = workdir(tmp_path)
    plain_rc, plain_out = _on_controlling_terminal(plain_argv(["wait_for_signal.py"]), cwd)
    rc, out = _on_controlling_terminal(
        memhound_argv(["wait_for_signal.py"], ["--no-capture", "--json", str(tmp_path / "r.json")]),
        cwd)
    assert plain_rc == -signal.SIGINT
    assert rc == -signal.SIGINT, out
    assert plain_out.count(b"KeyboardInterrupt") == 1
    program, _, report = out.partition(b"memhound \xc2\xb7")
    assert report, out  # memhound's report comes after the program's output
    assert program.count(b"KeyboardInterrupt") == 1, out
    assert b"the end-of-run analysis failed" not in out
    assert b"interrupted by SIGINT" in report
