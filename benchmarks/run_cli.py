"""What ``memhound run`` costs, and how big its capture gets.

    python benchmarks/run_cli.py overhead [--repeat 3]   # run vs plain python, per workload
    python benchmarks/run_cli.py capture-size [--seconds 60] [--memray]

``overhead`` runs each workload under plain python and ``memhound run`` three
ways, round-robin: tracking only (``--no-capture --no-retention``: the hooks, the
background thread's timeline and epochs, the verdict and report at the end), with
the capture (``--no-retention``), and as by default (capture, and the retention
analysis at the end of the run). It prints the median wall time, CPU time (user +
system, from wait4) and peak RSS as ratios to plain python in the same run.

``capture-size`` runs the leaking-loop workload under ``memhound run`` (default
mode) for ``--seconds`` and prints the capture's size (file plus write-ahead log)
every few seconds, and the growth per minute; with ``--memray``, the same for
``memray run`` (if installed) for comparison.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_WORKLOADS_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "bench", "workloads"))
SIZES = {"alloc_churn": 1_000_000, "ast_stdlib": 120, "big_buffers": 20_000, "deep_stack": 150_000,
         "leaky_loop": 40}


def _env(src: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _measure(argv: list, env: dict, cwd: str) -> tuple:
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}): {err[-400:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024


def overhead(args: argparse.Namespace) -> None:
    py = args.python
    env = _env(args.memhound_src)
    run = [py, "-m", "memhound", "run", "-q"]
    modes = {
        "plain": lambda s, a, d: [py, s, *a],
        "tracking only": lambda s, a, d: [*run, "--no-capture", "--no-retention", s, *a],
        "+ capture": lambda s, a, d: [*run, "--no-retention", "-f", "-o", os.path.join(d, "c.db"), s, *a],
        "+ retention (run)": lambda s, a, d: [*run, "-f", "-o", os.path.join(d, "c.db"), s, *a],
    }
    print(f"python {subprocess.check_output([py, '-c', 'import sys; print(sys.version.split()[0])']).decode().strip()},"
          f" {os.cpu_count()} CPUs, {args.repeat} repetitions, medians; ratios to plain python")
    print(f"{'workload':12} {'mode':18} {'wall':>7} {'CPU':>7} {'peak RSS':>9}")
    geo = {m: [] for m in modes}
    for name in args.workloads.split(","):
        script = os.path.join(args.workloads_dir, f"{name}.py")
        wargs = [str(SIZES[name])]
        res = {m: [] for m in modes}
        with tempfile.TemporaryDirectory() as d:
            for _ in range(args.repeat):
                for m, make in modes.items():
                    res[m].append(_measure(make(script, wargs, d), env, d))
        base = [statistics.median(x[i] for x in res["plain"]) for i in range(3)]
        for m in modes:
            med = [statistics.median(x[i] for x in res[m]) for i in range(3)]
            ratios = [med[i] / base[i] for i in range(3)]
            geo[m].append(ratios)
            print(f"{name:12} {m:18} {ratios[0]:6.2f}× {ratios[1]:6.2f}× {ratios[2]:8.2f}×")
    for m in modes:
        g = [statistics.geometric_mean(r[i] for r in geo[m]) for i in range(3)]
        print(f"{'geo. mean':12} {m:18} {g[0]:6.2f}× {g[1]:6.2f}× {g[2]:8.2f}×")


def _size(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def _grow(argv: list, out: str, env: dict, seconds: float, cwd: str, label: str) -> None:
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    marks = [s for s in (5, 10, 15, 30, 45, 60, 90, 120, 180, 240, 300) if s <= seconds]
    sizes = []
    for mark in marks:
        while time.monotonic() - t0 < mark:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        sizes.append((time.monotonic() - t0, _size(out)))
        if proc.poll() is not None:
            break
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    final = _size(out)
    elapsed = sizes[-1][0] if sizes else time.monotonic() - t0
    print(f"{label}: " + ", ".join(f"{t:.0f} s {b / 1e6:.2f} MB" for t, b in sizes)
          + f"; after exit {final / 1e6:.2f} MB; {final / 1e6 / elapsed * 60:.2f} MB per minute")


def capture_size(args: argparse.Namespace) -> None:
    env = _env(args.memhound_src)
    script = os.path.join(args.workloads_dir, "leaky_loop.py")
    stores = str(args.stores)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "leaky.db")
        _grow([args.python, "-m", "memhound", "run", "-q", "-f", "-o", out, script, stores],
              out, env, args.seconds, d, "memhound run (default mode)")
        if args.memray:
            mout = os.path.join(d, "leaky.bin")
            _grow([args.python, "-m", "memray", "run", "-q", "-f", "-o", mout, script, stores],
                  mout, env, args.seconds, d, "memray run")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("overhead", "capture-size"))
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--memhound-src", default=os.path.join(REPO, "src"))
    p.add_argument("--workloads-dir", default=DEFAULT_WORKLOADS_DIR)
    p.add_argument("--workloads", default=",".join(SIZES))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--stores", type=int, default=100_000,
                   help="stores for the leaking loop (it is stopped after --seconds)")
    p.add_argument("--memray", action="store_true")
    args = p.parse_args()
    (overhead if args.what == "overhead" else capture_size)(args)


if __name__ == "__main__":
    main()
