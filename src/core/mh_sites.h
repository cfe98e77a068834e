/* mh_sites: the site table, per (stack id, epoch): estimated bytes and counts
 * allocated in that epoch, and freed in that epoch (whenever they were
 * allocated). Live memory per site and epoch follows by summing; what is still
 * alive of each epoch's allocations (the cohort) comes from the live table.
 * No Python.h. */
#ifndef MH_SITES_H
#define MH_SITES_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t key;         /* (stack << 32) | epoch, plus 1; 0 marks an empty slot. */
    double alloc_bytes;   /* Estimated bytes allocated in the epoch. */
    double alloc_count;   /* Estimated allocations in the epoch. */
    double free_bytes;    /* Estimated bytes of this stack freed in the epoch. */
    double free_count;
    uint32_t alloc_samples; /* Samples behind alloc_*. */
    uint32_t free_samples;
} mh_site_t;

/* The Python side unpacks rows as "<QddddII". */
_Static_assert(sizeof(mh_site_t) == 48, "mh_site_t is exported as a packed 48-byte row");

typedef struct {
    mh_site_t *slots; /* Protected by tables_lock. */
    size_t cap;       /* Power of two, or 0. Protected by tables_lock. */
    size_t count;     /* Protected by tables_lock. */
} mh_sites_t;

/* The row for (stack, epoch), created zeroed if missing. NULL when the table
 * cannot grow. The pointer is valid until the next call. */
mh_site_t *mh_sites_get_locked(mh_sites_t *t, uint32_t stack, uint32_t epoch);

static inline uint32_t mh_site_stack(const mh_site_t *s) { return (uint32_t)((s->key - 1) >> 32); }
static inline uint32_t mh_site_epoch(const mh_site_t *s) { return (uint32_t)(s->key - 1); }

void mh_sites_clear_locked(mh_sites_t *t);

/* Copy the table's rows (t->count of them) into dst; returns how many. */
size_t mh_sites_copy_locked(const mh_sites_t *t, mh_site_t *dst);

#endif
