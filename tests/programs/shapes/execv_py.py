# A wrapper that replaces itself with another python program, which exits 5.
import os
import sys

print("before exec", flush=True)
os.execv(sys.executable, [sys.executable, "-c", "import sys; print('exec child'); sys.exit(5)"])
