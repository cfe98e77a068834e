#!/usr/bin/env python3
"""memhound's overhead, as ratios against plain python measured in the same run.

Each workload script runs as a child process under every mode asked for:

    plain            python script.py ARGS
    memhound         memhound.start()                 (default sampling rate)
    memhound_exact   memhound.start(sample_bytes=1)   (every allocation)
    tracemalloc1     python -X tracemalloc=1 script.py ARGS
    tracemalloc25    python -X tracemalloc=25 script.py ARGS
    memray           python -m memray run -q -o FILE script.py ARGS
    memray_pyalloc   the same with --trace-python-allocators
    memhound@R       memhound.start(sample_bytes=R)   (from --sample-bytes)
    runner           the memhound runner without start(): its own share
                     (opt-in, --modes runner)

The memhound modes go through benchmarks/_under_memhound.py. For each run the
harness records the wall time (fork to reap, so start-up and whatever a tool
does at exit are included), the child's peak RSS (ru_maxrss from os.wait4) and
its CPU time (see run_child for how the child is started, and why). Modes
alternate within each repetition (round-robin, the order rotated by one place
per repetition), and every figure reported is the median over the repetitions,
divided by plain's median for the same workload. --icount counts instructions
under valgrind instead, which other load on the machine does not disturb.

    python benchmarks/run.py                        # all modes, 5 repetitions
    python benchmarks/run.py --repeat 3 --modes plain,memhound,memhound_exact
    python benchmarks/run.py --sample-bytes 4096,16384,65536 --workloads alloc_churn
    python benchmarks/run.py --quick                # smoke run, tiny sizes
    python benchmarks/run.py --icount               # instructions, 1 run each
    python benchmarks/run.py --render benchmarks/results/TAG.json   # report again

Writes a markdown report (printed, and saved) and the raw numbers as JSON into
benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RUNNER = os.path.join(HERE, "_under_memhound.py")
DEFAULT_WORKLOADS_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "bench", "workloads"))
DEFAULT_RESULTS_DIR = os.path.join(HERE, "results")

# Workload -> (argument for a ~2 s plain run on a 2-core EPYC VM with 3.11,
# argument for --quick). The scripts take one size argument each.
WORKLOADS = {
    "alloc_churn": (2_500_000, 50_000),  # records made and dropped
    "ast_stdlib": (190, 5),               # stdlib modules parsed and compiled
    "big_buffers": (30_000, 500),         # 64 KiB..8 MiB buffers made and dropped
    "deep_stack": (340_000, 5_000),       # rounds of allocations 60 frames deep
    "leaky_loop": (60, 2),                # stores processed (~8 MB leaked each)
}
# Opt-in (--workloads startup): an empty script, for each tool's fixed cost
# (start-up, imports, exit). Not among the defaults: it would swamp the means.
STARTUP = "startup"


MAIN_MODES = ["plain", "memhound", "memhound_exact", "tracemalloc1", "tracemalloc25",
              "memray", "memray_pyalloc"]
EXTRA_MODES = ["runner"]
MEMRAY_MODES = ("memray", "memray_pyalloc")

# Environment variables that change how the interpreter allocates or traces.
SCRUB_ENV = ("PYTHONMALLOC", "PYTHONTRACEMALLOC", "PYTHONDEVMODE", "PYTHONMALLOCSTATS",
             "PYTHONPROFILEIMPORTTIME", "PYTHONASYNCIODEBUG")


# ---------------------------------------------------------------------------
# Modes


def sweep_mode(rate: int) -> str:
    return f"memhound@{rate}"


def is_memhound(mode: str) -> bool:
    """Modes that run a tracking memhound."""
    return mode.startswith("memhound")


def uses_runner(mode: str) -> bool:
    return is_memhound(mode) or mode == "runner"


def mode_sample_bytes(mode: str):
    if mode == "memhound_exact":
        return 1
    if mode.startswith("memhound@"):
        return int(mode.split("@", 1)[1])
    return None  # memhound's default


def command(mode: str, python: str, script: str, args: list, tmp: str, stats: str | None,
            src: str | None = None):
    """argv for one run of `script` under `mode`, and the path of any file the
    tool writes (deleted after the run)."""
    if mode == "plain":
        return [python, script, *args], None
    if mode in ("tracemalloc1", "tracemalloc25"):
        frames = mode[len("tracemalloc"):]
        return [python, "-X", f"tracemalloc={frames}", script, *args], None
    if mode in MEMRAY_MODES:
        out = os.path.join(tmp, "memray.bin")
        argv = [python, "-m", "memray", "run", "-q", "-f", "-o", out]
        if mode == "memray_pyalloc":
            argv.append("--trace-python-allocators")
        return [*argv, script, *args], out
    if mode == "runner":
        argv = [python, RUNNER, "--no-start"]
        if src:
            argv += ["--src", src]
        return [*argv, "--", script, *args], None
    if is_memhound(mode):
        argv = [python, RUNNER]
        rate = mode_sample_bytes(mode)
        if rate is not None:
            argv += ["--sample-bytes", str(rate)]
        if stats:
            argv += ["--stats", stats]
        if src:
            argv += ["--src", src]
        return [*argv, "--", script, *args], None
    raise ValueError(f"unknown mode {mode!r}")


# ---------------------------------------------------------------------------
# Running one child


def child_env(icount: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
    if icount:
        env["PYTHONHASHSEED"] = "0"  # same dict layouts, same counts, run to run
    return env


# --icount: count the instructions each child executes under valgrind's
# cachegrind (no cache simulation). The count does not depend on what else the
# machine is running, which wall time on a busy machine does; it leaves out what
# instructions cost (cache misses, branch misses, system calls' kernel side).
VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
            "--cachegrind-out-file=/dev/null"]


def instructions_from(errpath: str):
    """The `I refs:` total valgrind printed, or None."""
    import re

    with open(errpath, errors="replace") as fh:
        found = re.findall(r"I\s+refs:\s+([\d,]+)", fh.read())
    return int(found[-1].replace(",", "")) if found else None


# The child is started by a small helper process, not by this script, because
# of how Linux accounts peak RSS: a process that execs keeps the high-water RSS
# of the memory image it had before exec. A child spawned from this harness
# (vfork or fork) would start with the harness's own peak RSS (about 15 MiB, more
# than a bare python needs), and every small workload's peak would read as that
# floor. The helper is `python -S -E`, imports only builtin modules and fork()s,
# so its child starts from about 5 MiB of copied pages, below any interpreter's
# own peak. It times fork-to-reap and reports os.wait4's rusage on stdout.
SPAWN_HELPER = r"""
import os, signal, sys, time
err, argv = sys.argv[1], sys.argv[2:]
fds = (os.open(os.devnull, os.O_RDONLY), os.open(os.devnull, os.O_WRONLY),
       os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        for i, fd in enumerate(fds):
            os.dup2(fd, i)
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
def stop(signum, frame):
    os.kill(pid, signal.SIGKILL)
    os._exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_child(argv: list, env: dict, cwd: str, errpath: str) -> dict:
    """Run argv (stdout discarded, stderr to errpath) through the spawn helper.
    Returns wall and CPU seconds, peak RSS and the exit code."""
    helper = subprocess.Popen([sys.executable, "-S", "-E", "-c", SPAWN_HELPER, errpath, *argv],
                              cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        out, err = helper.communicate()
    except BaseException:
        helper.terminate()  # the helper kills the child
        helper.wait()
        raise
    fields = out.split()
    if helper.returncode != 0 or len(fields) != 5:
        raise RuntimeError(f"spawn helper failed ({helper.returncode}): {err.strip()}")
    wall, user, sys_, maxrss, code = fields
    return {
        "wall_s": float(wall),
        "cpu_s": float(user) + float(sys_),
        "user_s": float(user),
        "sys_s": float(sys_),
        "maxrss_kib": int(maxrss),  # Linux reports ru_maxrss in KiB.
        "exit": int(code),
    }


# ---------------------------------------------------------------------------
# Environment facts


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def probe(python: str, code: str) -> str | None:
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True,
                             timeout=120, env=child_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_describe(src: str) -> dict:
    """Commit of the checkout `src` (the directory memhound is taken from)
    belongs to, and whether that directory differs from it."""
    def git(*a):
        try:
            r = subprocess.run(["git", "-C", src, *a], capture_output=True, text=True,
                               timeout=30)
            return r.stdout.strip() if r.returncode == 0 else None
        except OSError:
            return None

    dirty = git("status", "--porcelain", "--", ".")
    return {"commit": git("rev-parse", "--short=12", "HEAD"),
            "src_modified": bool(dirty) if dirty is not None else None}


# ---------------------------------------------------------------------------
# Statistics


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def geomean(xs):
    xs = [x for x in xs if x and x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def summarize(runs: list, workloads: list, modes: list) -> dict:
    """Median wall/CPU/RSS per (workload, mode), and ratios to plain."""
    out = {}
    for w in workloads:
        out[w] = {}
        for m in modes:
            ok = [r for r in runs if r["workload"] == w and r["mode"] == m and r["exit"] == 0]
            failed = [r for r in runs if r["workload"] == w and r["mode"] == m and r["exit"] != 0]
            out[w][m] = {
                "n": len(ok),
                "failed": len(failed),
                "wall_s": median([r["wall_s"] for r in ok]),
                "cpu_s": median([r["cpu_s"] for r in ok]),
                "maxrss_kib": median([r["maxrss_kib"] for r in ok]),
                "wall_min_s": min((r["wall_s"] for r in ok), default=float("nan")),
                "wall_max_s": max((r["wall_s"] for r in ok), default=float("nan")),
            }
            stats = [r["memhound"] for r in ok if isinstance(r.get("memhound"), dict)
                     and "samples" in r["memhound"]]
            if stats:
                out[w][m]["samples"] = median([s["samples"] for s in stats])
                out[w][m]["live_bytes_est"] = median([s["live_bytes"] for s in stats])
                out[w][m]["peak_bytes_est"] = median([s["peak_bytes"] for s in stats])
            tool_file = [r["tool_file_bytes"] for r in ok if r.get("tool_file_bytes") is not None]
            if tool_file:
                out[w][m]["tool_file_bytes"] = median(tool_file)
            icount = [r["instructions"] for r in ok if r.get("instructions")]
            if icount:
                out[w][m]["instructions"] = median(icount)
        base = out[w].get("plain")
        for m in modes:
            s = out[w][m]
            if base and base["n"] and s["n"]:
                s["wall_ratio"] = s["wall_s"] / base["wall_s"]
                s["cpu_ratio"] = s["cpu_s"] / base["cpu_s"]
                s["rss_ratio"] = s["maxrss_kib"] / base["maxrss_kib"]
                s["rss_delta_mib"] = (s["maxrss_kib"] - base["maxrss_kib"]) / 1024
                s["wall_min_ratio"] = s["wall_min_s"] / base["wall_min_s"]
            else:
                s["wall_ratio"] = s["cpu_ratio"] = s["rss_ratio"] = float("nan")
                s["rss_delta_mib"] = s["wall_min_ratio"] = float("nan")
            if base and base.get("instructions") and s.get("instructions"):
                s["icount_ratio"] = s["instructions"] / base["instructions"]
            else:
                s["icount_ratio"] = float("nan")
    return out


# ---------------------------------------------------------------------------
# Markdown


def fmt_git(g) -> str:
    if not g or not g.get("commit"):
        return "(commit unknown)"
    return f"at {g['commit']}" + (" with local changes" if g.get("src_modified") else "")


def fmt_load(load) -> str:
    if not load:
        return "unknown"
    return f"min {load['min']:.2f}, median {load['median']:.2f}, max {load['max']:.2f}"


def fmt_ratio(x) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.2f}×"


def ratio_table(summary, workloads, modes, key, title) -> list:
    cols = [m for m in modes if m != "plain"]
    lines = [f"**{title}**", "", "| workload | " + " | ".join(cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for w in workloads:
        cells = []
        for m in cols:
            s = summary[w][m]
            if s["n"] == 0:
                cells.append("failed" if s["failed"] else "—")
            else:
                cells.append(fmt_ratio(s[key]))
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    gm = [fmt_ratio(geomean([summary[w][m][key] for w in workloads])) for m in cols]
    lines.append("| **geometric mean** | " + " | ".join(f"**{g}**" for g in gm) + " |")
    return lines


def baseline_table(summary, workloads, sizes) -> list:
    lines = ["**plain python, medians** (the denominators; spread = (max − min) / median "
             "of plain's wall times, a rough noise gauge)", "",
             "| workload | argument | wall s | spread | CPU s | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|"]
    for w in workloads:
        s = summary[w].get("plain")
        if not s or not s["n"]:
            lines.append(f"| {w} | {sizes[w]} | — | — | — | — |")
            continue
        spread = (s["wall_max_s"] - s["wall_min_s"]) / s["wall_s"]
        lines.append(f"| {w} | {sizes[w]} | {s['wall_s']:.3g} | {100 * spread:.1f}% | "
                     f"{s['cpu_s']:.3g} | {s['maxrss_kib'] / 1024:.1f} |")
    return lines


def startup_table(summary, modes) -> list:
    """Fixed cost: what each tool adds to an empty script."""
    cols = [m for m in modes if m != "plain"]
    base = summary[STARTUP]["plain"]
    lines = ["**Fixed cost** (the empty `startup` script; plain: "
             f"{1000 * base['wall_s']:.0f} ms, {base['maxrss_kib'] / 1024:.1f} MiB), median",
             "", "| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    cells_t, cells_r = [], []
    for m in cols:
        s = summary[STARTUP][m]
        ok = s["n"] and base["n"]
        cells_t.append(f"{1000 * (s['wall_s'] - base['wall_s']):+.0f}" if ok else "—")
        cells_r.append(f"{s['rss_delta_mib']:+.1f}" if ok else "—")
    lines.append("| wall ms added | " + " | ".join(cells_t) + " |")
    lines.append("| peak RSS MiB added | " + " | ".join(cells_r) + " |")
    return lines


def rss_delta_table(summary, workloads, modes) -> list:
    cols = [m for m in modes if m != "plain"]
    lines = ["**Peak RSS, MiB added over plain** (median)", "",
             "| workload | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for w in workloads:
        cells = []
        for m in cols:
            d = summary[w][m]["rss_delta_mib"]
            cells.append("—" if not math.isfinite(d) else f"{d:+.1f}")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return lines


def sweep_table(summary, workloads, modes, default_rate=None) -> list:
    """Per memhound rate: overhead next to what the samples buy."""
    mh = [m for m in modes if is_memhound(m)]
    if not mh:
        return []
    lines = ["**memhound by sampling rate**: wall, CPU and peak-RSS ratios to plain; samples "
             "taken; the end-of-run live-heap estimate against exact mode's count (relative "
             "error of the medians); and, from the sampling formula, the relative standard "
             "error expected for a site that allocates 1 MiB in small blocks, sqrt(R / 1 MiB)",
             "",
             "| workload | sample_bytes | wall | CPU | peak RSS | samples | live estimate "
             "| exact live | error | expected RSE, 1 MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w in workloads:
        exact = summary[w].get("memhound_exact", {}).get("live_bytes_est")
        for m in mh:
            s = summary[w][m]
            rate = mode_sample_bytes(m)
            rate_s = str(rate) if rate is not None else f"default ({default_rate or '?'})"
            if rate is None:
                rate = default_rate
            samples = s.get("samples")
            est = s.get("live_bytes_est")
            err = ("—" if est is None or not exact else f"{100 * abs(est - exact) / exact:.1f}%")
            rse = "—" if rate is None else f"{100 * math.sqrt(rate / 2**20):.0f}%"
            lines.append(
                f"| {w} | {rate_s} | {fmt_ratio(s['wall_ratio'])} | "
                f"{fmt_ratio(s['cpu_ratio'])} | {fmt_ratio(s['rss_ratio'])} | "
                f"{'—' if samples is None else f'{samples:,.0f}'} | "
                f"{'—' if est is None else f'{est / 2**20:,.2f} MiB'} | "
                f"{'—' if not exact else f'{exact / 2**20:,.2f} MiB'} | {err} | {rse} |")
    return lines


def render(meta, summary, workloads, modes, sizes, notes) -> str:
    if meta.get("icount"):
        return render_icount(meta, summary, workloads, modes, sizes, notes)
    lines = [f"## memhound overhead, {meta['date']}", "",
             f"- Python {meta['python']} ({meta['implementation']}), memhound "
             f"{meta.get('memhound_version') or '?'} {fmt_git(meta['git'])} "
             f"(_core sha256 {meta.get('memhound_core_sha256')}…), default "
             f"sample_bytes={meta.get('memhound_default_sample_bytes')}; "
             f"memray {meta.get('memray_version') or 'not installed'}",
             f"- {meta['cpu']}, {meta['cpus']} CPUs, {meta['system']}",
             f"- {meta['repeat']} repetition{'s' if meta['repeat'] != 1 else ''}, modes "
             f"round-robin, medians; 1-minute load average during the runs: "
             f"{fmt_load(meta.get('load1'))}",
             f"- command: `{meta['command']}`", ""]
    for n in notes:
        lines.append(f"> {n}")
    if notes:
        lines.append("")
    lines += ratio_table(summary, workloads, modes, "wall_ratio",
                         "Wall time, ratio to plain python (median)")
    lines.append("")
    lines += ratio_table(summary, workloads, modes, "rss_ratio",
                         "Peak RSS, ratio to plain python (median)")
    lines.append("")
    lines += rss_delta_table(summary, workloads, modes)
    lines.append("")
    lines += ratio_table(summary, workloads, modes, "cpu_ratio",
                         "CPU time (user + sys), ratio to plain python (median)")
    lines.append("")
    lines += ratio_table(summary, workloads, modes, "wall_min_ratio",
                         "Wall time, ratio of the fastest runs (min over repetitions: "
                         "less sensitive to other load on the machine)")
    lines.append("")
    lines += baseline_table(summary, workloads, sizes)
    if STARTUP in workloads:
        lines.append("")
        lines += startup_table(summary, modes)
    sw = sweep_table(summary, workloads, modes, meta.get("memhound_default_sample_bytes"))
    if sw:
        lines.append("")
        lines += sw
    return "\n".join(lines) + "\n"


def render_icount(meta, summary, workloads, modes, sizes, notes) -> str:
    lines = [f"## memhound overhead in instructions executed, {meta['date']}", "",
             f"- Python {meta['python']} ({meta['implementation']}), memhound "
             f"{meta.get('memhound_version') or '?'} {fmt_git(meta['git'])} "
             f"(_core sha256 {meta.get('memhound_core_sha256')}…), default "
             f"sample_bytes={meta.get('memhound_default_sample_bytes')}",
             "- instructions counted by valgrind's cachegrind (`--cache-sim=no`), "
             "PYTHONHASHSEED=0; the counts do not depend on other load on the machine",
             f"- command: `{meta['command']}`", ""]
    for n in notes:
        lines.append(f"> {n}")
    if notes:
        lines.append("")
    lines += ratio_table(summary, workloads, modes, "icount_ratio",
                         "Instructions executed, ratio to plain python")
    lines += ["", "**plain python, instructions executed**", "",
              "| workload | argument | instructions |", "|---|---:|---:|"]
    for w in workloads:
        n = summary[w].get("plain", {}).get("instructions")
        lines.append(f"| {w} | {sizes[w]} | {'—' if not n else f'{n / 1e9:.2f} G'} |")
    mh = [m for m in modes if is_memhound(m)]
    if mh:
        default_rate = meta.get("memhound_default_sample_bytes")
        lines += ["", "**memhound by sampling rate, instructions**", "",
                  "| workload | sample_bytes | instructions ratio | samples |",
                  "|---|---:|---:|---:|"]
        for w in workloads:
            for m in mh:
                s = summary[w][m]
                rate = mode_sample_bytes(m)
                rate_s = str(rate) if rate is not None else f"default ({default_rate or '?'})"
                samples = s.get("samples")
                lines.append(f"| {w} | {rate_s} | {fmt_ratio(s['icount_ratio'])} | "
                             f"{'—' if samples is None else f'{samples:,.0f}'} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Main


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Measure memhound's overhead against plain python (see module doc).")
    p.add_argument("--workloads-dir", default=DEFAULT_WORKLOADS_DIR,
                   help="directory holding the workload scripts "
                        "(default: ../shared/bench/workloads from the repository root)")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help="comma-separated workloads (default: all five; `startup`, an empty "
                        "script, measures fixed costs)")
    p.add_argument("--modes", default=None,
                   help=f"comma-separated modes from {','.join(MAIN_MODES + EXTRA_MODES)} "
                        "(plain is always added); default: all, or with --sample-bytes: "
                        "plain,memhound_exact plus the sweep")
    p.add_argument("--sample-bytes", default=None, metavar="LIST",
                   help="comma-separated memhound sampling rates to sweep, "
                        "e.g. 4096,16384,65536,262144,1048576")
    p.add_argument("--size", action="append", default=[], metavar="WORKLOAD=N",
                   help="override a workload's size argument (repeatable)")
    p.add_argument("--repeat", type=int, default=None,
                   help="repetitions (default 5; 2 with --quick, 1 with --icount)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed plain runs of each workload first (default 1), plus one tiny "
                        "run per mode so that every tool's bytecode caches exist")
    p.add_argument("--quick", action="store_true", help="smoke run with tiny sizes")
    p.add_argument("--memhound-src", default=os.path.join(REPO, "src"), metavar="DIR",
                   help="directory holding the built memhound package to measure "
                        "(default: this repository's src/)")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter to benchmark (default: the one running this script)")
    p.add_argument("--icount", action="store_true",
                   help="count instructions under valgrind (cachegrind) instead of timing; "
                        "deterministic, so --repeat defaults to 1; memray modes are left out")
    p.add_argument("--no-stats", action="store_true",
                   help="do not ask the memhound runner for its totals at exit")
    p.add_argument("--out", default=DEFAULT_RESULTS_DIR,
                   help="directory for the .md and .json results (default benchmarks/results)")
    p.add_argument("--tag", default=None, help="name for the result files (default: a timestamp)")
    p.add_argument("--render", default=None, metavar="JSON",
                   help="run nothing: print the markdown report of an earlier run's JSON")
    return p.parse_args(argv)


def split_list(s):
    return [x.strip() for x in s.split(",") if x.strip()]


def render_saved(path: str) -> int:
    with open(path) as fh:
        saved = json.load(fh)
    meta = saved["meta"]
    summary = summarize(saved["runs"], meta["workloads"], meta["modes"])
    print(render(meta, summary, meta["workloads"], meta["modes"], meta["sizes"],
                 saved.get("notes", [])), end="")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _interrupt)
    a = parse_args(argv)
    if a.render:
        return render_saved(a.render)
    python = os.path.abspath(shutil.which(a.python) or a.python)
    workloads_dir = os.path.abspath(a.workloads_dir)
    workloads = split_list(a.workloads)
    for w in workloads:
        if w == STARTUP:
            continue
        if w not in WORKLOADS:
            sys.exit(f"run.py: unknown workload {w!r} (known: {', '.join(WORKLOADS)}, "
                     f"and {STARTUP})")
        if not os.path.isfile(os.path.join(workloads_dir, w + ".py")):
            sys.exit(f"run.py: {w}.py not found in {a.workloads_dir} (see --workloads-dir)")
    sizes = {w: WORKLOADS[w][1 if a.quick else 0] if w != STARTUP else 0 for w in workloads}
    for item in a.size:
        name, eq, val = item.partition("=")
        if not eq or name not in sizes:
            sys.exit(f"run.py: --size wants WORKLOAD=N for a selected workload, got {item!r}")
        sizes[name] = int(val)
    repeat = a.repeat if a.repeat is not None else (1 if a.icount else 2 if a.quick else 5)
    if repeat < 1:
        sys.exit("run.py: --repeat must be >= 1")

    rates = [int(x) for x in split_list(a.sample_bytes)] if a.sample_bytes else []
    if any(r < 1 for r in rates):
        sys.exit("run.py: --sample-bytes rates must be >= 1")
    if a.modes:
        modes = split_list(a.modes)
        for m in modes:
            if m not in MAIN_MODES + EXTRA_MODES:
                sys.exit(f"run.py: unknown mode {m!r} "
                         f"(known: {', '.join(MAIN_MODES + EXTRA_MODES)})")
    elif rates:
        modes = ["plain", "memhound_exact"]
    elif a.icount:
        modes = ["plain", "memhound", "memhound_exact"]
    else:
        modes = list(MAIN_MODES)
    if "plain" not in modes:
        modes.insert(0, "plain")
    modes += [sweep_mode(r) for r in rates if sweep_mode(r) not in modes]

    notes = []
    env = child_env(a.icount)
    if a.icount:
        if shutil.which("valgrind") is None:
            sys.exit("run.py: --icount needs valgrind on PATH")
        if any(m in MEMRAY_MODES for m in modes):
            notes.append("memray modes are left out of instruction counts.")
            modes = [m for m in modes if m not in MEMRAY_MODES]
    memray_version = probe(python, "import memray, importlib.metadata as m; "
                                   "print(m.version('memray'))")
    if memray_version is None and any(m in MEMRAY_MODES for m in modes):
        dropped = [m for m in modes if m in MEMRAY_MODES]
        modes = [m for m in modes if m not in MEMRAY_MODES]
        notes.append(f"memray is not importable by this interpreter: columns "
                     f"{', '.join(dropped)} skipped (pip install memray to add them).")
    tmp = tempfile.mkdtemp(prefix="memhound-bench-")
    mh_probe = None
    mh_src = None
    if any(uses_runner(m) for m in modes):
        # Run from a copy of the package taken now: a rebuild of src/ during the
        # run then cannot mix two builds in one table.
        mh_src = os.path.join(tmp, "src")
        shutil.copytree(os.path.join(a.memhound_src, "memhound"), os.path.join(mh_src, "memhound"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        # Load memhound from bytecode, as an installed package does, even where
        # PYTHONDONTWRITEBYTECODE would make every run compile it from source.
        subprocess.run([python, "-m", "compileall", "-q", mh_src], check=True,
                       env=child_env(), stdout=subprocess.DEVNULL)
        mh_probe = probe(python, (
            f"import sys, hashlib; sys.path.insert(0, {mh_src!r}); import memhound; "
            "from memhound import _core; "
            "print(memhound.__version__, memhound.DEFAULT_SAMPLE_BYTES, "
            "hashlib.sha256(open(_core.__file__, 'rb').read()).hexdigest()[:16])"))
        if mh_probe is None:
            shutil.rmtree(tmp, ignore_errors=True)
            sys.exit("run.py: memhound does not import with this interpreter; build it first "
                     "(python setup.py build_ext --inplace)")
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "python": probe(python, "import platform; print(platform.python_version())"),
        "implementation": probe(python, "import platform; print(platform.python_implementation())"),
        "memhound_version": mh_probe.split()[0] if mh_probe else None,
        "memhound_default_sample_bytes": int(mh_probe.split()[1]) if mh_probe else None,
        "memhound_core_sha256": mh_probe.split()[2] if mh_probe else None,
        "memray_version": memray_version,
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "git": git_describe(os.path.abspath(a.memhound_src)),
        "repeat": repeat,
        "quick": a.quick,
        "icount": a.icount,
        "sizes": sizes,
        "modes": modes,
        "workloads": workloads,
        "command": "python benchmarks/run.py " + " ".join(
            x for x in (argv if argv is not None else sys.argv[1:])),
        "loadavg_before": loadavg(),
    }

    errpath = os.path.join(tmp, "stderr.txt")
    stats_path = os.path.join(tmp, "stats.json")
    runs = []
    failures = []

    startup_script = os.path.join(tmp, STARTUP + ".py")
    with open(startup_script, "w") as fh:
        fh.write("# empty: measures start-up and exit only\n")

    def one(w, m, size, timed, rep):
        script = (startup_script if w == STARTUP else os.path.join(workloads_dir, w + ".py"))
        want_stats = is_memhound(m) and not a.no_stats
        if want_stats and os.path.exists(stats_path):
            os.unlink(stats_path)
        argv_, tool_file = command(m, python, script, [str(size)], tmp,
                                   stats_path if want_stats else None, mh_src)
        if a.icount:
            argv_ = [shutil.which("valgrind"), *VALGRIND[1:], *argv_]
        load1 = loadavg()
        r = run_child(argv_, env, tmp, errpath)
        if a.icount:
            r["instructions"] = instructions_from(errpath)
        r.update(workload=w, mode=m, size=size, rep=rep, load1=load1[0] if load1 else None)
        if tool_file and os.path.exists(tool_file):
            r["tool_file_bytes"] = os.path.getsize(tool_file)
            os.unlink(tool_file)
        if want_stats and os.path.exists(stats_path):
            import ast

            with open(stats_path) as fh:
                r["memhound"] = ast.literal_eval(fh.read())
        if r["exit"] != 0:
            with open(errpath, errors="replace") as fh:
                tail = fh.read()[-2000:]
            r["stderr_tail"] = tail
            failures.append(r)
            print(f"    FAILED {w} {m} (exit {r['exit']}): {tail.strip()[-300:]}",
                  file=sys.stderr)
        if timed:
            runs.append(r)
        return r

    try:
        if a.warmup > 0 and not a.icount:
            print("warm-up ...", file=sys.stderr)
            for m in modes:
                one(workloads[0], m, sizes[workloads[0]] if workloads[0] == STARTUP
                    else WORKLOADS[workloads[0]][1], False, -1)
            for _ in range(a.warmup):
                for w in workloads:
                    one(w, "plain", sizes[w], False, -1)
        total = repeat * len(workloads) * len(modes)
        done = 0
        started = time.perf_counter()
        for rep in range(repeat):
            for w in workloads:
                k = rep % len(modes)
                order = modes[k:] + modes[:k]  # rotate so no mode always runs first
                for m in order:
                    r = one(w, m, sizes[w], True, rep)
                    done += 1
                    el = time.perf_counter() - started
                    ic = (f" {r['instructions'] / 1e9:7.2f} G instr"
                          if r.get("instructions") else "")
                    print(f"[{done}/{total}] rep {rep + 1} {w:12s} {m:16s} "
                          f"{r['wall_s']:7.2f} s {r['maxrss_kib'] / 1024:8.1f} MiB{ic}"
                          f"   (elapsed {el / 60:.1f} min)", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta["loadavg_after"] = loadavg()
    loads = [r["load1"] for r in runs if r.get("load1") is not None]
    if loads:
        meta["load1"] = {"min": min(loads), "median": median(loads), "max": max(loads)}
    if failures:
        notes.append(f"{len(failures)} run(s) failed; see the JSON's `failures`.")

    summary = summarize(runs, workloads, modes)
    md = render(meta, summary, workloads, modes, sizes, notes)
    os.makedirs(a.out, exist_ok=True)
    tag = a.tag or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    md_path = os.path.join(a.out, f"{tag}.md")
    json_path = os.path.join(a.out, f"{tag}.json")
    with open(md_path, "w") as fh:
        fh.write(md)
    with open(json_path, "w") as fh:
        json.dump({"meta": meta, "notes": notes, "summary": summary, "runs": runs,
                   "failures": failures}, fh, indent=1)
    print(md)
    print(f"wrote {os.path.relpath(md_path)} and {os.path.relpath(json_path)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
