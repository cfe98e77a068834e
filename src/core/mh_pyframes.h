/* mh_pyframes: the only reader of CPython's frame structures (3.10 to 3.13, one
 * section per version in mh_pyframes.c), and of code objects.
 *
 * The walker runs inside allocator hooks: it reads the calling thread's own
 * frames, which no other thread changes, so it needs no GIL; it allocates
 * nothing and calls nothing that can run Python code or the GC. */
#ifndef MH_PYFRAMES_H
#define MH_PYFRAMES_H

#include <Python.h>

#include "mh_stack.h"

/* Walk the calling thread's Python stack into frames[0..max), innermost first.
 * Returns the depth kept; sets MH_STACK_TRUNCATED in *flags when frames were left
 * over, and *hash to the stack's hash. A thread with no Python state gives 0. */
int mh_pyframes_walk(mh_frame_t *frames, int max, unsigned *flags, uint64_t *hash);

/* Take a reference to a code object met by the walker, if this thread holds the
 * GIL: returns 1 if taken, 0 if not. Used as mh_engine_pin. */
int mh_pyframes_pin(uintptr_t code);

/* File, function (qualified name from 3.11) and line of a frame. The code object
 * must be alive; the GIL must be held. Returns new references, or -1 with an
 * exception set. */
int mh_pyframes_resolve(uintptr_t code, int32_t instr, PyObject **filename,
                        PyObject **function, int *lineno);

/* The same without the GIL and without allocating, for the background thread:
 * file and function as UTF-8 (truncated to fit), line. The code object must be
 * pinned. Returns 0, or -1 if it cannot be read. Used as mh_describe_fn. */
int mh_pyframes_describe(uintptr_t code, int32_t instr, char *file, size_t file_cap,
                         char *function, size_t function_cap, int *lineno);

#endif
