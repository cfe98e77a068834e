# A script that uses a thread pool and never shuts it down: the interpreter's
# exit (threading._shutdown) stops the workers.
from concurrent.futures import ThreadPoolExecutor

ex = ThreadPoolExecutor(2)
print(sum(ex.map(abs, range(100))))
