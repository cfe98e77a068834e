/* mh_stack: stack interning. A stack is an array of frames, innermost first;
 * each distinct stack gets a small id (1, 2, ...) that the live and site tables
 * store instead of the frames. A frame is an opaque code address and an
 * instruction offset: for Python frames the code object and the index of the
 * instruction in it (resolved to file, function and line outside the hooks).
 * Memory comes from mh_arena, so interning is safe inside hooks.
 * No Python.h. */
#ifndef MH_STACK_H
#define MH_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "mh_arena.h"

typedef struct {
    uintptr_t code;  /* Code object (or return address). */
    int32_t instr;   /* Instruction index in the code. */
    uint32_t flags;  /* MH_FRAME_*. */
} mh_frame_t;

/* The code object was not pinned (its owner did not hold the GIL when the stack
 * was first seen), so it may be gone: the frame resolves to "<unknown>". */
#define MH_FRAME_UNPINNED 1u

typedef struct {
    uint64_t hash;
    uint32_t off;    /* Index of the first frame in the frame pool. */
    uint16_t depth;  /* Frames kept. */
    uint16_t flags;  /* MH_STACK_*. */
} mh_stack_info_t;

/* The walk stopped at max_frames with frames left over. */
#define MH_STACK_TRUNCATED 1u

typedef struct {
    mh_region_t frames; /* mh_frame_t pool. Protected by tables_lock. */
    mh_region_t info;   /* mh_stack_info_t, indexed by id. Protected by tables_lock. */
    uint32_t count;     /* Ids 1..count are in use. Protected by tables_lock. */
    uint32_t *slots;    /* Open-addressing slots holding ids. Protected by tables_lock. */
    size_t cap;
} mh_stacks_t;

/* Reserve address space. Returns 0 or MH_ENOMEM. */
int mh_stacks_init(mh_stacks_t *s);

/* Hash contribution of the frame at `depth`. Frames are mixed independently and
 * summed, so the walk has no serial multiply chain; full frames are compared on
 * lookup, so the hash only has to spread well. */
static inline uint64_t mh_stack_hash_frame(uintptr_t code, int32_t instr, int depth)
{
    uint64_t x = (uint64_t)code * 0x9E3779B97F4A7C15ull;
    uint64_t y = ((uint64_t)(uint32_t)instr + ((uint64_t)depth << 32)) * 0xC2B2AE3D27D4EB4Full;
    return x ^ (y >> 29) ^ y;
}

/* Final mix of a summed stack hash. */
static inline uint64_t mh_stack_hash_finish(uint64_t h, int depth, unsigned flags)
{
    h ^= (uint64_t)depth * 0x165667B19E3779F9ull ^ ((uint64_t)flags << 56);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    return h;
}

/* The id of `frames[0..depth)` with `flags`, inserting it if new (*is_new = 1;
 * the caller may then adjust the stored frames' flags through
 * mh_stacks_frames_locked). Returns 0 when the tables are full. */
uint32_t mh_stacks_intern_locked(mh_stacks_t *s, const mh_frame_t *frames, int depth,
                                 unsigned flags, uint64_t hash, int *is_new);

/* Info and frames of stack `id` (1..count). Valid until mh_stacks_clear_locked. */
const mh_stack_info_t *mh_stacks_info_locked(const mh_stacks_t *s, uint32_t id);
mh_frame_t *mh_stacks_frames_locked(const mh_stacks_t *s, uint32_t id);

/* Forget every stack; address space stays reserved. */
void mh_stacks_clear_locked(mh_stacks_t *s);

/* A set of pointers (the code objects memhound holds a reference to). */
typedef struct {
    uintptr_t *slots; /* Protected by tables_lock. */
    size_t cap;
    size_t count;
} mh_ptrset_t;

/* 1 if added, 0 if it was there, MH_ENOMEM. */
int mh_ptrset_add_locked(mh_ptrset_t *p, uintptr_t ptr);
int mh_ptrset_has_locked(const mh_ptrset_t *p, uintptr_t ptr);
void mh_ptrset_clear_locked(mh_ptrset_t *p);

#endif
