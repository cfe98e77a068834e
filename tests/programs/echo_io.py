"""Writes known text to stdout and stderr: its arguments, some non-ASCII text,
many lines, and a last line without a newline. With ``--touch PATH`` it first
creates PATH (so a test can tell whether the program ran at all)."""
import sys


def main():
    args = sys.argv[1:]
    if args[:1] == ["--touch"]:
        with open(args[1], "w") as f:
            f.write("ran\n")
        args = args[2:]
    print("argv:", repr(args))
    print("unicode: \u00e9\u00e8 \u2713 \u6f22\u5b57")
    for i in range(200):
        print(f"line {i:03d} " + "x" * (i % 17))
    sys.stderr.write("program stderr line\n")
    sys.stdout.write("no newline at the end")


if __name__ == "__main__":
    main()
