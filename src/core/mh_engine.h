/* mh_engine: memhound's tracking state, shared by the PyMem hooks and (later)
 * the malloc interposer: tables_lock, the live, site and stack tables, epochs
 * and totals. Hooks call mh_engine_on_alloc / mh_engine_on_free; everything else
 * (start, stop, snapshots) takes the lock through mh_engine_lock.
 *
 * Nothing here allocates from the C heap (but through the allocator a caller of
 * mh_engine_copy_locked passes) or calls Python; table memory comes from
 * mh_arena. No Python.h. */
#ifndef MH_ENGINE_H
#define MH_ENGINE_H

#include <pthread.h>
#include <stdint.h>

#include "mh_live.h"
#include "mh_sample.h"
#include "mh_sites.h"
#include "mh_stack.h"

#define MH_MAX_FRAMES_CAP 512

typedef struct {
    double live_bytes;   /* Estimated bytes of tracked allocations alive now. */
    double live_count;   /* Estimated number of them. */
    double peak_bytes;   /* Highest live_bytes seen since start. */
    uint64_t samples;    /* Sampled allocations recorded. */
    uint64_t frees;      /* Sampled allocations seen freed. */
    uint64_t dropped;    /* Samples lost because a table could not grow. */
    uint64_t unpinned;   /* Frames whose code object could not be pinned. */
} mh_totals_t;

typedef struct {
    pthread_mutex_t lock;  /* tables_lock. */
    mh_live_t live;        /* Protected by tables_lock. */
    mh_sites_t sites;      /* Protected by tables_lock. */
    mh_stacks_t stacks;    /* Protected by tables_lock. */
    mh_ptrset_t pins;      /* Code objects holding a reference. Protected by tables_lock. */
    mh_region_t epochs;    /* uint64_t start time (ns) of each epoch. Protected by tables_lock. */
    mh_totals_t totals;    /* Protected by tables_lock. */
    uint32_t epoch;        /* Current epoch. Protected by tables_lock. */
    uint32_t merges;       /* Times epochs were merged pairwise. Protected by tables_lock. */
    uint32_t max_epochs;   /* 0 = unbounded; else merge when reached. Protected by tables_lock. */
    uint64_t stride;       /* Units of work per epoch (doubles on each merge). Protected by tables_lock. */
    uint64_t units;        /* Units ended in the current epoch. Protected by tables_lock. */
    double alloc_scale;    /* Allocation clock: 1 / bytes per unit, 0 = off. Protected by tables_lock. */
    double alloc_units;    /* Units of allocation in the current epoch. Protected by tables_lock. */
    uint32_t gen;          /* Generation being tracked, 0 = none. Protected by tables_lock. */
    int max_frames;        /* Set before hooks go live. */
    uint64_t start_ns;     /* CLOCK_MONOTONIC at start. Set before hooks go live. */
} mh_engine_t;

extern mh_engine_t mh_engine;

/* Pin a code object so that its address cannot be reused while a stack refers
 * to it. Returns 1 if pinned, 0 if it cannot be now (the GIL is not held).
 * Called under tables_lock; must not allocate or run Python code. Set once. */
extern int (*mh_engine_pin)(uintptr_t code);

/* One-time set-up (lock, reservations, fork handlers). Returns 0 or MH_ENOMEM. */
int mh_engine_init(void);

/* Take / release tables_lock from outside a hook: marks the thread busy, so any
 * allocation it makes meanwhile passes through the hooks untracked. */
void mh_engine_lock(void);
void mh_engine_unlock(void);

/* Start a tracking run: clear the tables, configure the sampler. Lock held. */
void mh_engine_begin_locked(int64_t sample_bytes, int max_frames, uint64_t seed);

/* End the run: hooks become pass-through and the tables are cleared. Pinned code
 * objects are handed to `unpin` (called under the lock; it must only queue). */
void mh_engine_end_locked(void (*unpin)(uintptr_t code, void *arg), void *arg);

/* Close the current epoch; returns the new epoch number. Lock held. */
uint32_t mh_engine_next_epoch_locked(void);

/* A unit of work ended (a loop pass, a request, a time window). Every `stride`
 * units close an epoch; when max_epochs is set and reached, epochs are merged
 * pairwise and the stride doubles, so every closed epoch holds the same number
 * of units however long the run. Returns the current epoch. Lock held. */
uint32_t mh_engine_end_unit_locked(void);

/* The allocation clock: with `quantum` > 0, every `quantum` bytes of estimated
 * allocation (each sample stands for size / p bytes) is a unit too, counted in
 * fractions as samples arrive, and a sampled allocation that brings the current
 * epoch's units (windows or calls, plus allocation) to `stride` closes it from
 * the hook. Both clocks add to one count, so an epoch lasts at most `stride`
 * units of either, and merging two epochs gives exactly one of the doubled size
 * (every epoch holds `stride` units, counted on both clocks together). 0 turns
 * it off. Lock held. */
void mh_engine_set_alloc_clock_locked(uint64_t quantum);

/* Halve the epoch resolution: epochs 2k and 2k+1 become epoch k, in the site
 * table, the live table and the epoch start times, so that a long run keeps a
 * bounded number of epochs. Returns 0 or MH_ENOMEM (rows that could not be moved
 * are dropped and counted). Lock held. */
int mh_engine_merge_epochs_locked(void);

/* Record a sampled allocation of `size` bytes at `ptr` with `weight`, made at
 * the stack frames[0..depth) (innermost first). */
void mh_engine_on_alloc(void *ptr, size_t size, double weight, const mh_frame_t *frames,
                        int depth, unsigned stack_flags, uint64_t hash);

/* `ptr` is about to be freed and mh_live_maybe(ptr) said it may be sampled.
 * If it was, remove it (and copy its entry to *saved when non-NULL); returns 1
 * if it was sampled. */
int mh_engine_on_free(void *ptr, mh_live_entry_t *saved);

/* Undo mh_engine_on_free for a realloc that failed and left the block alive. */
void mh_engine_restore(const mh_live_entry_t *saved);

/* Aggregate the live table by (stack, epoch) into `out` (a table the caller
 * clears afterwards): alloc_bytes and alloc_count are the estimated bytes and
 * count still alive, free_bytes and free_count the variances of those
 * estimates, alloc_samples the samples behind them. Returns 0 or MH_ENOMEM. */
int mh_engine_cohorts_locked(mh_sites_t *out);

/* The engine's state copied out under tables_lock, for a snapshot (the
 * binding) or a flush (the background thread), so that the lock is not held
 * while it is turned into Python objects or SQL rows. */
typedef struct {
    mh_site_t *sites;        /* The site table's rows. */
    size_t n_sites;
    mh_site_t *cohorts;      /* The live table totalled by (stack, epoch) (mh_engine_cohorts_locked). */
    size_t n_cohorts;
    uint32_t first_stack;    /* info[k] describes stack id first_stack + k ... */
    uint32_t n_stacks;       /* ... for k < n_stacks (every stack from first_stack on). */
    mh_stack_info_t *info;   /* info[k].off indexes `frames`. */
    mh_frame_t *frames;
    size_t n_frames;
    uint64_t *epochs;        /* Start of each epoch, ns since start. */
    size_t n_epochs;
    mh_totals_t totals;
    uint32_t epoch, merges;
    uint32_t stacks;         /* Stack ids in use (1..stacks). */
    uint64_t stride, units;
    size_t live_entries;
    uint64_t elapsed_ns;     /* Since start. */
} mh_engine_copy_t;

/* Copy the state into *c (zeroed by the caller), with the stacks from id
 * first_stack (>= 1) on, allocating with `alloc` (the caller's allocator; the
 * thread is busy, so a hooked one passes through). Returns 0, or MH_ENOMEM
 * with whatever was allocated left in *c for mh_engine_copy_free. Lock held. */
int mh_engine_copy_locked(mh_engine_copy_t *c, uint32_t first_stack, void *(*alloc)(size_t));

/* Free what mh_engine_copy_locked allocated, with the matching `release`. */
void mh_engine_copy_free(mh_engine_copy_t *c, void (*release)(void *));

/* Milliseconds elapsed since start. */
uint32_t mh_engine_now_ms(void);
uint64_t mh_engine_clock_ns(void);

#endif
