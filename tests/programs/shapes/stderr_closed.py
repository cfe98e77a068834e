# A daemon-like program that closes its stderr.
import sys

print("closing stderr like a daemon", flush=True)
sys.stderr.close()
