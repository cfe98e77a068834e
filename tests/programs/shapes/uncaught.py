# A job that prints progress, then fails with a chained exception.
def lookup(d):
    return d["missing"]


def run():
    try:
        lookup({})
    except KeyError as e:
        raise ValueError("wrapped failure") from e


print("about to fail")
run()
