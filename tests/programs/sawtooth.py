"""Records are buffered and written out in batches of 8: memory rises and drops
back every batch (a sawtooth). Not a leak."""
import sys
import time

_pending = []
_written = 0


def flush():
    global _written
    _written += sum(len(r) for r in _pending)
    _pending.clear()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 320
    for i in range(n):
        _pending.append(bytes(12000) + str(i).encode())  # TOOTH
        if len(_pending) >= 8:
            flush()
        time.sleep(0.004)
    flush()
    print(f"wrote {_written} bytes")


if __name__ == "__main__":
    main()
