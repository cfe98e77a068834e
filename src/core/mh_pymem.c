/* mh_pymem: PyMem hooks (see mh_pymem.h).
 *
 * Each hook first calls the allocator it wraps, with the thread marked busy so
 * that the nested calls pymalloc makes (a large PyObject_Malloc goes on to
 * PyMem_RawMalloc) pass straight through and an allocation is counted once, at
 * the outermost domain. A free asks the live table's filter before the block is
 * released: once released, another thread may get the same address. */
#include <Python.h>

#include <errno.h>

#include "mh_engine.h"
#include "mh_pymem.h"
#include "mh_pyframes.h"

typedef struct {
    PyMemAllocatorEx orig; /* Set once before hooks go live. */
    PyMemAllocatorDomain domain;
} domain_t;

static domain_t domains[3] = {
    {.domain = PYMEM_DOMAIN_RAW},
    {.domain = PYMEM_DOMAIN_MEM},
    {.domain = PYMEM_DOMAIN_OBJ},
};
static PyMemAllocatorEx hooks[3]; /* Set once before hooks go live. */
static int installed;             /* Protected by the GIL. */
/* While stop() probes whether memhound's hooks are still reached (see
 * mh_pymem_uninstall), each hook called marks its domain here. */
static _Atomic int probing;
static _Atomic unsigned probe_hits;

/* Walk the stack and hand the sample to the engine. The thread is busy. */
static void record(void *ptr, size_t size, double weight)
{
    int saved_errno = errno;
    int max = mh_engine.max_frames;
    mh_frame_t frames[max > 0 ? max : 1];
    unsigned flags;
    uint64_t hash;
    int depth = mh_pyframes_walk(frames, max, &flags, &hash);
    mh_engine_on_alloc(ptr, size, weight, frames, depth, flags, hash);
    errno = saved_errno;
}

static inline void maybe_record(void *ptr, size_t size)
{
    uint32_t gen = atomic_load_explicit(&mh_sample_gen, memory_order_relaxed);
    if (ptr != NULL && gen != 0) {
        double w = mh_sample_check(size, gen);
        if (w > 0.0) {
            record(ptr, size, w);
        }
    }
}

static inline void *h_malloc(domain_t *d, size_t size)
{
    mh_tls_t *t = &mh_tls;
    if (__builtin_expect(atomic_load_explicit(&probing, memory_order_relaxed), 0)) {
        atomic_fetch_or(&probe_hits, 1u << (unsigned)(d - domains));
    }
    if (t->busy) {
        return d->orig.malloc(d->orig.ctx, size);
    }
    t->busy = 1;
    void *p = d->orig.malloc(d->orig.ctx, size);
    maybe_record(p, size);
    t->busy = 0;
    return p;
}

static inline void *h_calloc(domain_t *d, size_t nelem, size_t elsize)
{
    mh_tls_t *t = &mh_tls;
    if (t->busy) {
        return d->orig.calloc(d->orig.ctx, nelem, elsize);
    }
    t->busy = 1;
    void *p = d->orig.calloc(d->orig.ctx, nelem, elsize);
    maybe_record(p, nelem * elsize); /* p != NULL implies no overflow. */
    t->busy = 0;
    return p;
}

static inline void *h_realloc(domain_t *d, void *ptr, size_t size)
{
    mh_tls_t *t = &mh_tls;
    if (t->busy) {
        return d->orig.realloc(d->orig.ctx, ptr, size);
    }
    t->busy = 1;
    mh_live_entry_t saved;
    int had = 0;
    uint32_t gen = atomic_load_explicit(&mh_sample_gen, memory_order_relaxed);
    if (ptr != NULL && gen != 0 && mh_live_maybe((uintptr_t)ptr)) {
        /* Forget the old block before it can be released and reused. */
        int saved_errno = errno;
        had = mh_engine_on_free(ptr, &saved);
        errno = saved_errno;
    }
    void *p = d->orig.realloc(d->orig.ctx, ptr, size);
    if (p == NULL) {
        if (had) {
            int saved_errno = errno;
            mh_engine_restore(&saved); /* The old block is still there. */
            errno = saved_errno;
        }
    } else {
        maybe_record(p, size);
    }
    t->busy = 0;
    return p;
}

static inline void h_free(domain_t *d, void *ptr)
{
    mh_tls_t *t = &mh_tls;
    if (t->busy) {
        d->orig.free(d->orig.ctx, ptr);
        return;
    }
    t->busy = 1;
    if (ptr != NULL && atomic_load_explicit(&mh_sample_gen, memory_order_relaxed) != 0 &&
        mh_live_maybe((uintptr_t)ptr)) {
        int saved_errno = errno;
        mh_engine_on_free(ptr, NULL);
        errno = saved_errno;
    }
    d->orig.free(d->orig.ctx, ptr);
    t->busy = 0;
}

/* One set of hooks per domain, each knowing its domain statically.
 *
 * PyMem_SetAllocator copies ctx and the four function pointers one by one, and a
 * thread that does not hold the GIL may call PyMem_RawMalloc meanwhile and read
 * a mix of old and new. So the hooks ignore their ctx argument, and are
 * installed with the ctx of the allocator they wrap: whichever mix a racing
 * thread reads, every function gets a ctx it can use. */
#define MH_DOMAIN_HOOKS(NAME, IDX)                                                  \
    static void *NAME##_malloc(void *ctx, size_t size)                             \
    {                                                                              \
        (void)ctx;                                                                 \
        return h_malloc(&domains[IDX], size);                                      \
    }                                                                              \
    static void *NAME##_calloc(void *ctx, size_t nelem, size_t elsize)             \
    {                                                                              \
        (void)ctx;                                                                 \
        return h_calloc(&domains[IDX], nelem, elsize);                             \
    }                                                                              \
    static void *NAME##_realloc(void *ctx, void *ptr, size_t size)                 \
    {                                                                              \
        (void)ctx;                                                                 \
        return h_realloc(&domains[IDX], ptr, size);                                \
    }                                                                              \
    static void NAME##_free(void *ctx, void *ptr)                                  \
    {                                                                              \
        (void)ctx;                                                                 \
        h_free(&domains[IDX], ptr);                                                \
    }

MH_DOMAIN_HOOKS(raw, 0)
MH_DOMAIN_HOOKS(mem, 1)
MH_DOMAIN_HOOKS(obj, 2)

static const PyMemAllocatorEx hook_fns[3] = {
    {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free},
    {NULL, mem_malloc, mem_calloc, mem_realloc, mem_free},
    {NULL, obj_malloc, obj_calloc, obj_realloc, obj_free},
};

int mh_pymem_install(void)
{
    if (installed) {
        return MH_ESTATE;
    }
    for (int i = 0; i < 3; i++) {
        PyMem_GetAllocator(domains[i].domain, &domains[i].orig);
        hooks[i] = hook_fns[i];
        hooks[i].ctx = domains[i].orig.ctx;
    }
    for (int i = 0; i < 3; i++) {
        PyMem_SetAllocator(domains[i].domain, &hooks[i]);
    }
    installed = 1;
    return 0;
}

static int same_allocator(const PyMemAllocatorEx *a, const PyMemAllocatorEx *b)
{
    return a->ctx == b->ctx && a->malloc == b->malloc && a->calloc == b->calloc &&
           a->realloc == b->realloc && a->free == b->free;
}

int mh_pymem_uninstall(void)
{
    if (!installed) {
        return MH_ESTATE;
    }
    int ours = 0, theirs = 0;
    for (int i = 0; i < 3; i++) {
        PyMemAllocatorEx cur;
        PyMem_GetAllocator(domains[i].domain, &cur);
        ours += same_allocator(&cur, &hooks[i]);
        theirs += same_allocator(&cur, &domains[i].orig);
    }
    if (ours == 3) {
        for (int i = 0; i < 3; i++) {
            PyMem_SetAllocator(domains[i].domain, &domains[i].orig);
        }
        installed = 0;
        return 0;
    }
    if (theirs < 3) {
        /* Another tool's allocator is on top. Is memhound still below it? Make
         * one allocation through each domain and see whether a hook is reached
         * (a tool that wrapped memhound and then put back what it had found
         * before memhound cuts memhound out of the chain). */
        atomic_store(&probe_hits, 0);
        atomic_store(&probing, 1);
        PyMem_RawFree(PyMem_RawMalloc(1));
        PyMem_Free(PyMem_Malloc(1));
        PyObject_Free(PyObject_Malloc(1));
        atomic_store(&probing, 0);
        if (atomic_load(&probe_hits) != 0) {
            return MH_EBUSY;
        }
    }
    /* Out of the chain: the allocators in place are what memhound wrapped, or
     * another tool's that no longer reach memhound. */
    installed = 0;
    return MH_EGONE;
}

int mh_pymem_installed(void)
{
    return installed;
}
