/* mh_freelists: the blocks parked on CPython's free lists.
 *
 * When a tuple, float, list, dict (or its keys), slice, context, async
 * generator helper, MemoryError or (3.10) frame dies, CPython often keeps its
 * memory on a per-type free list instead of freeing it, and hands it out again
 * to the next object of that type. Freeing to a free list never reaches the
 * allocator, so a sampled block that ends there stays in the live table: dead
 * objects counted as live memory, attributed to wherever the block was first
 * allocated. This module finds those blocks, one section per CPython version
 * (read through CPython's own internal headers, so a layout that does not match
 * the interpreter being built for fails to compile), and reports them to the
 * engine as freed. Nothing is taken off a free list and no memory is released:
 * a block handed out again later is simply no longer a sample.
 *
 * Everything here runs with the GIL held (the free lists of a default build are
 * protected by it) and calls no Python code. Python.h. */
#ifndef MH_FREELISTS_H
#define MH_FREELISTS_H

#include <stddef.h>
#include <stdint.h>

/* Called with the allocation start of each block on a free list. */
typedef void (*mh_freelists_visit_t)(uintptr_t start, void *arg);

/* Call `visit` for every block on the current interpreter's free lists (the
 * empty tuple and other live singletons are not on them). Returns how many
 * blocks were visited. GIL held; `visit` must not run Python code. */
size_t mh_freelists_walk(mh_freelists_visit_t visit, void *arg);

/* Report every free-listed block that is a sampled live allocation to the
 * engine as freed (through its ordinary free path, so the site and cohort
 * tables see the free in the current epoch). Returns how many were. GIL held;
 * takes tables_lock once per candidate block. */
size_t mh_freelists_forget(void);

#endif
