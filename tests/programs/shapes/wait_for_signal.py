# A long-running service: says it is ready, then works until it is signalled.
import time

print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    sum(range(1000))
print("never signalled")
