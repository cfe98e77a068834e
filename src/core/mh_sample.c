/* mh_sample: Poisson byte sampler (see mh_sample.h for the maths). */
#define _GNU_SOURCE
#include "mh_sample.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

_Thread_local mh_tls_t mh_tls __attribute__((tls_model("initial-exec")));

_Atomic uint32_t mh_sample_gen = 0;
int64_t mh_sample_bytes = 1;

static uint64_t seed_base;              /* Set before hooks go live. */
static _Atomic uint64_t thread_counter; /* Gives every thread its own stream. */
static uint32_t last_gen;               /* Protected by tables_lock. */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Uniform in (0, 1]: 53 random bits from xorshift64*. */
static double uniform(mh_tls_t *t)
{
    uint64_t x = t->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    uint64_t r = (x * 0x2545F4914F6CDD1Dull) >> 11;
    return ((double)r + 1.0) * (1.0 / 9007199254740992.0);
}

/* Gap to the next sample point: floor(Exp(R)). An allocation of s bytes holds a
 * point iff gap < s, and for integer s that is floor(gap) < s. */
static int64_t draw_gap(mh_tls_t *t)
{
    double gap = -(double)mh_sample_bytes * log(uniform(t));
    if (gap > 9.0e18) {
        gap = 9.0e18;
    }
    return (int64_t)gap;
}

uint32_t mh_sample_configure_locked(int64_t sample_bytes, uint64_t seed)
{
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
               ((uint64_t)getpid() << 32);
    }
    mh_sample_bytes = sample_bytes < 1 ? 1 : sample_bytes;
    seed_base = seed;
    atomic_store(&thread_counter, 0);
    last_gen = last_gen + 1 == 0 ? 1 : last_gen + 1;
    return last_gen;
}

static void seed_thread(mh_tls_t *t, uint32_t gen)
{
    uint64_t n = atomic_fetch_add(&thread_counter, 1);
    uint64_t s = splitmix64(seed_base ^ splitmix64(n + 1));
    t->rng = s ? s : 0x853C49E6748FEA9Bull;
    t->gen = gen;
}

double mh_sample_slow(mh_tls_t *t, size_t size, uint32_t gen)
{
    if (t->ignored) {
        /* memhound's own helper threads: never sampled; the countdown is pushed
         * far out so that the fast path stays fast. */
        t->gen = gen;
        t->countdown = INT64_MAX / 2;
        return 0.0;
    }
    if (mh_sample_bytes <= 1) {
        /* Exact mode: every allocation, weight 1. */
        t->gen = gen;
        t->countdown = -1;
        return 1.0;
    }
    if (t->gen != gen) {
        seed_thread(t, gen);
        t->countdown = draw_gap(t) - (int64_t)size;
        if (t->countdown >= 0) {
            return 0.0;
        }
    }
    t->countdown = draw_gap(t);
    return 1.0 / mh_sample_probability(size, mh_sample_bytes);
}

void mh_sample_forget_thread(void)
{
    mh_tls_t *t = &mh_tls;
    seed_base ^= splitmix64((uint64_t)getpid());
    seed_thread(t, t->gen);
    t->countdown = mh_sample_bytes <= 1 ? -1 : draw_gap(t);
}

double mh_sample_probability(size_t size, int64_t sample_bytes)
{
    if (sample_bytes <= 1) {
        return 1.0;
    }
    /* -expm1(-x) keeps precision when size << R. */
    return -expm1(-(double)size / (double)sample_bytes);
}
