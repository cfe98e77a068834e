"""Does a little work, then fails with an exception of its own."""
import sys

_kept = []


def parse_record(text):
    if "!" in text:
        raise ValueError(f"bad record: {text!r}")
    return text.upper()


def main():
    for i in range(50):
        _kept.append(bytearray(1000))
        parse_record(f"record {i}")
    print("about to fail", flush=True)
    parse_record("broken!")


if __name__ == "__main__":
    main()
