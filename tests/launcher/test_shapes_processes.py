"""Every process of the program is followed: a child made by ``os.fork``, a
``multiprocessing`` child started with spawn, and a python started by
``subprocess.run`` each leak, and each is reported under its own pid in the
JSON report's ``processes``, as a child of the program; the program itself,
which only waits, is not called leaking. And the census does not count
memhound's own imports.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from _shapes import (clean_env, first_process, memhound_argv, census_growth, plain_argv,
                     process, read_json, run, workdir)

PID = re.compile(rb"pid=(\d+)")


def _mask_pids(out: bytes) -> bytes:
    return PID.sub(b"pid=N", out)


@pytest.mark.parametrize("program", ["fork_leak.py", "spawn_leak.py", "subprocess_leak.py"],
                         ids=["fork", "spawn", "subprocess"])
def test_leaking_child_is_reported_under_its_pid(tmp_path: Path, program: str):
    wd = workdir(tmp_path)
    report_path = tmp_path / "report.json"
    plain = run(plain_argv([program]), wd, env=clean_env())
    mh = run(memhound_argv([program], ["-q", "--json", str(report_path)]), wd, env=clean_env())
    where = f"\n--- plain\n{plain.describe()}\n--- memhound\n{mh.describe()}"
    assert plain.returncode == 0, where
    assert mh.returncode == 0, where
    assert _mask_pids(mh.stdout) == _mask_pids(plain.stdout), "stdout differs" + where
    assert mh.stderr == plain.stderr, "stderr differs (with -q)" + where

    pids = [int(p) for p in PID.findall(mh.stdout)]
    assert len(pids) == 1, where
    report = read_json(report_path, mh)
    parent = first_process(report)
    child = process(report, pids[0])
    assert child["ppid"] == parent["pid"], (child, parent)
    assert child["leaking"], f"the leaking child {pids[0]} is not called leaking: {child}"
    assert not parent["leaking"], f"the parent only waits, yet is called leaking: {parent}"


def test_census_does_not_count_memhound(tmp_path: Path):
    """D13: a program that only sleeps creates no thousands of str, tuple,
    function or code objects; memhound's imports must not show in its census."""
    wd = workdir(tmp_path)
    report_path = tmp_path / "report.json"
    mh = run(memhound_argv(["sleep_only.py"], ["-q", "--json", str(report_path)]), wd,
             env=clean_env())
    assert mh.returncode == 0, mh.describe()
    growth = census_growth(read_json(report_path, mh))
    grown = {t: d for t, d in growth.items() if d >= 500}
    assert grown == {}, f"the census of a sleeping program grew: {growth}"
