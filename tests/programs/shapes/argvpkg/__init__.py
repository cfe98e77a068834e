import sys

print("package init sees argv:", sys.argv, flush=True)
