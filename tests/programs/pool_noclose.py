"""A clean multiprocessing.Pool loop (fork), left for multiprocessing's exit
handler to close: nothing is kept between iterations. The pool's task-handler
thread packs tasks into tuples that die onto CPython's tuple free list."""
import multiprocessing
import sys
import time


def square(x):
    return x * x


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.6
    pool = multiprocessing.get_context("fork").Pool(2)
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        result = pool.map(square, range(100))
    print("sum", sum(result))
