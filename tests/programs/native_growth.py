"""Memory malloc'd through ctypes (outside Python's allocators) and never freed,
about 100 KB per iteration, while the Python heap stays flat."""
import ctypes
import ctypes.util
import sys
import time

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]

_addresses = []  # fixed-size ring of ints: flat on the Python side


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    size = 100 * 1024
    for i in range(n):
        ptr = _libc.malloc(size)
        ctypes.memset(ptr, 0x5A, size)  # touch the pages so RSS grows
        if len(_addresses) < 16:
            _addresses.append(ptr)
        else:
            _addresses[i % 16] = ptr
        scratch = [k * i for k in range(200)]
        del scratch
        time.sleep(0.004)
    print(f"allocated {n * size} bytes natively")


if __name__ == "__main__":
    main()
