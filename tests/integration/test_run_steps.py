"""``memhound run`` calls neither a step nor a free list a leak.

- A clean ``multiprocessing.Pool`` loop: the pool's task tuples die onto
  CPython's tuple free list, which never frees them; before the end-of-run
  snapshot memhound reports the blocks on the free lists as freed.
- A clean program that imports asyncio, json and decimal after warm-up: the
  imports' memory is made once and kept, a step that is not sustained growth.
- A clean loop whose lookup cache is filled lazily after warm-up, in a tenth of
  the run, and then stays full: a step, not sustained growth.
- A 0.1 s asyncio script that is mostly its own `import asyncio`: memory made
  by an import is made once per module.

Each program runs in a subprocess (``python -m memhound run -q --json ...``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import memhound

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
SRC = Path(memhound.__file__).resolve().parent.parent


def _run(tmp_path: Path, program: str, *args: str) -> Dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    report = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.json"
    cmd = [sys.executable, "-m", "memhound", "run", "-q", "--json", str(report),
           str(PROGRAMS / program), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stderr}"
    return json.loads(report.read_text(encoding="utf-8"))


def _describe(report: Dict[str, Any]) -> str:
    v = report["verdict"]
    leaks = [f"{os.path.basename(l['site']['file'])}:{l['site']['line']} {l['bytes_per_epoch']:.0f} B/epoch "
             f"p={l['p_value']:.2g}" for l in report["leaks"]]
    return f"leaking={v['leaking']} epochs={report['epochs']['count']} summary={v['summary']!r} leaks={leaks}"


def test_a_clean_pool_loop_is_not_a_leak_in_five_runs_of_five(tmp_path):
    for _ in range(5):
        report = _run(tmp_path, "pool_noclose.py", "0.6")
        assert report["verdict"]["leaking"] is False, _describe(report)
        assert report["leaks"] == [], _describe(report)
        assert report["verdict"]["diagnosis"] in ("none", "native"), _describe(report)


def test_imports_after_warmup_are_a_step_not_a_leak(tmp_path):
    report = _run(tmp_path, "late_imports.py")
    assert report["epochs"]["count"] >= 20, _describe(report)  # judged, not "too short"
    assert report["verdict"]["leaking"] is False, _describe(report)
    assert report["leaks"] == [], _describe(report)
    assert report["verdict"]["diagnosis"] == "none", _describe(report)


def test_a_cache_filled_once_after_warmup_is_a_step_not_a_leak(tmp_path):
    report = _run(tmp_path, "late_cache.py")
    assert report["epochs"]["count"] >= 20, _describe(report)
    assert report["verdict"]["leaking"] is False, _describe(report)
    assert report["leaks"] == [], _describe(report)
    assert report["verdict"]["diagnosis"] == "none", _describe(report)


def test_a_short_asyncio_script_is_not_a_leak_at_its_import_line(tmp_path):
    for _ in range(3):
        report = _run(tmp_path, "asyncio_short.py")
        assert report["verdict"]["leaking"] is False, _describe(report)
        assert report["leaks"] == [], _describe(report)
