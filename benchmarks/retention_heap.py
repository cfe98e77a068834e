"""Time and memory of the retention analysis on a heap of N objects (default 1
million): dicts, lists, str and int in a realistic nesting, one leaking site
whose live samples are mapped to objects and traced back to their root.
Usage: python benchmarks/retention_heap.py [N]"""
import resource
import sys
import time

import memhound
from memhound.analysis.retention import analyze_retention

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
_store = {}


def build(n):
    # ~5 objects per record: a dict, a list, two str values, one int.
    for i in range(n // 5):
        _store[i] = {"name": "user%d" % i, "tags": ["t%d" % (i % 97)], "n": i * 1000003}  # SITE


memhound.start(sample_bytes=4096)
build(N)
snap = memhound.snapshot()
site = next(s.traceback[0] for s in snap.statistics("lineno") if s.traceback[0].function == "build")
ids = snap.site_stack_ids(site)
from memhound import _core  # noqa: E402
from array import array  # noqa: E402

samples = _core.live_samples(array("I", ids).tobytes())
memhound.stop()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
res = analyze_retention([(site, ids)], samples)
dt = time.perf_counter() - t0
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = res.sites[0]
print(f"python {sys.version.split()[0]}: {res.nodes} objects, {res.edges} references, "
      f"{dt:.2f} s, peak RSS +{(rss1 - rss0) / 1024:.0f} MB; "
      f"{r.matched}/{r.samples} samples matched; chain: {r.retained_by}")
