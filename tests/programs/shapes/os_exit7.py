# A worker that ends with os._exit (no atexit, no flush of its own).
import os

kept = [bytearray(100) for _ in range(1000)]
print("exiting via os._exit(7)", flush=True)
os._exit(7)
