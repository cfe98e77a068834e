"""One leak per run, held by the root kind named in argv[1]; every leaked object
carries the recognisable secret below, which no report may print.
Usage: holders.py MODE [N]. One call of step() per iteration."""
import functools
import logging
import sys
import threading

SECRET = "SECRET-7f3a9c-do-not-print"
MODE = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 150

_held = {}
_items = []


class Registry:
    seen = []


class Payload:
    def __init__(self, i):
        self.secret = SECRET + str(i)
        self.blob = [i] * 40


def make(i):
    return Payload(i)  # LEAK


def make_cache():
    cache = {}

    def remember(i):
        cache[i] = make(i)
    return remember


remember_closure = make_cache()


@functools.lru_cache(maxsize=None)
def lookup(i):
    return make(i)


def remember_default(i, acc=[]):
    acc.append(make(i))


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


log = logging.getLogger("app")
log.setLevel(logging.DEBUG)
log.propagate = False
if MODE == "logging":
    log.addHandler(ListHandler())


def step(i):
    if MODE == "global_dict":
        _held[i] = make(i)
    elif MODE == "class_attr":
        Registry.seen.append(make(i))
    elif MODE == "closure":
        remember_closure(i)
    elif MODE == "lru":
        lookup(i)
    elif MODE == "default_arg":
        remember_default(i)
    elif MODE == "logging":
        log.debug("request %s", make(i))
    elif MODE == "strings":
        _items.append((SECRET + "-%06d" % i) * 8)  # STR
        _items.append((SECRET + "-%06d" % i).encode() * 8)  # BYTES
    elif MODE == "list_items":
        _items.append([i] * 3000)  # ITEMS
    [str(k) for k in range(100)]  # churn


def worker(done, stay):
    held = []
    for i in range(N):
        held.append(make(i))
        step(i)
    done.set()
    stay.wait()


def main():
    if MODE == "thread_local":
        done, stay = threading.Event(), threading.Event()
        threading.Thread(target=worker, args=(done, stay), name="leaker", daemon=True).start()
        done.wait()
        return
    for i in range(N):
        step(i)


main()
