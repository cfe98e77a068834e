"""Exact mode agrees with tracemalloc.

The same deterministic workload runs twice, each time in a fresh interpreter:
once under ``tracemalloc.start(1)`` and once under ``memhound.start(sample_bytes=1)``,
so the two tools never run together. Live bytes and counts per line of the
workload file must agree within 1%.

Both runs import the same modules and run the workload once untracked before
measuring (after a full collection, which empties the interpreter's free
lists), so that the free lists of tuples, lists, dicts... are full when
measurement starts in both runs: an object taken from a free list is no
allocation for either tool, and a tool's own start-up must not decide which
of the workload's objects are.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import memhound

WORKLOAD = textwrap.dedent(
    '''\
    KEEP = []


    def small_objects():
        return [object() for _ in range(5000)]  # site:objects


    def tuples_and_ints():
        return [(i, i + 1000) for i in range(3000)]  # site:tuples


    def dicts():
        return [{"a": i, "b": str(i)} for i in range(2000)]  # site:dicts


    def big_dicts():
        return [dict.fromkeys(range(i, i + 40)) for i in range(300)]  # site:big-dicts


    def strings():
        return ["s" * (i % 200 + 1) + str(i) for i in range(3000)]  # site:strings


    def byte_strings():
        return [bytes(n) for n in (2, 10, 100, 1000, 10000, 100000, 1000000)]  # site:bytes


    def buffers():
        return [bytearray(4096) for _ in range(500)]  # site:buffers


    def inner(n):
        return [bytearray(n) for _ in range(50)]  # site:inner


    def middle(n):
        return inner(n) + inner(n * 2)  # site:middle


    def nested():
        return [middle(64), middle(512), middle(3000)]


    def churn():
        data = [bytes(1000 + i % 50) for i in range(2000)]  # site:churn
        del data[::2]
        return data


    class Record:
        def __init__(self, i):
            self.name = "record-%d" % i  # site:record-name
            self.values = list(range(i % 20))  # site:record-values


    def records():
        return [Record(i) for i in range(1000)]  # site:records


    def run():
        KEEP.append(small_objects())
        KEEP.append(tuples_and_ints())
        KEEP.append(dicts())
        KEEP.append(big_dicts())
        KEEP.append(strings())
        KEEP.append(byte_strings())
        KEEP.append(buffers())
        KEEP.append(nested())
        KEEP.append(churn())
        KEEP.append(records())
        KEEP.append(bytearray(3 * 1024 * 1024))  # site:large
    '''
)

RUNNER = textwrap.dedent(
    '''\
    import gc
    import json
    import sys
    import tracemalloc

    import memhound

    tool, workload_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, workload_dir)
    import workload

    assert not tracemalloc.is_tracing(), "tracemalloc must not run under this test"

    # Warm-up: a full collection empties the free lists; running the workload
    # once and dropping its results fills them again, the same way in both runs.
    gc.collect()
    gc.disable()
    workload.run()
    workload.KEEP.clear()

    per_line = {}

    def add(filename, lineno, size, count):
        if filename == workload.__file__:
            acc = per_line.setdefault(lineno, [0, 0])
            acc[0] += size
            acc[1] += count

    if tool == "tracemalloc":
        tracemalloc.start(1)
        workload.run()
        snap = tracemalloc.take_snapshot()
        tracemalloc.stop()
        for st in snap.statistics("lineno"):
            add(st.traceback[0].filename, st.traceback[0].lineno, st.size, st.count)
    else:
        memhound.start(sample_bytes=1)
        workload.run()
        snap = memhound.snapshot()
        memhound.stop()
        # memhound's "lineno" key also holds the function, so one line can be
        # two keys (e.g. a comprehension and its enclosing function on 3.10).
        for st in snap.statistics("lineno"):
            add(st.traceback[0].filename, st.traceback[0].lineno, st.size, st.count)
    json.dump(per_line, sys.stdout)
    '''
)


def _site_lines():
    sites = {}
    for i, text in enumerate(WORKLOAD.splitlines(), start=1):
        if "# site:" in text:
            sites[text.rsplit("# site:", 1)[1].strip()] = i
    return sites


def _measure(tool, tmp_path):
    env = dict(os.environ)
    env.pop("PYTHONTRACEMALLOC", None)
    src_dir = os.path.dirname(os.path.dirname(os.path.abspath(memhound.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src_dir, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), tool, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{tool} run failed:\n{proc.stderr}"
    return {int(k): tuple(v) for k, v in json.loads(proc.stdout).items()}


@pytest.fixture(scope="module")
def measurements(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("tracemalloc_agreement")
    (tmp_path / "workload.py").write_text(WORKLOAD)
    (tmp_path / "runner.py").write_text(RUNNER)
    return _measure("tracemalloc", tmp_path), _measure("memhound", tmp_path)


def _close(a, b, rel=0.01):
    return abs(a - b) <= rel * max(abs(a), abs(b))


@pytest.mark.parametrize("site", sorted(_site_lines()))
def test_exact_mode_live_bytes_and_count_per_line_match_tracemalloc(measurements, site):
    reference, measured = measurements
    lineno = _site_lines()[site]
    assert lineno in reference, f"tracemalloc saw nothing at line {lineno} ({site})"
    ref_size, ref_count = reference[lineno]
    size, count = measured.get(lineno, (0, 0))
    assert _close(size, ref_size), (
        f"{site} (line {lineno}): memhound {size} B, tracemalloc {ref_size} B")
    assert _close(count, ref_count), (
        f"{site} (line {lineno}): memhound {count} blocks, tracemalloc {ref_count}")


def test_exact_mode_total_live_bytes_of_the_workload_match_tracemalloc(measurements):
    reference, measured = measurements
    ref_total = sum(size for size, _ in reference.values())
    total = sum(size for size, _ in measured.values())
    assert ref_total > 8 * 2**20
    assert _close(total, ref_total)
    ref_count = sum(count for _, count in reference.values())
    count = sum(count for _, count in measured.values())
    assert _close(count, ref_count)


def test_exact_mode_credits_no_significant_memory_to_lines_tracemalloc_does_not(measurements):
    reference, measured = measurements
    total = sum(size for size, _ in reference.values())
    for lineno, (size, _count) in measured.items():
        ref_size = reference.get(lineno, (0, 0))[0]
        assert abs(size - ref_size) <= 0.01 * total, f"line {lineno}: {size} vs {ref_size}"
    for lineno, (ref_size, _count) in reference.items():
        size = measured.get(lineno, (0, 0))[0]
        assert abs(size - ref_size) <= 0.01 * total, f"line {lineno}: {size} vs {ref_size}"


def test_frees_are_reflected_in_the_comparison(measurements):
    """The churn site freed half of what it allocated; both tools must see the
    surviving half only (1000 blocks), not everything allocated."""
    reference, measured = measurements
    lineno = _site_lines()["churn"]
    assert 1000 <= reference[lineno][1] <= 1010
    assert 1000 <= measured[lineno][1] <= 1010
