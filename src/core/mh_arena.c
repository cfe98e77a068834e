/* mh_arena: mmap-backed memory for tables (see mh_arena.h). */
#define _GNU_SOURCE
#include "mh_arena.h"

#include <sys/mman.h>

void *mh_arena_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
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
        return p;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void mh_arena_unmap(void *p, size_t size)
{
    if (p != NULL) {
        munmap(p, size);
    }
}

int mh_region_init(mh_region_t *r, size_t cap)
{
    r->base = mh_arena_map(cap);
    r->cap = r->base ? cap : 0;
    r->used = 0;
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
    return p;
}

void mh_region_reset_locked(mh_region_t *r)
{
    if (r->base != NULL && r->used > 0) {
        /* Zero-fill on next touch and drop the resident pages. */
        madvise(r->base, r->cap, MADV_DONTNEED);
    }
    r->used = 0;
}

void mh_region_fini(mh_region_t *r)
{
    mh_arena_unmap(r->base, r->cap);
    r->base = NULL;
    r->cap = r->used = 0;
}
