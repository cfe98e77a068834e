/* mh_live: live table with linear probing and backward-shift deletion (no
 * tombstones, so probe lengths stay short under heavy churn). */
#include "mh_live.h"

#include <string.h>

#include "mh_arena.h"

static _Atomic uint8_t first_counters[1u << MH_LIVE_FILTER_MIN_BITS];
static const mh_live_filter_t first_filter = {MH_LIVE_FILTER_MIN_BITS, first_counters};
_Atomic(const mh_live_filter_t *) mh_live_filter = &first_filter;

/* Fibonacci hashing: the high bits of the product are the well-mixed ones (the
 * low bits of a product depend only on the low bits of the pointer, which
 * allocator alignment leaves mostly zero and which cluster badly). */
static inline size_t slot_of(uintptr_t ptr, size_t mask)
{
    uint64_t h = ((uint64_t)ptr ^ ((uint64_t)ptr >> 21)) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> (64 - __builtin_popcountll(mask))) & mask;
}

/* The current filter, as its writer (tables_lock held) sees it. */
static const mh_live_filter_t *cur(void)
{
    return atomic_load_explicit(&mh_live_filter, memory_order_relaxed);
}

static void counter_add(const mh_live_filter_t *f, uintptr_t ptr)
{
    _Atomic uint8_t *c = &f->counters[mh_live_filter_index(ptr, f->bits)];
    uint8_t v = atomic_load_explicit(c, memory_order_relaxed);
    if (v != 255) {
        atomic_store_explicit(c, (uint8_t)(v + 1), memory_order_relaxed);
    }
}

static void filter_add(uintptr_t ptr)
{
    counter_add(cur(), ptr);
}

static void filter_del(uintptr_t ptr)
{
    const mh_live_filter_t *f = cur();
    _Atomic uint8_t *c = &f->counters[mh_live_filter_index(ptr, f->bits)];
    uint8_t v = atomic_load_explicit(c, memory_order_relaxed);
    if (v != 255 && v != 0) {
        atomic_store_explicit(c, (uint8_t)(v - 1), memory_order_relaxed);
    }
}

/* Replace the filter with one four times larger, built from the table. On
 * failure the current filter stays (more false positives, nothing wrong). */
static void filter_grow(const mh_live_t *t)
{
    const mh_live_filter_t *old = cur();
    uint32_t bits = old->bits + 2;
    if (bits > MH_LIVE_FILTER_MAX_BITS) {
        return;
    }
    /* One mapping: the header, then the counters on their own cache lines. */
    size_t n = (size_t)1 << bits;
    char *mem = mh_arena_map(64 + n);
    if (mem == NULL) {
        return;
    }
    mh_live_filter_t *f = (mh_live_filter_t *)mem;
    f->bits = bits;
    f->counters = (_Atomic uint8_t *)(mem + 64);
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].ptr != 0) {
            counter_add(f, t->slots[i].ptr);
        }
    }
    atomic_store_explicit(&mh_live_filter, f, memory_order_release);
    /* `old` is left as it is, for readers that may still hold it. */
}

static int grow(mh_live_t *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    mh_live_entry_t *ns = mh_arena_map_table(ncap * sizeof *ns);
    if (ns == NULL) {
        return MH_ENOMEM;
    }
    size_t mask = ncap - 1;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].ptr == 0) {
            continue;
        }
        size_t j = slot_of(t->slots[i].ptr, mask);
        while (ns[j].ptr != 0) {
            j = (j + 1) & mask;
        }
        ns[j] = t->slots[i];
    }
    mh_arena_unmap(t->slots, t->cap * sizeof *t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

int mh_live_insert_locked(mh_live_t *t, const mh_live_entry_t *e, mh_live_entry_t *replaced)
{
    /* Keep the load under 5/8 so probes stay short. */
    if ((t->count + 1) * 8 > t->cap * 5 && grow(t) != 0) {
        return MH_ENOMEM;
    }
    size_t mask = t->cap - 1;
    size_t j = slot_of(e->ptr, mask);
    while (t->slots[j].ptr != 0) {
        if (t->slots[j].ptr == e->ptr) {
            *replaced = t->slots[j];
            t->slots[j] = *e;
            return 1;
        }
        j = (j + 1) & mask;
    }
    t->slots[j] = *e;
    t->count++;
    filter_add(e->ptr);
    if (t->count << 3 > ((size_t)1 << cur()->bits)) {
        filter_grow(t);
    }
    return 0;
}

int mh_live_remove_locked(mh_live_t *t, uintptr_t ptr, mh_live_entry_t *out)
{
    if (t->count == 0) {
        return 0;
    }
    size_t mask = t->cap - 1;
    size_t j = slot_of(ptr, mask);
    for (;;) {
        if (t->slots[j].ptr == 0) {
            return 0;
        }
        if (t->slots[j].ptr == ptr) {
            break;
        }
        j = (j + 1) & mask;
    }
    *out = t->slots[j];
    filter_del(ptr);
    t->count--;
    /* Backward-shift: pull later members of the probe run into the hole. */
    size_t hole = j;
    size_t k = (j + 1) & mask;
    while (t->slots[k].ptr != 0) {
        size_t home = slot_of(t->slots[k].ptr, mask);
        /* Move k into the hole unless its home lies cyclically in (hole, k]. */
        int stays = hole <= k ? (home > hole && home <= k) : (home > hole || home <= k);
        if (!stays) {
            t->slots[hole] = t->slots[k];
            hole = k;
        }
        k = (k + 1) & mask;
    }
    t->slots[hole].ptr = 0;
    return 1;
}

void mh_live_clear_locked(mh_live_t *t)
{
    mh_arena_unmap(t->slots, t->cap * sizeof *t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
    /* The table is empty: zeroing the counters in place can hide nothing. The
     * filter keeps its size for the next run. */
    const mh_live_filter_t *f = cur();
    for (size_t i = 0; i < ((size_t)1 << f->bits); i++) {
        atomic_store_explicit(&f->counters[i], 0, memory_order_relaxed);
    }
}
