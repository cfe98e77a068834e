"""Work done by mh_demo_pkg (also runnable alone with -m mh_demo_pkg.worker)."""
import sys


def crunch(n):
    return sum(len(str(k * k)) for k in range(n))


if __name__ == "__main__":
    print(f"mh_demo_pkg.worker: argv={sys.argv[1:]} crunch={crunch(50)}")
