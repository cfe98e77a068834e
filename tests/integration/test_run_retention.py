"""``memhound run`` names what holds a leak: for each kind of root (a module
global, a class attribute, a closure cell, an lru_cache, a logging handler, a
local of a live thread's frame, a default argument) the JSON's
``leaks[].retained_by`` starts at that root, ``leaks[].type`` names the leaked
objects' type, and neither the JSON nor the terminal report ever contains the
secret stored in the leaked objects. Objects the GC does not track (str,
bytes) are found through their container, and a list whose item array is the
sampled allocation is found as the list."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest

import memhound

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
SRC = Path(memhound.__file__).resolve().parent.parent
SECRET = "SECRET-7f3a9c"


def _run(tmp_path: Path, mode: str) -> Tuple[Dict[str, Any], str]:
    report = tmp_path / f"{mode}.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["COLUMNS"] = "200"
    proc = subprocess.run(
        [sys.executable, "-m", "memhound", "run", "--epoch-on", "step", "--sample-bytes", "512",
         "--json", str(report), str(PROGRAMS / "holders.py"), mode, "150"],
        capture_output=True, text=True, env=env, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = report.read_text(encoding="utf-8")
    assert SECRET not in text, "a leaked object's value reached the JSON report"
    assert SECRET not in proc.stderr and SECRET not in proc.stdout, "... or the terminal"
    return json.loads(text), proc.stderr


ROOTS = {
    "global_dict": ("module __main__, global _held (dict)", "module global"),
    "class_attr": ("class Registry, attribute seen (list)", "class attribute"),
    "closure": ("closure variable cache of make_cache.<locals>.remember() (dict)", "closure cell"),
    "lru": ("lru_cache of lookup(), its entries (dict)", "functools cache"),
    "default_arg": ("default of parameter acc of remember_default() (list)", "default argument"),
    "logging": ("logger 'app', handler (ListHandler)", "logging handler"),
    "thread_local": ("local held of worker() in thread leaker (list)", "local"),
}


@pytest.mark.parametrize("mode", sorted(ROOTS))
def test_retained_by_names_the_root(tmp_path: Path, mode: str) -> None:
    report, stderr = _run(tmp_path, mode)
    root, kind = ROOTS[mode]
    leaks = report["leaks"]
    assert leaks, report["verdict"]
    top = leaks[0]
    assert top["retained_by"] and top["retained_by"][0] == root, top["retained_by"]
    assert top["retention"]["root_kind"] == kind
    assert top["type"] in ("list", "Payload", "LogRecord", "str")
    assert top["retention"]["objects"] > 0
    steps = top["retention"]["steps"]
    # Retained sizes: a holder retains at least what the next one does.
    sizes = [s["retained_bytes"] for s in steps]
    assert all(a >= b for a, b in zip(sizes, sizes[1:])), sizes
    assert root in stderr  # the terminal report shows the chain too
    assert "census" in report and report["census"]["growth"]


def _marker_line(marker: str) -> int:
    lines = (PROGRAMS / "holders.py").read_text(encoding="utf-8").splitlines()
    return next(i for i, t in enumerate(lines, 1) if t.rstrip().endswith("# " + marker))


def test_untracked_str_and_bytes_found_through_their_container(tmp_path: Path) -> None:
    report, _ = _run(tmp_path, "strings")
    by_line = {leak["site"]["line"]: leak for leak in report["leaks"]}
    for marker, type_name in (("STR", "str"), ("BYTES", "bytes")):
        leak = by_line[_marker_line(marker)]
        assert leak["type"] == type_name, leak
        assert leak["retained_by"][0] == "module __main__, global _items (list)"
        assert leak["retained_by"][-1].startswith("item ") and leak["retained_by"][-1].endswith(f"({type_name})")


def test_list_whose_item_array_is_the_sampled_allocation(tmp_path: Path) -> None:
    report, _ = _run(tmp_path, "list_items")
    leak = next(x for x in report["leaks"] if x["site"]["line"] == _marker_line("ITEMS"))
    assert leak["type"] == "list"
    assert leak["retained_by"][0] == "module __main__, global _items (list)"
    assert leak["retained_by"][1].startswith("item ")
    assert leak["retention"]["matched_samples"] > 0
