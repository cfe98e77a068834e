"""A batch job that keeps every processed order in a module-level index and
never drops it: a plain leak, about 6 KB per order."""
import sys
import time

_index = {}


def _checksum(lines):
    return sum(len(line) for line in lines) % 9973


def process(order_id):
    # Temporary work that is freed before the next order.
    lines = [f"order {order_id} line {k} qty {k % 7}" for k in range(250)]
    digest = _checksum(lines)
    _index[order_id] = (digest, b"%d|" % order_id + b"o" * 6000)  # LEAK
    return digest


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 320
    total = 0
    for order_id in range(n):
        total += process(order_id)
        time.sleep(0.004)
    print(f"processed {n} orders, checksum {total}")


if __name__ == "__main__":
    main()
