# A process pool that is never shut down: its manager thread is stopped by a
# callback registered with threading._register_atexit.
import concurrent.futures as cf


def square(x):
    return x * x


if __name__ == "__main__":
    ex = cf.ProcessPoolExecutor(max_workers=2)
    total = 0
    for _ in range(5):
        total += sum(ex.map(square, range(50)))
    print("sum", total)
