/* mh_arena: memory for memhound's tables, taken straight from the kernel.
 *
 * Nothing here calls malloc, so these functions are safe inside allocator hooks
 * and under tables_lock. No Python.h. */
#ifndef MH_ARENA_H
#define MH_ARENA_H

#include <stddef.h>

/* Map `size` bytes of zeroed, read-write memory. Returns NULL on failure.
 * The memory is not resident until touched. Free with mh_arena_unmap. */
void *mh_arena_map(size_t size);

/* Like mh_arena_map, for a hash table that is about to be written all over:
 * the pages are faulted in at once, and big tables get transparent huge pages.
 * Free with mh_arena_unmap. */
void *mh_arena_map_table(size_t size);

/* Return memory from mh_arena_map (same size). NULL is ignored. */
void mh_arena_unmap(void *p, size_t size);

/* A malloc-like block in a mapping of its own (the size is kept in front of
 * it), for the large buffers a flush makes and frees again and again: freeing
 * gives the pages back to the kernel at once, where the C heap could keep them
 * (glibc raises its mmap threshold after such a free, and then serves the next
 * buffer from a heap that stays resident). Returns NULL on failure. */
void *mh_arena_alloc(size_t size);

/* Release a block from mh_arena_alloc. NULL is ignored. */
void mh_arena_free(void *p);

/* Bytes memhound holds in memory from this file now: tables (mh_arena_map,
 * mh_arena_map_table), the used part of bump regions (rounded up to pages) and
 * mh_arena_alloc blocks; a reservation not yet used is not counted. Lock-free,
 * safe anywhere. */
size_t mh_arena_bytes(void);

/* A bump region: a large reservation filled from the front. Pages become
 * resident only as they are used, so a generous reservation costs no memory. */
typedef struct {
    char *base;    /* Set once by mh_region_init. */
    size_t counted; /* Bytes of it in mh_arena_bytes. Protected by the owner's lock. */
    size_t cap;    /* Bytes reserved. */
    size_t used;   /* Bytes handed out. Protected by the owner's lock. */
} mh_region_t;

/* Reserve `cap` bytes. Returns 0 or MH_ENOMEM. */
int mh_region_init(mh_region_t *r, size_t cap);

/* Hand out `size` bytes (8-byte aligned). Returns NULL when the reservation is
 * exhausted. Caller holds the owner's lock. */
void *mh_region_alloc_locked(mh_region_t *r, size_t size);

/* Forget everything handed out and give the pages back to the kernel. */
void mh_region_reset_locked(mh_region_t *r);

/* Release the reservation. */
void mh_region_fini(mh_region_t *r);

#define MH_ENOMEM (-12)
#define MH_EINVAL (-22)
#define MH_ESTATE (-1)

#endif
