/* mh_live: the live table, sampled allocations that have not been freed yet:
 * pointer -> (size, weight, stack id, epoch, time).
 *
 * Every free in the process asks "was this pointer sampled?", so the question is
 * answered first by a lock-free counting filter (one multiply, one byte load):
 * a zero counter proves the pointer is not in the table. Only pointers whose
 * counter is non-zero take tables_lock and probe the table. The counters are
 * changed only under tables_lock, and a pointer's own contribution stays in its
 * counter until that pointer is removed, so a reader never sees zero for a live
 * sampled pointer. Counters saturate at 255 and then stay (false positives only).
 *
 * The filter grows with the table (4x each time the table holds more than one
 * entry per 8 counters), so the share of frees that fall through to the lock
 * stays near 12 % however many samples are live. A grown filter is built from
 * the table under tables_lock and then published with one release store of a
 * pointer to (bits, counters), so a reader always uses a matching pair. An
 * old filter is never freed, reused or changed again: a reader that loaded it
 * just before the switch sees the counters of every pointer that was in the
 * table then (false positives only). The old filters together are smaller than
 * the current one. No Python.h. */
#ifndef MH_LIVE_H
#define MH_LIVE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uintptr_t ptr;    /* 0 marks an empty slot. */
    uint64_t size;    /* Bytes requested. */
    float weight;     /* 1/p(size): how many allocations this sample stands for. */
    uint32_t stack;   /* Interned stack id (0 = unknown). */
    uint32_t epoch;   /* Epoch it was allocated in. */
    uint32_t time_ms; /* Milliseconds since start() when it was allocated. */
} mh_live_entry_t;

typedef struct {
    mh_live_entry_t *slots; /* Protected by tables_lock. */
    size_t cap;             /* Power of two, or 0. Protected by tables_lock. */
    size_t count;           /* Protected by tables_lock. */
} mh_live_t;

/* Counters of the first filter (2^16, static) and of the largest (2^26). */
#define MH_LIVE_FILTER_MIN_BITS 16
#define MH_LIVE_FILTER_MAX_BITS 26

typedef struct {
    uint32_t bits;              /* log2 of the number of counters. Set before publication. */
    _Atomic uint8_t *counters;  /* 1 << bits counters. Changed only under tables_lock. */
} mh_live_filter_t;

/* The current filter. Replaced (release) under tables_lock; read lock-free. */
extern _Atomic(const mh_live_filter_t *) mh_live_filter;

static inline size_t mh_live_filter_index(uintptr_t ptr, uint32_t bits)
{
    return (size_t)(((uint64_t)(ptr >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

/* 0 if `ptr` is certainly not in the table, non-zero if it may be. Lock-free. */
static inline int mh_live_maybe(uintptr_t ptr)
{
    const mh_live_filter_t *f = atomic_load_explicit(&mh_live_filter, memory_order_acquire);
    return atomic_load_explicit(&f->counters[mh_live_filter_index(ptr, f->bits)],
                                memory_order_relaxed) != 0;
}

/* Insert `e`. If e->ptr was already present (its free went unseen), the old
 * entry is copied to *replaced and 1 is returned; 0 on a fresh insert;
 * MH_ENOMEM when the table cannot grow (nothing inserted). */
int mh_live_insert_locked(mh_live_t *t, const mh_live_entry_t *e, mh_live_entry_t *replaced);

/* Remove `ptr`, copying its entry to *out. Returns 1 if found, 0 if not. */
int mh_live_remove_locked(mh_live_t *t, uintptr_t ptr, mh_live_entry_t *out);

/* Drop every entry and give the memory back. The filter is cleared too. */
void mh_live_clear_locked(mh_live_t *t);

#endif
