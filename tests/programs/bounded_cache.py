"""Two bounded caches, both full early in the run and flat afterwards: a memo
over a small fixed key space, and an LRU with a few hot keys and a stream of
cold ones that keep evicting each other. Not a leak."""
import random
import sys
import time
from collections import OrderedDict

_templates = {}


class LRU:
    def __init__(self, capacity):
        self.capacity = capacity
        self._items = OrderedDict()

    def get(self, key, build):
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = build(key)
        self._items[key] = value
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value


def compile_template(name):
    if name not in _templates:
        _templates[name] = [f"<{name}:{k}>" for k in range(400)]  # MEMO
    return _templates[name]


def render_page(key):
    return ("<li>%d</li>" % key) * 300  # CACHED


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 320
    rng = random.Random(20240611)
    pages = LRU(32)
    size = 0
    for i in range(n):
        tpl = compile_template(f"t{i % 30}")
        if rng.random() < 0.5:
            key = rng.randrange(16)  # hot keys
        else:
            key = 1000 + rng.randrange(50000)  # cold keys
        page = pages.get(key, render_page)
        scratch = [tpl[k % len(tpl)] + page[:20] for k in range(200)]
        size += len(scratch)
        time.sleep(0.004)
    print(f"served {n} pages ({size})")


if __name__ == "__main__":
    main()
