"""What memhound's capture writer costs a program in RSS, and how much of RSS is
memhound's own.

    python benchmarks/own_footprint.py [--repeat 3] [--before PYTHON] PROGRAM [ARGS...]

Runs PROGRAM (a clean program: its own RSS is flat once warm) under plain python,
``memhound run --no-capture`` and ``memhound run``, round-robin, ``--repeat``
times; with ``--before PYTHON``, also under ``memhound run`` and ``--no-capture``
with another interpreter (a venv holding an older memhound build). A thread inside
the program's process samples its RSS every 0.1 s; at the program's end (before
memhound's end-of-run analysis) the RSS after warm-up (the first 20 % of the run)
and at the end are recorded. For ``memhound run`` the JSON report's timeline gives
memhound's own memory at the same moments. Prints medians, and RSS as ratios to
plain python's.
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Tuple


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


def _inside(out: str, argv: List[str]) -> None:
    """Run the program here while a thread samples RSS; write the figures to out."""
    points: List[Tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            points.append((time.monotonic() - t0, _rss()))
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    sys.argv = argv
    try:
        runpy.run_path(argv[0], run_name="__main__")
    finally:
        stop.set()
        th.join()
        t_end = points[-1][0]
        warm = next(p for p in points if p[0] >= 0.2 * t_end)
        with open(out, "w") as f:
            json.dump({"warm_t": warm[0], "warm": warm[1], "end_t": t_end, "end": points[-1][1]}, f)


def _own_at(report: str, t: float) -> Optional[float]:
    with open(report) as f:
        timeline = json.load(f)["timeline"]
    own = [p.get("own") for p in timeline if p["t"] <= t + 0.05]
    return float(own[-1]) if own and own[-1] is not None else None


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        _inside(sys.argv[2], sys.argv[3:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", help="an interpreter with the memhound to compare with")
    ap.add_argument("program", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    me = os.path.abspath(__file__)
    modes: Dict[str, List[str]] = {"plain": [sys.executable]}
    if args.before:
        modes["before: run --no-capture"] = [args.before, "-m", "memhound", "run", "-q", "--no-capture"]
        modes["before: run"] = [args.before, "-m", "memhound", "run", "-q"]
    modes["run --no-capture"] = [sys.executable, "-m", "memhound", "run", "-q", "--no-capture"]
    modes["run"] = [sys.executable, "-m", "memhound", "run", "-q"]
    got: Dict[str, List[Dict[str, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            names = list(modes)
            names = names[rep % len(names):] + names[:rep % len(names)]
            for name in names:
                fig, report = os.path.join(tmp, "fig.json"), os.path.join(tmp, "r.json")
                cmd = list(modes[name])
                if name.endswith("run"):
                    cmd += ["-o", os.path.join(tmp, f"c{rep}-{len(got[name])}-{name[:6]}.db")]
                if name == "run":
                    cmd += ["--json", report]
                cmd += [me, "--inside", fig, *args.program]
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=tmp, check=True)
                with open(fig) as f:
                    r = json.load(f)
                if name == "run":
                    r["own_warm"] = _own_at(report, r["warm_t"]) or 0.0
                    r["own_end"] = _own_at(report, r["end_t"]) or 0.0
                got[name].append(r)
    base = statistics.median(r["end"] for r in got["plain"])
    print(f"{' '.join(args.program)}: {args.repeat} repetitions, medians")
    print("| mode | RSS after warm-up | RSS at the end | end vs plain | memhound's own at the end | RSS less own, growth after warm-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rows in got.items():
        warm = statistics.median(r["warm"] for r in rows)
        end = statistics.median(r["end"] for r in rows)
        own = (f"{statistics.median(r['own_end'] for r in rows) / 1e6:.1f} MB"
               if name == "run" else "")
        less = (f"{statistics.median((r['end'] - r['own_end']) - (r['warm'] - r['own_warm']) for r in rows) / 1e6:+.1f} MB"
                if name == "run" else "")
        print(f"| {name} | {warm / 1e6:.1f} MB | {end / 1e6:.1f} MB | {end / base:.2f}× | {own} | {less} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
