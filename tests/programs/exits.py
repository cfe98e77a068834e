"""Ends with sys.exit(ARG) after some output: ARG from argv (default 7); a
number exits with that code, anything else exits with that message."""
import sys


def main():
    arg = sys.argv[1] if len(sys.argv) > 1 else "7"
    data = [bytes(500) for _ in range(100)]
    print(f"exiting with {arg} after {len(data)} items")
    sys.exit(int(arg) if arg.lstrip("-").isdigit() else arg)


if __name__ == "__main__":
    main()
