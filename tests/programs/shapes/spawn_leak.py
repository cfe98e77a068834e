# A multiprocessing worker started with spawn that leaks.
import multiprocessing as mp
import time

_cache = []


def serve(seconds):
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        _cache.append(bytearray(4000))     # the worker's leak
        time.sleep(0.0005)


if __name__ == "__main__":
    p = mp.get_context("spawn").Process(target=serve, args=(0.8,))
    p.start()
    p.join()
    print(f"worker pid={p.pid} exit={p.exitcode}")
