# A program killed by a signal without a handler (SIGTERM: as `kill`, `timeout`,
# `docker stop` do; SIGINT: Ctrl-C, so KeyboardInterrupt).
import os
import signal
import sys

sig = getattr(signal, sys.argv[1])
print("sending", sys.argv[1], flush=True)
os.kill(os.getpid(), sig)
for _ in range(1000):           # the signal is handled at the latest here
    sum(range(100))
print("not reached")
