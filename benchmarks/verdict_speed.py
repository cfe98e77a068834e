"""How long the leak verdict takes on the data of a long run.

A 1-hour run under `memhound run` ends with 64-128 epochs (they merge as the run
grows). This builds a snapshot of that shape — N stacks, each with a row in every
epoch (the dense worst case), a few of them leaking — and times building the
Snapshot and analyze() over it, as a ratio-free wall time (the verdict runs once,
after the program).

Usage: python benchmarks/verdict_speed.py [--stacks N] [--epochs E] [--repeat K]
"""
import argparse
import random
import statistics
import time

from memhound.analysis import analyze
from memhound.snapshot import Snapshot, _pack_rows


def fake_raw(stacks: int, epochs: int, leaking: int, seed: int = 1):
    rng = random.Random(seed)
    sites, cohorts, stack_list = [], [], [None]
    for sid in range(1, stacks + 1):
        depth = 12
        frames = tuple((f"/app/mod{sid % 97}.py", 10 + (sid + d) % 400, f"func{(sid + d) % 300}")
                       for d in range(depth))
        stack_list.append((frames, False))
        leak = sid <= leaking
        for e in range(epochs):
            a = rng.uniform(1e3, 1e5)
            kept = a * 0.1 if leak else 0.0
            sites.append((sid, e, a, a / 64, a - kept, (a - kept) / 64, 10, 9))
            if kept:
                cohorts.append((sid, e, kept, kept / 64, kept * 4096.0, 64.0, 1, 0))
    totals = {"live_bytes": 1e8, "live_count": 1e6, "peak_bytes": 2e8, "samples": 10**6,
              "frees": 10**6, "dropped": 0, "unpinned": 0, "epoch": epochs - 1,
              "sample_bytes": 4096, "max_frames": 128, "live_entries": 10**5,
              "stacks": stacks, "merges": 5, "stride": 32, "elapsed": 3600.0}
    starts = [e * 3600.0 / epochs for e in range(epochs)]
    # The core hands rows over packed; pack them once, outside the timing.
    return (totals, _pack_rows(sites), _pack_rows(cohorts), stack_list, starts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stacks", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=128)
    ap.add_argument("--leaking", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    raw = fake_raw(args.stacks, args.epochs, args.leaking)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        snap = Snapshot(raw)
        v = analyze(snap)
        times.append(time.perf_counter() - t0)
    print(f"{args.stacks} stacks x {args.epochs} epochs ({len(raw[1]) // 48} site rows): "
          f"median {statistics.median(times):.2f} s; leaking={v.leaking}, {len(v.leaks)} leak sites")


if __name__ == "__main__":
    main()
