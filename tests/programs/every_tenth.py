"""Every request builds a response and drops it, but every tenth one is also
kept in a 'slow requests' list that nobody trims."""
import sys
import time

_slow_requests = []


def handle(i):
    body = [("header-%d" % k, "v" * 30) for k in range(120)]
    if i % 10 == 0:
        _slow_requests.append(bytearray(24000))  # LEAK
    return len(body)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 360
    done = 0
    for i in range(n):
        done += handle(i)
        time.sleep(0.004)
    print(f"handled {n} requests ({done})")


if __name__ == "__main__":
    main()
