# sys.exit with a bool or an int above 255, as scripts sometimes do.
import sys

arg = sys.argv[1]
print("exiting with", arg)
sys.exit(True if arg == "true" else int(arg))
