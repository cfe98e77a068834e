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

/* The code of the one placeholder frame that stands for a stack in another
 * interpreter than the main one (never an object's address: objects are
 * aligned), and the file and function name it resolves to. */
#define MH_CODE_SUBINTERP ((uintptr_t)2)
#define MH_SUBINTERP_NAME "<subinterpreter>"

/* Walk the calling thread's Python stack into frames[0..max), innermost first.
 * Returns the depth kept; sets MH_STACK_TRUNCATED in *flags when frames were left
 * over, and *hash to the stack's hash. A thread with no Python state gives 0; a
 * thread running in a subinterpreter gives the one frame MH_CODE_SUBINTERP.
 * Incomplete frames (prologue, 3.13's __init__ shim) and C-stack entry frames
 * are never kept. */
int mh_pyframes_walk(mh_frame_t *frames, int max, unsigned *flags, uint64_t *hash);

/* Take a reference to a code object met by the walker, if this thread holds the
 * GIL of the main interpreter: returns 1 if taken (always for MH_CODE_SUBINTERP,
 * which needs none), 0 if not. Used as mh_engine_pin. */
int mh_pyframes_pin(uintptr_t code);

/* Take or drop a reference to a frame's code (a pinned code object, or
 * MH_CODE_SUBINTERP, which holds none). GIL of the main interpreter held. */
void mh_pyframes_ref(uintptr_t code);
void mh_pyframes_unref(uintptr_t code);

/* File, function (qualified name from 3.11) and line of a frame (never -1: an
 * instruction without a line gets the function's first line). The code object
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
