# What a script sees of itself: __file__, argv, its module, __builtins__, __package__.
import sys

print("__file__", __file__)
print("argv", sys.argv)
print("__name__", __name__)
print("path0", sys.path[0])
print("spec", __spec__, "package", __package__)
print("package is None", __package__ is None)
print("main is me", sys.modules["__main__"].__dict__ is globals())
print("builtins", type(__builtins__).__name__)
__builtins__.print("printed through __builtins__.print")
if __name__ == "__main__":
    print("main guard ran")
