"""The main thread starts a (non-daemon) worker and returns at once (with
``exit`` as argv[1]: ends with sys.exit(0), as ``sys.exit(main())`` does); the
worker then runs for about 1.5 s, keeping every batch it builds. Python waits
for the worker before the program ends, so its leak is part of the run."""
import sys
import threading
import time

_batches = []


def worker(n):
    for i in range(n):
        rows = [(k, k * i) for k in range(100)]
        _batches.append(bytearray(16000 + len(rows)))  # LEAK
        time.sleep(0.005)
    print(f"worker kept {len(_batches)} batches")


def main():
    threading.Thread(target=worker, args=(300,), name="batcher").start()
    print("main thread done")


if __name__ == "__main__":
    main()
    if sys.argv[1:] == ["exit"]:
        sys.exit(0)
