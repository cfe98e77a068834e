# Threads at the end of the script: a non-daemon worker still finishing, a daemon
# thread that never ends, and a thread that dies of an exception.
import threading
import time


main_done = threading.Event()


def worker():
    main_done.wait()
    time.sleep(0.2)
    print("worker done after main", flush=True)


def forever():
    while True:
        time.sleep(0.05)


def fails():
    raise ValueError("thread failed")


threading.Thread(target=worker).start()
threading.Thread(target=forever, daemon=True).start()
t = threading.Thread(target=fails, name="failing-thread")
t.start()
t.join()
print("main done", flush=True)
main_done.set()
