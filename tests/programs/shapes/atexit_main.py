# An atexit handler that reads the script's globals through __main__.
import atexit

RESULT = "computed"


def report():
    import __main__
    print("atexit sees __main__.RESULT =", getattr(__main__, "RESULT", "<missing>"))


atexit.register(report)
print("main done")
