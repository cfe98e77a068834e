"""Clean: thousands of distinct call stacks (generated functions), each call's
allocations freed at once. Nothing is kept, but memhound's own tables (a row per
stack and epoch) and its capture grow while it runs."""
import sys
import time

DURATION = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
FUNCTIONS = 3000

source = "".join(f"def f{i}(n):\n    return [bytearray(64) for _ in range(n)]\n"
                 for i in range(FUNCTIONS))
namespace = {}
exec(compile(source, "generated_functions.py", "exec"), namespace)
functions = [namespace[f"f{i}"] for i in range(FUNCTIONS)]

start = time.time()
passes = 0
while time.time() - start < DURATION:
    for f in functions:
        x = f(4)
        del x
    passes += 1
print("passes>2", passes > 2)
