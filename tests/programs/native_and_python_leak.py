"""Leaks on two levels: 100 KB per iteration malloc'd through ctypes (outside
Python's allocators, seen only as RSS) and a small Python object kept per
iteration (seen by memhound, at the marked line)."""
import ctypes
import ctypes.util
import sys
import time

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]

_native = []
_kept = []


def step(size):
    ptr = _libc.malloc(size)
    ctypes.memset(ptr, 0x5A, size)  # touch the pages so RSS grows
    _native.append(ptr)
    _kept.append(bytearray(1024))  # LEAK


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    start = time.time()
    n = 0
    while time.time() - start < duration:
        step(100 * 1024)
        n += 1
        time.sleep(0.004)
    print("iterations>100", n > 100)


if __name__ == "__main__":
    main()
