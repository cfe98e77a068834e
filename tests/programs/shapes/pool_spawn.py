# A spawn pool in a `with` block, mapping over a list.
import multiprocessing as mp


def square(x):
    return x * x


if __name__ == "__main__":
    with mp.get_context("spawn").Pool(2) as pool:
        print("sum", sum(pool.map(square, range(200))))
