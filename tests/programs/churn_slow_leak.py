"""Each pass parses a few hundred KB of generated records and throws them away;
under that churn, one ~1 KB audit string per pass is kept forever."""
import sys

_audit = []


def parse(text):
    rows = []
    for line in text.splitlines():
        fields = line.split(",")
        rows.append({"id": int(fields[0]), "name": fields[1], "score": float(fields[2])})
    return rows


def one_pass(i):
    text = "\n".join(f"{k},user{k}_{i},{(k * 37 + i) % 101 / 7:.3f}" for k in range(1500))
    rows = parse(text)
    best = max(rows, key=lambda r: r["score"])
    _audit.append(f"pass {i:06d} best {best['name']:>24} " + "." * 960)  # LEAK
    return len(rows)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    total = 0
    for i in range(n):
        total += one_pass(i)
    print(f"parsed {total} rows")


if __name__ == "__main__":
    main()
