"""Parent/child pairs that point at each other: only the cycle collector can
free them. ``gc_cycles.py off`` disables the collector (they pile up: a leak);
``gc_cycles.py on`` leaves it on (they are collected: no leak)."""
import gc
import sys
import time


class Node:
    def __init__(self, payload):
        self.payload = payload
        self.peer = None


def make_pairs(i, count):
    for k in range(count):
        parent = Node(bytes(1500) + bytes([k % 256]))  # CYCLE
        child = Node(None)
        parent.peer = child
        child.peer = parent


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "off"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 320
    if mode == "off":
        gc.disable()
    for i in range(n):
        make_pairs(i, 40)
        time.sleep(0.004)
    print(f"made {n * 40} pairs, gc {'enabled' if gc.isenabled() else 'disabled'}")


if __name__ == "__main__":
    main()
