# Prints its arguments: run as a script and as `-m show_argv`.
import sys

print("argv", sys.argv[1:])
