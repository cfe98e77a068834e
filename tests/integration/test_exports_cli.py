"""``memhound run --pprof FILE --speedscope FILE``: the files are written from the
final snapshot after the program has run, with the program's own stacks
(memhound's runner frames left out); a bad path is one line on stderr and exit
code 2 before the program runs, as for ``--json``."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import memhound

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
SRC = Path(memhound.__file__).resolve().parent.parent
PROGRAM = PROGRAMS / "epoch_loop.py"
LEAK_LINE = next(i for i, text in enumerate(PROGRAM.read_text().splitlines(), 1) if "# LEAK" in text)
EXIT_ERROR = 2


def memhound_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, "-m", "memhound", "run", *args], capture_output=True,
                          env=env, cwd=str(cwd), timeout=120)


@pytest.mark.parametrize("option", ["--pprof", "--speedscope"])
@pytest.mark.parametrize("where", ["missing-dir", "directory"])
def test_bad_export_path_is_one_line_and_exit_2_before_the_program_runs(tmp_path, option, where):
    marker = tmp_path / "program-ran"
    path = tmp_path / "no" / "such" / "out" if where == "missing-dir" else tmp_path
    proc = memhound_run(option, str(path), str(PROGRAMS / "echo_io.py"), "--touch", str(marker),
                        cwd=tmp_path)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == EXIT_ERROR, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("memhound: error: "), err
    assert option.lstrip("-") in lines[0] and str(path) in lines[0]
    assert not marker.exists(), "the program ran although the export could not be written"
    assert proc.stdout == b""


def test_run_writes_both_exports_with_the_programs_stacks(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = memhound_run("--no-capture", "--pprof", "live.pb.gz", "--speedscope", "live.json",
                        str(PROGRAM), "300", cwd=work)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert f"pprof profile written to {work / 'live.pb.gz'}" in err
    assert f"speedscope profile written to {work / 'live.json'}" in err
    assert gzip.decompress((work / "live.pb.gz").read_bytes())  # a gzip stream
    assert sorted(p.name for p in work.iterdir()) == ["live.json", "live.pb.gz"]

    doc = json.loads((work / "live.json").read_text(encoding="utf-8"))
    frames = doc["shared"]["frames"]
    prof = doc["profiles"][0]
    assert prof["unit"] == "bytes" and prof["endValue"] == sum(prof["weights"])
    leaked = 0
    for stack, weight in zip(prof["samples"], prof["weights"]):
        files = [frames[i].get("file", "") for i in stack]
        in_cli = [os.sep + os.path.join("memhound", "cli") + os.sep in f for f in files]
        # Only what memhound's runner allocated itself keeps the runner's frames.
        assert not any(in_cli) or in_cli[-1], files
        leaf = frames[stack[-1]]
        if leaf.get("file") == str(PROGRAM) and leaf.get("line") == LEAK_LINE:
            # Outermost first: the program's module code, then main, handle, step.
            names = [frames[i]["name"] for i in stack]
            assert names[0] == "<module>" and names[-1].endswith("step"), names
            leaked += weight
    assert 0.6 * 300 * 5000 <= leaked <= 1.6 * 300 * 5000


def test_quiet_run_writes_the_exports_silently(tmp_path):
    proc = memhound_run("-q", "--speedscope", "s.json", str(PROGRAM), "50", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stderr == b""
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))["profiles"][0]["type"] == "sampled"
