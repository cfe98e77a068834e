"""Entry point of ``python -m mh_demo_pkg``: prints its argv and __name__."""
import sys

from mh_demo_pkg import worker


def main():
    total = worker.crunch(200)
    print(f"mh_demo_pkg main: name={__name__} argv={sys.argv[1:]} total={total}")


main()
