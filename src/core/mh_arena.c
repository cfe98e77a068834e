/* mh_arena: mmap-backed memory for tables (see mh_arena.h). */
#define _GNU_SOURCE
#include "mh_arena.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#define PAGE ((size_t)4096)

/* Bytes in mh_arena_bytes. Atomic (updated under whatever lock the caller holds). */
static _Atomic size_t held;

static void count(size_t add, size_t sub)
{
    if (add) {
        atomic_fetch_add_explicit(&held, add, memory_order_relaxed);
    }
    if (sub) {
        atomic_fetch_sub_explicit(&held, sub, memory_order_relaxed);
    }
}

size_t mh_arena_bytes(void)
{
    return atomic_load_explicit(&held, memory_order_relaxed);
}

/* A reservation for a region: not counted until used. */
static void *reserve(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *mh_arena_map(size_t size)
{
    void *p = reserve(size);
    if (p != NULL) {
        count(size, 0);
    }
    return p;
}

void *mh_arena_map_table(size_t size)
{
    /* Hash tables are touched all over at once (a rehash writes every slot), so
     * fault the pages in with one call instead of a read fault and a write fault
     * per page, and let big tables use huge pages: a probe into a table of
     * hundreds of MB then costs a cache miss, not a TLB miss on top. */
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
    if (size >= ((size_t)4 << 20)) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (p == MAP_FAILED) {
            return NULL;
        }
        madvise(p, size, MADV_HUGEPAGE);
        madvise(p, size, MADV_POPULATE_WRITE);
        count(size, 0);
        return p;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    count(size, 0);
    return p;
}

void mh_arena_unmap(void *p, size_t size)
{
    if (p != NULL) {
        munmap(p, size);
        count(0, size);
    }
}

/* Blocks keep their mapping's size in a 16-byte header (malloc's alignment). */
#define HEADER ((size_t)16)

void *mh_arena_alloc(size_t size)
{
    if (size > SIZE_MAX - HEADER - PAGE) {
        return NULL;
    }
    size_t total = (size + HEADER + PAGE - 1) & ~(PAGE - 1);
    /* Populated: the block is about to be written through, and one call that
     * faults every page in is cheaper than a fault per page. */
    char *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    count(total, 0);
    *(size_t *)p = total;
    return p + HEADER;
}

void mh_arena_free(void *p)
{
    if (p != NULL) {
        char *base = (char *)p - HEADER;
        mh_arena_unmap(base, *(size_t *)base);
    }
}

int mh_region_init(mh_region_t *r, size_t cap)
{
    r->base = reserve(cap);
    r->cap = r->base ? cap : 0;
    r->used = 0;
    r->counted = 0;
    return r->base ? 0 : MH_ENOMEM;
}

void *mh_region_alloc_locked(mh_region_t *r, size_t size)
{
    size = (size + 7u) & ~(size_t)7u;
    if (r->base == NULL || size > r->cap - r->used) {
        return NULL;
    }
    void *p = r->base + r->used;
    r->used += size;
    size_t pages = (r->used + PAGE - 1) & ~(PAGE - 1);
    if (pages > r->counted) {
        count(pages - r->counted, 0);
        r->counted = pages;
    }
    return p;
}

void mh_region_reset_locked(mh_region_t *r)
{
    if (r->base != NULL && r->used > 0) {
        /* Zero-fill on next touch and drop the resident pages. */
        madvise(r->base, r->cap, MADV_DONTNEED);
    }
    count(0, r->counted);
    r->used = r->counted = 0;
}

void mh_region_fini(mh_region_t *r)
{
    if (r->base != NULL) {
        munmap(r->base, r->cap);
    }
    count(0, r->counted);
    r->base = NULL;
    r->cap = r->used = r->counted = 0;
}
