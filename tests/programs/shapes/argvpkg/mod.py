import sys

print("module sees argv:", sys.argv)
