/* mh_sites: site table, linear probing on a 64-bit key, never deletes. */
#include "mh_sites.h"

#include "mh_arena.h"

static inline size_t slot_of(uint64_t key, size_t mask)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 32)) & mask;
}

static int grow(mh_sites_t *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    mh_site_t *ns = mh_arena_map_table(ncap * sizeof *ns);
    if (ns == NULL) {
        return MH_ENOMEM;
    }
    size_t mask = ncap - 1;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].key == 0) {
            continue;
        }
        size_t j = slot_of(t->slots[i].key, mask);
        while (ns[j].key != 0) {
            j = (j + 1) & mask;
        }
        ns[j] = t->slots[i];
    }
    mh_arena_unmap(t->slots, t->cap * sizeof *t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

mh_site_t *mh_sites_get_locked(mh_sites_t *t, uint32_t stack, uint32_t epoch)
{
    uint64_t key = (((uint64_t)stack << 32) | epoch) + 1;
    if (t->cap != 0) {
        size_t mask = t->cap - 1;
        for (size_t j = slot_of(key, mask);; j = (j + 1) & mask) {
            if (t->slots[j].key == key) {
                return &t->slots[j];
            }
            if (t->slots[j].key == 0) {
                break;
            }
        }
    }
    if ((t->count + 1) * 4 > t->cap * 3 && grow(t) != 0) {
        return NULL;
    }
    size_t mask = t->cap - 1;
    size_t j = slot_of(key, mask);
    while (t->slots[j].key != 0) {
        j = (j + 1) & mask;
    }
    t->slots[j].key = key;
    t->count++;
    return &t->slots[j];
}

void mh_sites_clear_locked(mh_sites_t *t)
{
    mh_arena_unmap(t->slots, t->cap * sizeof *t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}

size_t mh_sites_copy_locked(const mh_sites_t *t, mh_site_t *dst)
{
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].key != 0) {
            dst[n++] = t->slots[i];
        }
    }
    return n;
}
