/* mh_sample: Poisson byte sampler.
 *
 * Every byte allocated is a sample point with probability 1/R, independently,
 * so the gaps between sample points are exponential with mean R bytes (as in
 * tcmalloc, jemalloc's prof_sample_new_event_wait and Go's MemProfileRate). A
 * thread keeps a countdown to its next point; an allocation of `size` bytes that
 * takes it below zero holds at least one point and is sampled. That happens with
 * probability p(size) = 1 - exp(-size/R), so giving the sample the weight
 * 1/p(size) makes every estimate a Horvitz-Thompson sum: unbiased for each
 * allocation, whatever its size. After a sample the countdown is redrawn: by the
 * memorylessness of the exponential, the gap from the end of the allocation to
 * the next point is again Exp(R).
 *
 * R == 1 is exact mode: every allocation is sampled with weight 1.
 * No Python.h. */
#ifndef MH_SAMPLE_H
#define MH_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

#include "mh_guard.h"

/* The tracking generation: 0 while memhound is not tracking, else a number that
 * changes on every start(), so per-thread countdowns from an earlier run are
 * redrawn. Written under tables_lock, read anywhere. */
extern _Atomic uint32_t mh_sample_gen;

/* Mean gap R between sample points, in bytes. Set once before hooks go live. */
extern int64_t mh_sample_bytes;

/* Configure the sampler for a new tracking run: mean gap R (>= 1) and a seed
 * (0 = from the clock). Returns the new generation. Caller holds tables_lock. */
uint32_t mh_sample_configure_locked(int64_t sample_bytes, uint64_t seed);

/* Slow path of mh_sample_check. Returns the sample's weight (> 0) or 0. */
double mh_sample_slow(mh_tls_t *t, size_t size, uint32_t gen);

/* Decide whether an allocation of `size` bytes is sampled, for generation `gen`
 * (non-zero). Returns its weight 1/p(size), or 0 when it is not sampled. The
 * fast path is a TLS load, a compare and a subtraction. */
static inline double mh_sample_check(size_t size, uint32_t gen)
{
    mh_tls_t *t = &mh_tls;
    if (__builtin_expect(t->gen == gen, 1)) {
        t->countdown -= (int64_t)size;
        if (__builtin_expect(t->countdown >= 0, 1)) {
            return 0.0;
        }
    }
    return mh_sample_slow(t, size, gen);
}

/* Forget this thread's countdown so the next allocation redraws it (from a seed
 * that mixes in the pid). Used in a forked child. */
void mh_sample_forget_thread(void);

/* Probability that an allocation of `size` bytes is sampled at mean gap R. */
double mh_sample_probability(size_t size, int64_t sample_bytes);

#endif
