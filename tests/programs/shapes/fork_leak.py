# A pre-fork server shape: the parent forks a worker that leaks, waits for it.
import os
import time

_cache = []


def serve(seconds):
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        _cache.append(bytearray(4000))     # the worker's leak
        time.sleep(0.0005)


pid = os.fork()
if pid == 0:
    serve(0.8)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print(f"worker pid={pid} exit={os.waitstatus_to_exitcode(status)}")
