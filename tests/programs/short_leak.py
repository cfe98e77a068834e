"""A quick reproduction of a leak, as people write them: 2,000 calls in about
50 ms, each building some scratch data it drops and keeping a 1 KB buffer in a
module-level list (about 2 MB in all)."""
import sys

_kept = []


def handle(i):
    scratch = [str(k) * 3 for k in range(100)]
    _kept.append(bytearray(1024))  # LEAK
    return len(scratch)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    done = 0
    for i in range(n):
        done += handle(i)
    print(f"handled {n} calls ({done}), kept {len(_kept)}")


if __name__ == "__main__":
    main()
