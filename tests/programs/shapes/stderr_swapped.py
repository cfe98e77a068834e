# A framework that captures stderr into a buffer and never gives it back.
import io
import sys

sys.stderr = io.StringIO()
print("swapped stderr", file=sys.stderr)
print("stdout still works")
