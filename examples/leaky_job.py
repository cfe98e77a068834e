"""A batch job that leaks: every store's orders stay in a module-level cache.

    memhound run examples/leaky_job.py
"""
import sys

_results_cache = {}


def load_orders(store_id, n=20_000):
    return [{"store": store_id, "order": i, "amount": (i * 37) % 1000} for i in range(n)]


def summarize(orders):
    return sum(o["amount"] for o in orders) // max(len(orders), 1)


def process_store(store_id):
    orders = load_orders(store_id)
    _results_cache[store_id] = orders  # the leak: nothing ever leaves this cache
    return summarize(orders)


def main(stores):
    return sum(process_store(s) for s in range(stores))


if __name__ == "__main__":
    print("average of averages:", main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
