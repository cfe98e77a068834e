/* mh_stack: stack interning (see mh_stack.h). */
#include "mh_stack.h"

#include <string.h>

#define FRAMES_RESERVE ((size_t)256 << 20) /* 16M frames */
#define INFO_RESERVE ((size_t)64 << 20)    /* 4M stacks */

int mh_stacks_init(mh_stacks_t *s)
{
    memset(s, 0, sizeof *s);
    if (mh_region_init(&s->frames, FRAMES_RESERVE) != 0 ||
        mh_region_init(&s->info, INFO_RESERVE) != 0) {
        mh_region_fini(&s->frames);
        mh_region_fini(&s->info);
        return MH_ENOMEM;
    }
    /* Id 0 is "no stack": reserve its slot. */
    mh_region_alloc_locked(&s->info, sizeof(mh_stack_info_t));
    return 0;
}

const mh_stack_info_t *mh_stacks_info_locked(const mh_stacks_t *s, uint32_t id)
{
    return (const mh_stack_info_t *)s->info.base + id;
}

mh_frame_t *mh_stacks_frames_locked(const mh_stacks_t *s, uint32_t id)
{
    return (mh_frame_t *)s->frames.base + mh_stacks_info_locked(s, id)->off;
}

static int same(const mh_stacks_t *s, uint32_t id, const mh_frame_t *frames, int depth,
                unsigned flags, uint64_t hash)
{
    const mh_stack_info_t *in = mh_stacks_info_locked(s, id);
    if (in->hash != hash || in->depth != depth || in->flags != flags) {
        return 0;
    }
    const mh_frame_t *f = (const mh_frame_t *)s->frames.base + in->off;
    for (int i = 0; i < depth; i++) {
        if (f[i].code != frames[i].code || f[i].instr != frames[i].instr) {
            return 0;
        }
    }
    return 1;
}

static int grow(mh_stacks_t *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 1024;
    uint32_t *ns = mh_arena_map_table(ncap * sizeof *ns);
    if (ns == NULL) {
        return MH_ENOMEM;
    }
    size_t mask = ncap - 1;
    for (size_t i = 0; i < s->cap; i++) {
        uint32_t id = s->slots[i];
        if (id == 0) {
            continue;
        }
        size_t j = (size_t)mh_stacks_info_locked(s, id)->hash & mask;
        while (ns[j] != 0) {
            j = (j + 1) & mask;
        }
        ns[j] = id;
    }
    mh_arena_unmap(s->slots, s->cap * sizeof *s->slots);
    s->slots = ns;
    s->cap = ncap;
    return 0;
}

uint32_t mh_stacks_intern_locked(mh_stacks_t *s, const mh_frame_t *frames, int depth,
                                 unsigned flags, uint64_t hash, int *is_new)
{
    *is_new = 0;
    if (s->cap != 0) {
        size_t mask = s->cap - 1;
        for (size_t j = (size_t)hash & mask; s->slots[j] != 0; j = (j + 1) & mask) {
            if (same(s, s->slots[j], frames, depth, flags, hash)) {
                return s->slots[j];
            }
        }
    }
    if ((s->count + 1) * 4 > s->cap * 3 && grow(s) != 0) {
        return 0;
    }
    mh_stack_info_t *in = mh_region_alloc_locked(&s->info, sizeof *in);
    mh_frame_t *f = mh_region_alloc_locked(&s->frames, (size_t)depth * sizeof *f);
    if (in == NULL || (f == NULL && depth > 0)) {
        return 0; /* Reservation exhausted: the caller drops the sample. */
    }
    if (depth > 0) {
        memcpy(f, frames, (size_t)depth * sizeof *f);
    }
    in->hash = hash;
    in->off = f ? (uint32_t)(f - (mh_frame_t *)s->frames.base) : 0;
    in->depth = (uint16_t)depth;
    in->flags = (uint16_t)flags;
    uint32_t id = ++s->count;
    size_t mask = s->cap - 1;
    size_t j = (size_t)hash & mask;
    while (s->slots[j] != 0) {
        j = (j + 1) & mask;
    }
    s->slots[j] = id;
    *is_new = 1;
    return id;
}

void mh_stacks_clear_locked(mh_stacks_t *s)
{
    mh_arena_unmap(s->slots, s->cap * sizeof *s->slots);
    s->slots = NULL;
    s->cap = 0;
    s->count = 0;
    mh_region_reset_locked(&s->frames);
    mh_region_reset_locked(&s->info);
    mh_region_alloc_locked(&s->info, sizeof(mh_stack_info_t));
}

static inline size_t ptr_slot(uintptr_t p, size_t mask)
{
    uint64_t h = (uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & mask;
}

int mh_ptrset_has_locked(const mh_ptrset_t *p, uintptr_t ptr)
{
    if (p->cap == 0) {
        return 0;
    }
    size_t mask = p->cap - 1;
    for (size_t j = ptr_slot(ptr, mask); p->slots[j] != 0; j = (j + 1) & mask) {
        if (p->slots[j] == ptr) {
            return 1;
        }
    }
    return 0;
}

int mh_ptrset_add_locked(mh_ptrset_t *p, uintptr_t ptr)
{
    if (mh_ptrset_has_locked(p, ptr)) {
        return 0;
    }
    if ((p->count + 1) * 2 > p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 256;
        uintptr_t *ns = mh_arena_map_table(ncap * sizeof *ns);
        if (ns == NULL) {
            return MH_ENOMEM;
        }
        for (size_t i = 0; i < p->cap; i++) {
            if (p->slots[i] != 0) {
                size_t j = ptr_slot(p->slots[i], ncap - 1);
                while (ns[j] != 0) {
                    j = (j + 1) & (ncap - 1);
                }
                ns[j] = p->slots[i];
            }
        }
        mh_arena_unmap(p->slots, p->cap * sizeof *p->slots);
        p->slots = ns;
        p->cap = ncap;
    }
    size_t mask = p->cap - 1;
    size_t j = ptr_slot(ptr, mask);
    while (p->slots[j] != 0) {
        j = (j + 1) & mask;
    }
    p->slots[j] = ptr;
    p->count++;
    return 1;
}

void mh_ptrset_clear_locked(mh_ptrset_t *p)
{
    mh_arena_unmap(p->slots, p->cap * sizeof *p->slots);
    p->slots = NULL;
    p->cap = p->count = 0;
}
