"""Bad captures: a missing file, a file that is not SQLite, an SQLite database
that is not a capture, a capture from a newer schema, and truncated or garbled
captures (fuzzed). Each gets one clear line and exit 2 from the command line,
or an honest report; reading never raises anything but CaptureError."""
from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from memhound.analysis import analyze
from memhound.capture import CaptureError, load
from memhound.reports import json_report
from test_capture import PROGRAM, memhound
from test_run_cli import assert_one_line_error, memhound_run


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("good")
    proc = memhound_run("-q", "-o", "good.db", str(PROGRAM), "120", cwd=d)
    assert proc.returncode == 0, proc.stderr.decode()
    return d / "good.db"


def copy(good: Path, tmp_path: Path, name: str = "bad.db") -> Path:
    dst = tmp_path / name
    shutil.copyfile(good, dst)
    return dst


def read_fully(path: Path) -> None:
    """Load, judge and build the JSON report, as ``memhound report`` does: either
    all of it works or CaptureError says why."""
    run = load(str(path))
    r = run.result
    verdict = analyze(r.snapshot, timeline=r.timeline, units_per_epoch=r.units_per_epoch)
    json_report.build(r, verdict, argv=run.argv, duration=run.duration, exit_status=run.process.state,
                      exit_code=run.process.exit_code, version="test", pid=run.process.pid)


def test_a_good_capture_reads(good):
    read_fully(good)


@pytest.mark.parametrize("content, expected", [
    (b"", "not an SQLite database"),
    (b"hello, this is text\n" * 20, "not an SQLite database"),
    (b"SQLite format 3\x00" + b"\xff" * 84, "corrupt"),
])
def test_not_a_capture_is_one_line(tmp_path, content, expected):
    (tmp_path / "x.db").write_bytes(content)
    line = assert_one_line_error(memhound("report", "x.db", cwd=tmp_path))
    assert expected in line, line


def test_missing_capture_and_directory(tmp_path):
    assert "no such capture" in assert_one_line_error(memhound("report", "nope.db", cwd=tmp_path))
    assert "directory" in assert_one_line_error(memhound("report", str(tmp_path), cwd=tmp_path))


def test_another_sqlite_database_is_not_a_capture(tmp_path):
    db = sqlite3.connect(str(tmp_path / "other.db"))
    db.execute("CREATE TABLE orders(id INTEGER, total REAL)")
    db.commit()
    db.close()
    line = assert_one_line_error(memhound("report", "other.db", cwd=tmp_path))
    assert "not a memhound capture" in line
    # ... and memhound run refuses to write into it.
    line = assert_one_line_error(memhound_run("-o", "other.db", str(PROGRAM), "5", cwd=tmp_path))
    assert "already exists" in line


def test_capture_from_a_newer_schema_is_refused(good, tmp_path):
    bad = copy(good, tmp_path)
    db = sqlite3.connect(str(bad))
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    line = assert_one_line_error(memhound("report", str(bad), cwd=tmp_path))
    assert "newer memhound" in line and "99" in line


@pytest.mark.parametrize("sql, what", [
    ("UPDATE site SET epoch = 1099511627776 WHERE stack = (SELECT min(stack) FROM site)", "site epoch"),
    ("UPDATE site SET alloc_bytes = 'lots' WHERE stack = (SELECT min(stack) FROM site)", "site"),
    ("UPDATE cohort SET stack = -5 WHERE stack = (SELECT min(stack) FROM cohort)", "cohort stack"),
    ("UPDATE process SET meta = '{not json'", "meta"),
    ("UPDATE process SET stacks = 99999999999", "stacks"),
    ("DELETE FROM frame", "stack frame"),
    ("UPDATE timeline SET tracked = 'x'", "timeline"),
])
def test_garbled_values_are_reported_not_raised(good, tmp_path, sql, what):
    bad = copy(good, tmp_path)
    db = sqlite3.connect(str(bad))
    try:
        db.execute(sql)
        db.commit()
    finally:
        db.close()
    with pytest.raises(CaptureError, match="garbled"):
        read_fully(bad)
    line = assert_one_line_error(memhound("report", str(bad), cwd=tmp_path))
    assert "garbled" in line


def test_truncated_captures_never_raise(good, tmp_path):
    data = good.read_bytes()
    n = len(data)
    cuts = sorted({16, 99, 100, 512, 1024, 4096, n // 4, n // 3, n // 2, 2 * n // 3, n - 4096, n - 1})
    outcomes = []
    for cut in cuts:
        bad = tmp_path / f"cut{cut}.db"
        bad.write_bytes(data[:cut])
        try:
            read_fully(bad)
            outcomes.append("read")
        except CaptureError as e:
            assert "\n" not in str(e)
            outcomes.append("error")
    assert "error" in outcomes  # a truncated capture is noticed, at least at most cuts
    # The command line: one line, exit 2, for a capture cut in half.
    bad = tmp_path / "half.db"
    bad.write_bytes(data[: n // 2])
    assert_one_line_error(memhound("report", str(bad), cwd=tmp_path))


def test_fuzzed_captures_never_raise(good, tmp_path):
    data = good.read_bytes()
    rng = random.Random(20261125)
    errors = reads = 0
    for i in range(120):
        buf = bytearray(data)
        for _ in range(rng.choice((1, 4, 32))):
            pos = rng.randrange(100 if i % 4 else 0, len(buf))
            buf[pos] = rng.randrange(256)
        bad = tmp_path / f"fuzz{i}.db"
        bad.write_bytes(bytes(buf))
        try:
            read_fully(bad)
            reads += 1
        except CaptureError as e:
            assert "\n" not in str(e)
            errors += 1
    assert errors + reads == 120
    assert errors > 0
