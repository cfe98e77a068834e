#!/usr/bin/env python3
"""Run memhound over a corpus of leak scenarios and score it against the truth.

Each scenario is a folder holding ``scenario.py`` and ``truth.json`` (``leaks``,
``native``, ``sites``: a list of {file, line, function}). For each one this runs,
the way a new user would:

  memhound run --json out.json scenario.py                 (no hints)
  memhound run --json out.json --epoch-on FUNC scenario.py (the unit of work)

FUNC is found from the scenario itself: the function called first in the body of
the main loop of ``main()``. A leaking scenario scores "first" when rank 1 is one
of the true sites (file and line), "top3" when one is in the first three; a clean
one passes when no leak is reported; a native one when memhound reports no
Python-level leak and RSS growth. With --compare it also runs tracemalloc snapshot
diffs (two runs: a fifth of the iterations, then all; the line that grew most)
and memray's leak report (if memray is installed) over the same scenarios.

Usage: python scripts/acceptance.py [--compare] [--only NAME,...] [--python EXE] [--scale F] CORPUS

--scale F runs each scenario for F times its ``default_n`` iterations (given as
its first argument): --scale 0.1 judges runs ten times shorter.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple


def loop_function(scenario: str) -> Optional[str]:
    """The unit of work: the first function of the scenario's own module called
    in the body of the first loop of main()."""
    tree = ast.parse(open(scenario, encoding="utf-8").read())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name == "main"):
            continue
        for loop in ast.walk(node):
            if not isinstance(loop, (ast.For, ast.While)):
                continue
            for stmt in loop.body:
                for call in ast.walk(stmt):
                    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) \
                            and call.func.id in defined:
                        return call.func.id
    return None


def run_memhound(python: str, scenario: str, extra: List[str], timeout: float,
                 program_args: Tuple[str, ...] = ()) -> Tuple[Optional[dict], float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        capture = os.path.join(tmp, "capture.db")  # not beside the scenario
        cmd = ([python, "-m", "memhound", "run", "--quiet", "-o", capture, "--json", out] + extra
               + [scenario, *program_args])
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           cwd=os.path.dirname(scenario))
        dt = time.monotonic() - t0
        if not os.path.exists(out):
            return None, dt, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"
        with open(out) as f:
            return json.load(f), dt, ""


def score(report: Optional[dict], truth: dict, scenario: str) -> Tuple[str, str]:
    """(outcome, detail). Outcomes: first, top3, miss, clean, false-alarm, native, error."""
    if report is None:
        return "error", ""
    v = report["verdict"]
    leaks = report["leaks"]
    if not truth["leaks"]:
        if v["leaking"]:
            s = leaks[0]["site"]
            return "false-alarm", f"{os.path.basename(s['file'])}:{s['line']} {leaks[0]['bytes_per_epoch']:.0f} B/epoch"
        return "clean", v.get("diagnosis", "")
    if truth.get("native"):
        if not v["leaking"] and v.get("diagnosis") == "native":
            return "native", f"RSS {v.get('rss_bytes_per_second') or 0:.0f} B/s"
        return "miss", v.get("diagnosis", "")
    want = {(os.path.join(os.path.dirname(scenario), s["file"]), s["line"]) for s in truth["sites"]}
    got = [(leak["site"]["file"], leak["site"]["line"]) for leak in leaks]
    if got and got[0] in want:
        return "first", f"{leaks[0]['bytes_per_epoch']:.0f} B/epoch"
    if any(g in want for g in got[:3]):
        return "top3", f"rank {[g in want for g in got].index(True) + 1}"
    top = f"{os.path.basename(got[0][0])}:{got[0][1]}" if got else "no leak reported"
    return "miss", top


def holder_names(holder: str) -> List[str]:
    """The names a retention chain must mention to name the truth's holder: the
    global's, attribute's or parameter's name (truth.json "holder" is prose)."""
    pats = [r"global (\w+)", r"attribute (\w+)\.(\w+)", r"'(\w+)' parameter",
            r"\(module global (\w+)\)", r"cache of (\w+)\.(\w+)"]
    names: List[str] = []
    for pat in pats:
        for m in re.finditer(pat, holder):
            names.extend(g for g in m.groups() if g)
    return names


def score_holder(report: Optional[dict], truth: dict) -> str:
    """Does the rank-1 leak's retention chain name the truth's holder? "hit",
    "miss", or "-" where there is no Python-level holder to name."""
    holder = truth.get("holder") or ""
    if not truth["leaks"] or truth.get("native") or report is None:
        return "-"
    if not report["leaks"]:
        return "miss"
    chain = " ".join(report["leaks"][0].get("retained_by") or [])
    if holder.startswith("nothing reachable"):
        return "hit" if "unreachable" in chain else "miss"
    names = holder_names(holder)
    if not names:
        return "-"
    return "hit" if any(re.search(rf"\b{re.escape(n)}\b", chain) for n in names) else "miss"


TRACEMALLOC_RUN = r'''
import contextlib, io, json, os, runpy, sys, tracemalloc
path, n, out = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
tracemalloc.start(1)
sys.argv = [path, n]
sys.path.insert(0, os.path.dirname(path))
with contextlib.redirect_stdout(io.StringIO()):
    runpy.run_path(path, run_name="__main__")
lines = {}
for st in tracemalloc.take_snapshot().statistics("lineno"):
    fr = st.traceback[0]
    if os.path.abspath(fr.filename) == path:
        lines[fr.lineno] = lines.get(fr.lineno, 0) + st.size
json.dump(lines, open(out, "w"))
'''


def run_tracemalloc_diff(python: str, scenario: str, truth: dict, timeout: float) -> Tuple[str, float]:
    n = int(truth.get("default_n") or 0)
    if not n:
        return "error", 0.0
    res = []
    t0 = time.monotonic()
    for count in (max(n // 5, 1), n):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
            out = tf.name
        try:
            subprocess.run([python, "-c", TRACEMALLOC_RUN, scenario, str(count), out],
                           capture_output=True, timeout=timeout, check=True)
            res.append({int(k): v for k, v in json.load(open(out)).items()})
        except (subprocess.SubprocessError, ValueError):
            return "error", time.monotonic() - t0
        finally:
            os.unlink(out)
    dt = time.monotonic() - t0
    growth = {line: res[1].get(line, 0) - res[0].get(line, 0) for line in set(res[0]) | set(res[1])}
    big = sorted(growth.items(), key=lambda kv: -kv[1])
    if not truth["leaks"]:
        return ("false-alarm" if big and big[0][1] > 64 * 1024 else "clean"), dt
    if truth.get("native"):
        return "miss", dt
    want = {s["line"] for s in truth["sites"]}
    if big and big[0][1] > 0 and big[0][0] in want:
        return "first", dt
    if any(line in want for line, g in big[:3] if g > 0):
        return "top3", dt
    return "miss", dt


MEMRAY_LEAKS = r'''
import json, os, sys
from memray import FileReader
reader = FileReader(sys.argv[1])
target = os.path.abspath(sys.argv[3])
by_line = {}
for rec in reader.get_leaked_allocation_records(merge_threads=True):
    # Attribute to the innermost frame in the scenario itself (as memhound does).
    for func, path, line in rec.stack_trace():
        if os.path.abspath(path) == target:
            key = f"{target}:{line}"
            by_line[key] = by_line.get(key, 0) + rec.size
            break
json.dump(sorted(by_line.items(), key=lambda kv: -kv[1]), open(sys.argv[2], "w"))
'''


def run_memray(python: str, scenario: str, truth: dict, timeout: float) -> str:
    """memray's leak report: what was allocated and never freed at exit, by the line
    that allocated it (--trace-python-allocators, so small objects are seen)."""
    with tempfile.TemporaryDirectory() as tmp:
        cap = os.path.join(tmp, "cap.bin")
        out = os.path.join(tmp, "leaks.json")
        try:
            subprocess.run([python, "-m", "memray", "run", "-q", "--trace-python-allocators",
                            "-o", cap, scenario], capture_output=True, timeout=timeout,
                           cwd=os.path.dirname(scenario))
            subprocess.run([python, "-c", MEMRAY_LEAKS, cap, out, scenario], capture_output=True,
                           timeout=timeout, check=True)
            ranked = json.load(open(out))
        except (subprocess.SubprocessError, ValueError, OSError):
            return "error"
    path = os.path.abspath(scenario)
    ours = [(loc, size) for loc, size in ranked if loc.startswith(path + ":")]
    if not truth["leaks"]:
        return "false-alarm" if any(size > 64 * 1024 for _, size in ours) else "clean"
    if truth.get("native"):
        return "miss"
    want = {f"{path}:{s['line']}" for s in truth["sites"]}
    if ours and ours[0][0] in want:
        return "first"
    if any(loc in want for loc, _ in ours[:3]):
        return "top3"
    return "miss"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--only", default="")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--compare", action="store_true", help="also run tracemalloc diffs and memray")
    ap.add_argument("--no-epoch-on", action="store_true")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--scale", type=float, default=None,
                    help="run each scenario for its default_n times this (e.g. 0.1: ten times shorter)")
    args = ap.parse_args()
    names = sorted(d for d in os.listdir(args.corpus)
                   if os.path.isfile(os.path.join(args.corpus, d, "truth.json")))
    if args.only:
        names = [n for n in names if n in set(args.only.split(","))]
    rows: List[Dict[str, object]] = []
    for name in names:
        folder = os.path.abspath(os.path.join(args.corpus, name))
        scenario = os.path.join(folder, "scenario.py")
        truth = json.load(open(os.path.join(folder, "truth.json")))
        row: Dict[str, object] = {"scenario": name, "leaks": truth["leaks"], "native": bool(truth.get("native"))}
        n_arg: Tuple[str, ...] = ()
        if args.scale is not None and truth.get("default_n"):
            n_arg = (str(max(1, int(round(int(truth["default_n"]) * args.scale)))),)
        report, dt, err = run_memhound(args.python, scenario, [], args.timeout, n_arg)
        row["plain"], row["plain_detail"] = score(report, truth, scenario)
        row["holder"] = score_holder(report, truth)
        row["retained_by"] = (report["leaks"][0].get("retained_by") if report and report["leaks"] else None)
        row["plain_s"] = dt
        if err:
            row["plain_detail"] = err
        func = None if args.no_epoch_on else loop_function(scenario)
        if func:
            report, dt, err = run_memhound(args.python, scenario, ["--epoch-on", func], args.timeout,
                                           n_arg)
            row["epoch_on"], row["epoch_on_detail"] = score(report, truth, scenario)
            row["func"] = func
        if args.compare:
            row["tracemalloc"], row["tracemalloc_s"] = run_tracemalloc_diff(args.python, scenario, truth, args.timeout)
            row["memray"] = run_memray(args.python, scenario, truth, args.timeout)
        rows.append(row)
        print(f"{name:28} plain={row['plain']:<11} holder={row['holder']:<4} {row.get('plain_detail', '')!s:38} "
              f"epoch-on({row.get('func', '-')})={row.get('epoch_on', '-')!s:<11}"
              + (f" tracemalloc={row['tracemalloc']} memray={row['memray']}" if args.compare else ""),
              flush=True)
    print()
    for col in ["plain", "epoch_on"] + (["tracemalloc", "memray"] if args.compare else []):
        leaking = [r for r in rows if r["leaks"] and not r["native"] and col in r]
        clean = [r for r in rows if not r["leaks"] and col in r]
        native = [r for r in rows if r["native"] and col in r]
        first = sum(1 for r in leaking if r[col] == "first")
        top3 = sum(1 for r in leaking if r[col] in ("first", "top3"))
        fa = sum(1 for r in clean if r[col] == "false-alarm")
        nat = sum(1 for r in native if r[col] == "native")
        print(f"{col:12} first {first}/{len(leaking)}  top3 {top3}/{len(leaking)}  "
              f"false alarms {fa}/{len(clean)}  native {nat}/{len(native)}")
    scored = [r for r in rows if r["holder"] != "-"]
    print(f"{'holder':12} retained_by names the holder {sum(r['holder'] == 'hit' for r in scored)}/{len(scored)}")
    for r in rows:
        if r["holder"] != "-":
            print(f"  {r['scenario']:28} {r['holder']:<4} {' → '.join(r['retained_by'] or [])}")
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
