import os
import time

_cache = []
t = time.monotonic()
while time.monotonic() - t < 0.8:
    _cache.append(bytearray(4000))     # the child's leak
    time.sleep(0.0005)
print(f"child pid={os.getpid()} kept {len(_cache) > 100}")
