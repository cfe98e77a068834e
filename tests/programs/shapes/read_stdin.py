# A filter: reads numbers from stdin, one a line, prints their count and sum.
import sys

nums = [int(line) for line in sys.stdin if line.strip()]
print("count", len(nums), "sum", sum(nums))
print("stdin at EOF", sys.stdin.read() == "")
