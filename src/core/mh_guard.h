/* mh_guard: memhound's per-thread state: the reentrancy guard and the sampler's
 * countdown. One small initial-exec TLS block, so reading it costs one load.
 * No Python.h. */
#ifndef MH_GUARD_H
#define MH_GUARD_H

#include <stdint.h>

typedef struct {
    int64_t countdown; /* Bytes left before the next sample point. Thread-local. */
    uint64_t rng;      /* xorshift state for the exponential draws. Thread-local. */
    uint32_t gen;      /* Tracking generation the countdown belongs to. Thread-local. */
    uint32_t busy;     /* >0 while memhound itself runs on this thread: hooks pass
                          straight through. Thread-local. */
    uint32_t ignored;  /* Non-zero: this thread's allocations are never sampled
                          (its frees are still seen). Thread-local. */
} mh_tls_t;

extern _Thread_local mh_tls_t mh_tls __attribute__((tls_model("initial-exec")));

#endif
