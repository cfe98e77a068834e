"""Every document loaded is kept in a module-level list. The memory is
allocated inside the json module, so the leak's site is the user's line that
calls json.loads, while its stack starts in the standard library."""
import json
import sys
import time

_documents = []


def load(i):
    text = json.dumps({"id": i, "tags": ["tag%d" % k for k in range(40)], "body": "b" * 3000})
    _documents.append(json.loads(text))  # LEAK
    return len(text)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    size = 0
    for i in range(n):
        size += load(i)  # CALLS
        time.sleep(0.004)
    print(f"loaded {n} documents ({size} bytes)")


if __name__ == "__main__":
    main()  # ENTRY
