"""A producer hands events to a worker thread; the worker keeps a copy of every
event it sees in a module-level journal."""
import queue
import sys
import threading
import time

_journal = []


def worker(inbox):
    while True:
        event = inbox.get()
        if event is None:
            return
        _journal.append(event.encode() * 50)  # LEAK


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 320
    inbox = queue.Queue()
    t = threading.Thread(target=worker, args=(inbox,), name="journal-worker")
    t.start()
    for i in range(n):
        scratch = [str(k * i) for k in range(300)]
        inbox.put(f"event {i:05d} {len(scratch):04d} " + "e" * 80)
        time.sleep(0.004)
    inbox.put(None)
    t.join()
    print(f"journal has {len(_journal)} entries")


if __name__ == "__main__":
    main()
