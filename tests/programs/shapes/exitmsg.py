# A command-line tool that reports progress, then gives up with a message.
import sys

print("about to exit")
sys.exit("fatal: something went wrong")
