"""A clean service loop that loads its plugins lazily, after warm-up: asyncio,
json, decimal and a few more modules are imported one after another (and the
first three used once), then the loop goes on. Nothing is kept per iteration:
the imports' memory is made once and kept, a step, not a leak."""
import importlib
import time

PLUGINS = ("asyncio", "json", "decimal", "email.message", "http.client",
           "xml.dom.minidom", "statistics", "csv")


def handle(i):
    parts = [str(i * k) for k in range(200)]
    return len(",".join(parts))


def load(name):
    module = importlib.import_module(name)  # STEP
    return module


def run_for(seconds):
    t = time.monotonic()
    i = 0
    while time.monotonic() - t < seconds:
        handle(i)
        i += 1


run_for(0.2)
loaded = []
for name in PLUGINS:
    loaded.append(load(name))
    run_for(0.02)
asyncio, json, decimal = loaded[:3]
print(asyncio.run(asyncio.sleep(0, json.dumps({"total": str(decimal.Decimal("1.10") * 3)}))))
run_for(0.6)
