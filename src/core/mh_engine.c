/* mh_engine: tracking state shared by all hooks (see mh_engine.h). */
#define _GNU_SOURCE
#include "mh_engine.h"

#include <string.h>
#include <time.h>

mh_engine_t mh_engine = {.lock = PTHREAD_MUTEX_INITIALIZER};
int (*mh_engine_pin)(uintptr_t code) = NULL;

static int initialized; /* Set once under the GIL by the binding. */

uint64_t mh_engine_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t mh_engine_now_ms(void)
{
    /* The coarse clock is a plain vDSO read (a few ns); millisecond resolution is
     * all the live table keeps. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return now > mh_engine.start_ns ? (uint32_t)((now - mh_engine.start_ns) / 1000000u) : 0;
}

void mh_engine_lock(void)
{
    mh_tls.busy++;
    pthread_mutex_lock(&mh_engine.lock);
}

void mh_engine_unlock(void)
{
    pthread_mutex_unlock(&mh_engine.lock);
    mh_tls.busy--;
}

/* fork: hold the lock across fork() so the child never inherits tables in the
 * middle of an update. The forking thread is marked busy meanwhile, so that an
 * allocation made by another fork handler cannot deadlock on the lock. The
 * child keeps tracking with the inherited tables: its heap is a copy of the
 * parent's, so the live entries still describe its memory. Its sampler is
 * reseeded so parent and child do not sample in lockstep. */
static void atfork_prepare(void)
{
    mh_engine_lock();
}

static void atfork_parent(void)
{
    mh_engine_unlock();
}

static void atfork_child(void)
{
    pthread_mutex_init(&mh_engine.lock, NULL);
    mh_tls.busy--;
    mh_sample_forget_thread();
}

int mh_engine_init(void)
{
    if (initialized) {
        return 0;
    }
    if (mh_stacks_init(&mh_engine.stacks) != 0 ||
        mh_region_init(&mh_engine.epochs, (size_t)64 << 20) != 0) {
        return MH_ENOMEM;
    }
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    initialized = 1;
    return 0;
}

static void clear_tables_locked(void)
{
    mh_live_clear_locked(&mh_engine.live);
    mh_sites_clear_locked(&mh_engine.sites);
    mh_stacks_clear_locked(&mh_engine.stacks);
    mh_region_reset_locked(&mh_engine.epochs);
    memset(&mh_engine.totals, 0, sizeof mh_engine.totals);
}

void mh_engine_begin_locked(int64_t sample_bytes, int max_frames, uint64_t seed)
{
    clear_tables_locked();
    mh_engine.max_frames = max_frames;
    mh_engine.start_ns = mh_engine_clock_ns();
    mh_engine.epoch = 0;
    mh_engine.merges = 0;
    mh_engine.max_epochs = 0;
    mh_engine.stride = 1;
    mh_engine.units = 0;
    mh_engine.alloc_scale = 0.0;
    mh_engine.alloc_units = 0.0;
    uint64_t *e0 = mh_region_alloc_locked(&mh_engine.epochs, sizeof *e0);
    *e0 = 0;
    mh_engine.gen = mh_sample_configure_locked(sample_bytes, seed);
    atomic_store(&mh_sample_gen, mh_engine.gen);
}

void mh_engine_end_locked(void (*unpin)(uintptr_t code, void *arg), void *arg)
{
    atomic_store(&mh_sample_gen, 0);
    mh_engine.gen = 0;
    mh_engine.alloc_scale = 0.0;
    for (size_t i = 0; i < mh_engine.pins.cap; i++) {
        if (mh_engine.pins.slots[i] != 0 && unpin != NULL) {
            unpin(mh_engine.pins.slots[i], arg);
        }
    }
    mh_ptrset_clear_locked(&mh_engine.pins);
    clear_tables_locked();
}

uint32_t mh_engine_next_epoch_locked(void)
{
    uint64_t *e = mh_region_alloc_locked(&mh_engine.epochs, sizeof *e);
    if (e == NULL) {
        return mh_engine.epoch; /* Out of epoch slots: stay in the last one. */
    }
    *e = mh_engine_clock_ns() - mh_engine.start_ns;
    return ++mh_engine.epoch;
}

/* Close the current epoch (its units are counted in full), and merge when
 * max_epochs is reached. */
static void close_epoch_locked(void)
{
    mh_engine.units = 0;
    mh_engine.alloc_units = 0.0;
    mh_engine_next_epoch_locked();
    if (mh_engine.max_epochs != 0 && mh_engine.epoch + 1 >= mh_engine.max_epochs &&
        mh_engine.epoch % 2 == 0) {
        /* Epochs 0..epoch-1 are closed and even in number, and the current one is
         * empty: merging pairs them exactly. */
        mh_engine_merge_epochs_locked();
        mh_engine.stride *= 2;
    }
}

uint32_t mh_engine_end_unit_locked(void)
{
    if ((double)++mh_engine.units + mh_engine.alloc_units < (double)mh_engine.stride) {
        return mh_engine.epoch;
    }
    close_epoch_locked();
    return mh_engine.epoch;
}

void mh_engine_set_alloc_clock_locked(uint64_t quantum)
{
    mh_engine.alloc_scale = quantum > 0 ? 1.0 / (double)quantum : 0.0;
    mh_engine.alloc_units = 0.0;
}

/* A sampled allocation standing for `bytes` bytes: advance the allocation clock. */
static void alloc_clock_locked(double bytes)
{
    mh_engine.alloc_units += bytes * mh_engine.alloc_scale;
    if ((double)mh_engine.units + mh_engine.alloc_units >= (double)mh_engine.stride) {
        close_epoch_locked();
    }
}

int mh_engine_merge_epochs_locked(void)
{
    int rc = 0;
    mh_sites_t old = mh_engine.sites;
    memset(&mh_engine.sites, 0, sizeof mh_engine.sites);
    for (size_t i = 0; i < old.cap; i++) {
        const mh_site_t *o = &old.slots[i];
        if (o->key == 0) {
            continue;
        }
        mh_site_t *n = mh_sites_get_locked(&mh_engine.sites, mh_site_stack(o), mh_site_epoch(o) / 2);
        if (n == NULL) {
            mh_engine.totals.dropped++;
            rc = MH_ENOMEM;
            continue;
        }
        n->alloc_bytes += o->alloc_bytes;
        n->alloc_count += o->alloc_count;
        n->free_bytes += o->free_bytes;
        n->free_count += o->free_count;
        n->alloc_samples += o->alloc_samples;
        n->free_samples += o->free_samples;
    }
    mh_sites_clear_locked(&old);
    for (size_t i = 0; i < mh_engine.live.cap; i++) {
        mh_engine.live.slots[i].epoch /= 2;
    }
    uint64_t *starts = (uint64_t *)mh_engine.epochs.base;
    size_t n = mh_engine.epochs.used / sizeof *starts;
    for (size_t k = 0; 2 * k < n; k++) {
        starts[k] = starts[2 * k];
    }
    mh_engine.epochs.used = ((n + 1) / 2) * sizeof *starts;
    mh_engine.epoch /= 2;
    mh_engine.merges++;
    return rc;
}

static void pin_new_stack_locked(uint32_t id)
{
    const mh_stack_info_t *in = mh_stacks_info_locked(&mh_engine.stacks, id);
    mh_frame_t *f = mh_stacks_frames_locked(&mh_engine.stacks, id);
    for (int i = 0; i < in->depth; i++) {
        uintptr_t code = f[i].code;
        if (mh_ptrset_has_locked(&mh_engine.pins, code)) {
            continue;
        }
        if (mh_engine_pin != NULL && mh_engine_pin(code)) {
            if (mh_ptrset_add_locked(&mh_engine.pins, code) == 1) {
                continue;
            }
            /* Could not record the pin: the reference is kept (a small leak of one
             * code object) rather than risk a dangling frame. */
        }
        f[i].flags |= MH_FRAME_UNPINNED;
        mh_engine.totals.unpinned++;
    }
}

static void account_free_locked(const mh_live_entry_t *e, double sign)
{
    double bytes = (double)e->size * e->weight;
    mh_site_t *s = mh_sites_get_locked(&mh_engine.sites, e->stack, mh_engine.epoch);
    if (s != NULL) {
        s->free_bytes += sign * bytes;
        s->free_count += sign * e->weight;
        s->free_samples += sign > 0 ? 1u : (uint32_t)-1;
    }
    mh_engine.totals.live_bytes -= sign * bytes;
    mh_engine.totals.live_count -= sign * e->weight;
    mh_engine.totals.frees += sign > 0 ? 1u : (uint64_t)-1;
}

void mh_engine_on_alloc(void *ptr, size_t size, double weight, const mh_frame_t *frames,
                        int depth, unsigned stack_flags, uint64_t hash)
{
    pthread_mutex_lock(&mh_engine.lock);
    if (mh_engine.gen == 0) {
        goto done; /* stop() ran while this thread was in the hook. */
    }
    int is_new;
    uint32_t id = mh_stacks_intern_locked(&mh_engine.stacks, frames, depth, stack_flags,
                                          hash, &is_new);
    if (id == 0) {
        mh_engine.totals.dropped++;
        goto done;
    }
    if (is_new) {
        pin_new_stack_locked(id);
    }
    mh_live_entry_t e = {
        .ptr = (uintptr_t)ptr,
        .size = size,
        .weight = (float)weight,
        .stack = id,
        .epoch = mh_engine.epoch,
        .time_ms = mh_engine_now_ms(),
    };
    mh_site_t *s = mh_sites_get_locked(&mh_engine.sites, id, mh_engine.epoch);
    mh_live_entry_t old;
    int r = s ? mh_live_insert_locked(&mh_engine.live, &e, &old) : MH_ENOMEM;
    if (r < 0) {
        mh_engine.totals.dropped++;
        goto done;
    }
    if (r == 1) {
        account_free_locked(&old, 1.0); /* Its free went unseen. */
        s = mh_sites_get_locked(&mh_engine.sites, id, mh_engine.epoch);
        if (s == NULL) {
            goto done;
        }
    }
    /* Use the stored float weight, so that alloc and free sum the same numbers. */
    double w = (double)e.weight;
    s->alloc_bytes += (double)size * w;
    s->alloc_count += w;
    s->alloc_samples++;
    mh_engine.totals.samples++;
    mh_engine.totals.live_bytes += (double)size * w;
    mh_engine.totals.live_count += w;
    if (mh_engine.totals.live_bytes > mh_engine.totals.peak_bytes) {
        mh_engine.totals.peak_bytes = mh_engine.totals.live_bytes;
    }
    if (mh_engine.alloc_scale > 0.0) {
        alloc_clock_locked((double)size * w); /* After the sample joined its epoch. */
    }
done:
    pthread_mutex_unlock(&mh_engine.lock);
}

int mh_engine_on_free(void *ptr, mh_live_entry_t *saved)
{
    mh_live_entry_t e;
    int found = 0;
    pthread_mutex_lock(&mh_engine.lock);
    if (mh_engine.gen != 0 && mh_live_remove_locked(&mh_engine.live, (uintptr_t)ptr, &e)) {
        account_free_locked(&e, 1.0);
        if (saved != NULL) {
            *saved = e;
        }
        found = 1;
    }
    pthread_mutex_unlock(&mh_engine.lock);
    return found;
}

void mh_engine_restore(const mh_live_entry_t *saved)
{
    mh_live_entry_t old;
    pthread_mutex_lock(&mh_engine.lock);
    if (mh_engine.gen != 0 && mh_live_insert_locked(&mh_engine.live, saved, &old) >= 0) {
        account_free_locked(saved, -1.0);
    }
    pthread_mutex_unlock(&mh_engine.lock);
}

int mh_engine_cohorts_locked(mh_sites_t *out)
{
    const mh_live_t *t = &mh_engine.live;
    int64_t R = mh_sample_bytes;
    for (size_t i = 0; i < t->cap; i++) {
        const mh_live_entry_t *e = &t->slots[i];
        if (e->ptr == 0) {
            continue;
        }
        mh_site_t *c = mh_sites_get_locked(out, e->stack, e->epoch);
        if (c == NULL) {
            return MH_ENOMEM;
        }
        double w = (double)e->weight;
        double y = (double)e->size;
        c->alloc_bytes += y * w;
        c->alloc_count += w;
        /* Horvitz-Thompson variance estimate: sum over samples of
         * (1 - p) / p^2 * y^2 = w (w - 1) y^2. */
        double v = R > 1 ? w * (w - 1.0) : 0.0;
        c->free_bytes += v * y * y;
        c->free_count += v;
        c->alloc_samples++;
    }
    return 0;
}

static void *copy_array(void *(*alloc)(size_t), const void *src, size_t n, size_t size)
{
    void *dst = alloc((n ? n : 1) * size);
    if (dst != NULL && n > 0) {
        memcpy(dst, src, n * size);
    }
    return dst;
}

int mh_engine_copy_locked(mh_engine_copy_t *c, uint32_t first_stack, void *(*alloc)(size_t))
{
    mh_sites_t cohorts = {0};
    int rc = MH_ENOMEM;
    c->sites = alloc((mh_engine.sites.count ? mh_engine.sites.count : 1) * sizeof *c->sites);
    if (c->sites == NULL) {
        goto done;
    }
    c->n_sites = mh_sites_copy_locked(&mh_engine.sites, c->sites);
    if (mh_engine_cohorts_locked(&cohorts) != 0 ||
        (c->cohorts = alloc((cohorts.count ? cohorts.count : 1) * sizeof *c->cohorts)) == NULL) {
        goto done;
    }
    c->n_cohorts = mh_sites_copy_locked(&cohorts, c->cohorts);
    /* Stacks first_stack..count, and the frames they use: the frame pool is
     * filled in id order, so theirs are its tail. */
    uint32_t count = mh_engine.stacks.count;
    const mh_stack_info_t *info = (const mh_stack_info_t *)mh_engine.stacks.info.base;
    size_t used = mh_engine.stacks.frames.used / sizeof(mh_frame_t);
    size_t base = first_stack <= count ? info[first_stack].off : used;
    c->first_stack = first_stack;
    c->n_stacks = first_stack <= count ? count - first_stack + 1 : 0;
    c->n_frames = used - base;
    c->info = copy_array(alloc, info + first_stack, c->n_stacks, sizeof *c->info);
    c->frames = copy_array(alloc, (const mh_frame_t *)mh_engine.stacks.frames.base + base,
                           c->n_frames, sizeof *c->frames);
    c->n_epochs = mh_engine.epochs.used / sizeof(uint64_t);
    c->epochs = copy_array(alloc, mh_engine.epochs.base, c->n_epochs, sizeof *c->epochs);
    if (c->info == NULL || c->frames == NULL || c->epochs == NULL) {
        goto done;
    }
    for (uint32_t k = 0; k < c->n_stacks; k++) {
        c->info[k].off -= (uint32_t)base;
    }
    c->totals = mh_engine.totals;
    c->epoch = mh_engine.epoch;
    c->merges = mh_engine.merges;
    c->stacks = count;
    c->stride = mh_engine.stride;
    c->units = mh_engine.units;
    c->live_entries = mh_engine.live.count;
    c->elapsed_ns = mh_engine_clock_ns() - mh_engine.start_ns;
    rc = 0;
done:
    mh_sites_clear_locked(&cohorts);
    return rc;
}

void mh_engine_copy_free(mh_engine_copy_t *c, void (*release)(void *))
{
    release(c->sites);
    release(c->cohorts);
    release(c->info);
    release(c->frames);
    release(c->epochs);
    c->sites = c->cohorts = NULL;
    c->info = NULL;
    c->frames = NULL;
    c->epochs = NULL;
}
