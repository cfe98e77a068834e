"""Marks its own units of work with memhound.next_epoch() (for --manual-epochs)
and keeps 3000 bytes per unit. Runs without memhound too."""
import sys

import memhound

_results = []


def unit(i):
    scratch = {k: str(k * i) for k in range(150)}
    _results.append(bytes(3000))  # LEAK
    return len(scratch)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    total = 0
    for i in range(n):
        total += unit(i)
        if memhound.is_tracking():
            memhound.next_epoch()
    print(f"ran {n} units ({total})")


if __name__ == "__main__":
    main()
