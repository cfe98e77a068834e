# A program with its own sys.excepthook (as Sentry, rich.traceback, IPython use).
import sys


def hook(tp, val, tb):
    print(f"CUSTOM HOOK: {tp.__name__}: {val}", file=sys.stderr)


sys.excepthook = hook
print("working")
raise RuntimeError("handled by custom hook")
