# Module-level code that looks at its own stack (logging helpers, warnings).
import inspect
import sys
import traceback
import warnings

print("stack depth at module level:", len(inspect.stack()))
traceback.print_stack(file=sys.stdout)
try:
    sys._getframe(1)
    print("module has a caller frame")
except ValueError:
    print("no caller frame")
warnings.warn("module-level warning with stacklevel=2", stacklevel=2)
