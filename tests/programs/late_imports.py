"""A clean service loop that loads its plugins lazily, after warm-up: asyncio,
json, decimal and a few more modules are imported one after another (and the
first three used once), then the loop goes on. Nothing is kept per iteration:
the imports' memory is made once and kept, a step, not a leak. (Phases are
counted in requests, so their proportions hardly depend on the machine's speed.)"""
import importlib

PLUGINS = ("asyncio", "json", "decimal", "email.message", "http.client",
           "xml.dom.minidom", "statistics", "csv")


def handle(i):
    parts = [str(i * k) for k in range(200)]
    return len(",".join(parts))


def load(name):
    module = importlib.import_module(name)  # STEP
    return module


def serve(requests):
    for i in range(requests):
        handle(i)


serve(1200)
loaded = []
for name in PLUGINS:
    loaded.append(load(name))
    serve(120)
asyncio, json, decimal = loaded[:3]
print(asyncio.run(asyncio.sleep(0, json.dumps({"total": str(decimal.Decimal("1.10") * 3)}))))
serve(4000)
