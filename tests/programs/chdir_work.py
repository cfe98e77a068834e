"""Changes its working directory to argv[1] first thing, then does some work:
relative paths given to memhound must not follow it there."""
import os
import sys


def main():
    os.chdir(sys.argv[1])
    words = [str(k) * 3 for k in range(2000)]
    print(f"working in {os.path.basename(os.getcwd())} with {len(words)} words")


if __name__ == "__main__":
    main()
