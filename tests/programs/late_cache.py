"""A clean request loop whose lookup cache is filled lazily, after warm-up: the
first 3000 requests of the second phase each add an entry, the next 21000 hit
it. The cache is full after a tenth of the run and stays so: a step, not a leak.
(Phases are counted in requests, so their proportions do not depend on the
machine's speed.)"""

CACHE = {}


def render(i):
    parts = [str(i * k) for k in range(60)]
    return len(",".join(parts))


def lookup(key):
    entry = CACHE.get(key)
    if entry is None:
        entry = CACHE[key] = f"entry {key}: " + "x" * 300  # STEP
    return entry


def serve(requests, keys=0):
    for i in range(requests):
        render(i)
        if keys:
            lookup(i % keys)


serve(8000)
serve(24000, keys=3000)
print("cache", len(CACHE))
