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
 * No Python.h. */
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

#define MH_LIVE_FILTER_BITS 16
extern _Atomic uint8_t mh_live_filter[1u << MH_LIVE_FILTER_BITS];

static inline size_t mh_live_filter_index(uintptr_t ptr)
{
    return (size_t)(((uint64_t)(ptr >> 4) * 0x9E3779B97F4A7C15ull) >>
                    (64 - MH_LIVE_FILTER_BITS));
}

/* 0 if `ptr` is certainly not in the table, non-zero if it may be. Lock-free. */
static inline int mh_live_maybe(uintptr_t ptr)
{
    return atomic_load_explicit(&mh_live_filter[mh_live_filter_index(ptr)],
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
