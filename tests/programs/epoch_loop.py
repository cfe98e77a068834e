"""A request loop for --epoch-on: ``handle`` is called once per request and
calls ``Worker.step``, which keeps 5000 bytes per request in its history."""
import sys


class Worker:
    def __init__(self):
        self.history = []

    def step(self, i):
        tokens = [f"tok{i}:{k}" for k in range(200)]
        self.history.append(bytearray(5000))  # LEAK
        return len(tokens)


_worker = Worker()


def handle(i):
    return _worker.step(i) + 1


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    total = 0
    for i in range(n):
        total += handle(i)
    print(f"handled {n} requests ({total})")


if __name__ == "__main__":
    main()
