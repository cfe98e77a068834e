# An interactive program: a line every 0.4 s on the terminal for about 3.6 s.
import sys
import time

print("stdout isatty", sys.stdout.isatty(), "stderr isatty", sys.stderr.isatty(),
      "stdin isatty", sys.stdin.isatty())
for i in range(9):
    time.sleep(0.4)
    print("tick", i)
print("done", file=sys.stderr)
