"""``memhound run --pprof`` read by pprof itself (``go tool pprof``): the leaking
line's function is on top with plausible bytes, both sample types work, and
the raw profile has the leaking line with its file and line number.

The Go toolchain is a test requirement (CI installs it): without ``go`` these
tests fail rather than skip, since a profile pprof cannot read is the one
thing they exist to catch."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

import memhound

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
SRC = Path(memhound.__file__).resolve().parent.parent
PROGRAM = PROGRAMS / "epoch_loop.py"
LEAK_LINE = next(i for i, text in enumerate(PROGRAM.read_text().splitlines(), 1) if "# LEAK" in text)
REQUESTS = 400
LEAK_BYTES = REQUESTS * 5000  # one bytearray(5000) kept per request

#: pprof's byte units are powers of 1024.
_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.fail("the Go toolchain is required: `go` is not on PATH (apt-get install golang-go)")
    return go


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("pprof")
    out = work / "out.pb.gz"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run([sys.executable, "-m", "memhound", "run", "-q", "--pprof", str(out),
                           str(PROGRAM), str(REQUESTS)],
                          capture_output=True, env=env, cwd=str(work), timeout=120)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert out.exists()
    return out


def go_pprof(profile: Path, *args: str) -> str:
    """``go tool pprof ARGS PROFILE`` in a clean environment: HOME, GOCACHE and
    GOPATH in a temporary directory, no network toolchain download."""
    home = profile.parent / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), GOCACHE=str(home / "gocache"), GOPATH=str(home / "gopath"),
               PPROF_TMPDIR=str(home / "pprof"), GOTOOLCHAIN="local", GOFLAGS="")
    proc = subprocess.run([_go(), "tool", "pprof", *args, str(profile)], capture_output=True, env=env,
                          cwd=str(profile.parent), timeout=120)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace") + out
    return out


def top_rows(out: str) -> List[Dict[str, str]]:
    """The rows of ``pprof -top``: flat, flat%, sum%, cum, cum%, name."""
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[1].endswith("%") and parts[4].endswith("%"):
            rows.append(dict(zip(("flat", "flat%", "sum%", "cum", "cum%", "name"), parts)))
    return rows


def parse_bytes(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2) or "B"]


def leak_function() -> str:
    # 3.11+ records the qualified name.
    return "Worker.step" if sys.version_info >= (3, 11) else "step"


def test_top_by_inuse_space_names_the_leaking_function(profile: Path) -> None:
    out = go_pprof(profile, "-top", "-sample_index=inuse_space")
    assert "Type: inuse_space" in out, out
    rows = top_rows(out)
    assert rows, out
    first = rows[0]
    assert first["name"] == leak_function(), out
    flat = parse_bytes(first["flat"])
    assert 0.6 * LEAK_BYTES <= flat <= 1.6 * LEAK_BYTES, out


def test_top_by_inuse_objects(profile: Path) -> None:
    out = go_pprof(profile, "-top", "-sample_index=inuse_objects")
    assert "Type: inuse_objects" in out, out
    rows = {r["name"]: r for r in top_rows(out)}
    assert leak_function() in rows, out
    # At least one object (the bytearray's buffer) per request kept.
    assert int(rows[leak_function()]["flat"]) >= 0.6 * REQUESTS, out


def test_raw_profile_has_the_leaking_line(profile: Path) -> None:
    out = go_pprof(profile, "-raw")
    assert "PeriodType: space bytes" in out, out
    assert "inuse_objects/count inuse_space/bytes[dflt]" in out, out
    assert "Period: 2048" in out, out  # memhound run's default sampling rate
    # Locations: "  12: 0x0 M=1 Worker.step /path/epoch_loop.py:12 s=0()"
    leak_locations = set()
    for m in re.finditer(r"^\s*(\d+): 0x0 M=1 (\S+) (.+):(\d+) s=", out, re.M):
        if m.group(2) == leak_function() and m.group(3) == str(PROGRAM) and int(m.group(4)) == LEAK_LINE:
            leak_locations.add(int(m.group(1)))
    assert leak_locations, out
    # Samples: "  count  bytes: loc loc ... " with the leaf first.
    leaked = 0
    for m in re.finditer(r"^\s*(\d+)\s+(\d+): ([\d ]+)$", out, re.M):
        if int(m.group(3).split()[0]) in leak_locations:
            leaked += int(m.group(2))
    assert 0.6 * LEAK_BYTES <= leaked <= 1.6 * LEAK_BYTES, out
