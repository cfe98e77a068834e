"""A job that keeps every record it builds, for the capture tests: it runs for
N iterations, or until it is killed with "forever". With "fork", a child
process leaks at its own line for about a second while the parent goes on."""
import os
import sys
import time

_records = []
_child_records = []


def build(i):
    scratch = [str(k) * 20 for k in range(200)]  # freed at once
    _records.append(b"r" * 60000 + str(i).encode() + scratch[0].encode())  # LEAK
    return len(scratch)


def child_work(i):
    _child_records.append(bytearray(30000))  # CHILD LEAK


def main():
    arg = sys.argv[1] if len(sys.argv) > 1 else "100"
    if arg == "fork":
        pid = os.fork()
        if pid == 0:
            t0 = time.monotonic()
            i = 0
            while time.monotonic() - t0 < 1.6:
                child_work(i)
                i += 1
                time.sleep(0.005)
            sys.exit(0)
        for i in range(120):
            build(i)
            time.sleep(0.01)
        os.waitpid(pid, 0)
        print("parent done")
        return
    n = -1 if arg == "forever" else int(arg)
    i = 0
    while i != n:
        build(i)
        i += 1
        time.sleep(0.005)
    print(f"built {n} records")


if __name__ == "__main__":
    main()
