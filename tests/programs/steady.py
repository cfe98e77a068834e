"""Busy but clean: every iteration builds and drops its temporaries."""
import sys
import time


def step(i):
    words = [f"w{i}-{k}" for k in range(400)]
    table = {w: len(w) for w in words}
    return sum(table.values())


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 250
    total = 0
    for i in range(n):
        total += step(i)
        time.sleep(0.004)
    print(f"steady total {total}")


if __name__ == "__main__":
    main()
