/* mh_freelists: the blocks parked on CPython's free lists (see mh_freelists.h).
 * One section per CPython version. Where the lists live:
 *
 *   3.10          interp->{tuple, float_state, list, dict_state, frame,
 *                 async_gen, context, exc_state}, interp->slice_cache
 *   3.11, 3.12    the same without frames (3.12 adds the dtoa Bigint lists)
 *   3.13          interp->object_state.freelists (struct _Py_object_freelists),
 *                 plus exc_state and dtoa
 *
 * How each list is chained (from CPython's Objects/ *object.c):
 *   tuples    one list per size, through ob_item[0]; 3.10 indexes by size
 *             (entry 0 is the live empty tuple, not a free block), 3.11+ by
 *             size - 1
 *   floats    through ob_type
 *   contexts  through ctx_weakreflist
 *   frames    (3.10) through f_back
 *   MemoryError through its dict field
 *   Bigints   through next
 *   lists, dicts, dict keys, async generator asend and wrapped values:
 *             arrays of numfree pointers
 *   slices    one cached slice
 * Every walk stops after the list's own count, so a list that is being changed
 * (impossible with the GIL held) could not make it run away. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_gc.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_object.h>
#if PY_VERSION_HEX < 0x030B0000
#include <frameobject.h>
#include <internal/pycore_context.h>
#endif
#if PY_VERSION_HEX >= 0x030D0000
#include <internal/pycore_freelist.h>
#include <internal/pycore_object_stack.h>
#endif

#include "mh_freelists.h"

#include "mh_engine.h"

#if PY_VERSION_HEX < 0x030A0000 || PY_VERSION_HEX >= 0x030E0000
#error "memhound supports CPython 3.10 to 3.13"
#endif

/* Where the allocation of an object of type `tp` at `o` starts: the GC header
 * (and on 3.11+ any pre-header) comes first. None of the free-listed types has
 * a managed dict, so this is the GC header or nothing. */
static inline uintptr_t start_of(const void *o, PyTypeObject *tp)
{
#if PY_VERSION_HEX >= 0x030B0000
    return (uintptr_t)o - _PyType_PreHeaderSize(tp);
#else
    return (uintptr_t)o - (PyType_IS_GC(tp) ? sizeof(PyGC_Head) : 0);
#endif
}

/* Async generator wrapped values are GC objects without a pre-header; their
 * type is not exported on every version, so the header size is used directly. */
static inline uintptr_t gc_start(const void *o)
{
    return (uintptr_t)o - sizeof(PyGC_Head);
}

typedef struct {
    mh_freelists_visit_t visit;
    void *arg;
    size_t n;
} walker_t;

static inline void emit(walker_t *w, uintptr_t start)
{
    w->visit(start, w->arg);
    w->n++;
}

/* Lists of objects chained through a field of their own. */
static void walk_tuples(walker_t *w, PyTupleObject *const *heads, const int *counts, int n_lists)
{
    for (int i = 0; i < n_lists; i++) {
        PyTupleObject *t = heads[i];
        for (int k = 0; t != NULL && k < counts[i]; k++) {
            PyTupleObject *next = (PyTupleObject *)t->ob_item[0];
            emit(w, start_of(t, &PyTuple_Type));
            t = next;
        }
    }
}

static void walk_floats(walker_t *w, PyFloatObject *f, int count)
{
    for (int k = 0; f != NULL && k < count; k++) {
        PyFloatObject *next = (PyFloatObject *)Py_TYPE(f);
        emit(w, start_of(f, &PyFloat_Type));
        f = next;
    }
}

static void walk_contexts(walker_t *w, PyContext *c, int count)
{
    for (int k = 0; c != NULL && k < count; k++) {
        PyContext *next = (PyContext *)c->ctx_weakreflist;
        emit(w, start_of(c, &PyContext_Type));
        c = next;
    }
}

static void walk_memerrors(walker_t *w, PyBaseExceptionObject *e, int count)
{
    for (int k = 0; e != NULL && k < count; k++) {
        PyBaseExceptionObject *next = (PyBaseExceptionObject *)e->dict;
        emit(w, start_of(e, (PyTypeObject *)PyExc_MemoryError));
        e = next;
    }
}

/* Arrays of numfree pointers. */
static void walk_array(walker_t *w, void *const *items, int count, PyTypeObject *tp)
{
    for (int k = 0; k < count; k++) {
        if (items[k] != NULL) {
            emit(w, tp != NULL ? start_of(items[k], tp) : (uintptr_t)items[k]);
        }
    }
}

static void walk_gc_array(walker_t *w, void *const *items, int count)
{
    for (int k = 0; k < count; k++) {
        if (items[k] != NULL) {
            emit(w, gc_start(items[k]));
        }
    }
}

static void walk_slice(walker_t *w, PySliceObject *s)
{
    if (s != NULL) {
        emit(w, start_of(s, &PySlice_Type));
    }
}

#if PY_VERSION_HEX >= 0x030C0000
/* dtoa's Bigints (3.12+): one list per size class, through next. Blocks carved
 * from the interpreter's preallocated area were never allocated, so they are
 * never samples; only those from PyMem_Malloc can be. The lists have no count:
 * the walk stops at a generous bound. */
static void walk_bigints(walker_t *w, PyInterpreterState *interp)
{
#ifndef Py_USING_MEMORY_DEBUGGER
    for (int k = 0; k <= Bigint_Kmax; k++) {
        struct Bigint *b = interp->dtoa.freelist[k];
        for (int i = 0; b != NULL && i < 100000; i++) {
            emit(w, (uintptr_t)b);
            b = b->next;
        }
    }
#else
    (void)w;
    (void)interp;
#endif
}
#endif

size_t mh_freelists_walk(mh_freelists_visit_t visit, void *arg)
{
    walker_t w = {visit, arg, 0};
    PyInterpreterState *interp = PyInterpreterState_Get();
#if PY_VERSION_HEX >= 0x030D0000
#ifdef Py_GIL_DISABLED
    /* Free-threaded builds keep free lists per thread state, which other
     * threads change without a lock that could be taken here: not walked. */
    (void)interp;
    return 0;
#else
    struct _Py_object_freelists *fl = &interp->object_state.freelists;
#ifdef WITH_FREELISTS
    walk_tuples(&w, fl->tuples.items, fl->tuples.numfree, PyTuple_NFREELISTS);
    walk_floats(&w, fl->floats.items, fl->floats.numfree);
    walk_array(&w, (void *const *)fl->lists.items, fl->lists.numfree, &PyList_Type);
    walk_array(&w, (void *const *)fl->dicts.items, fl->dicts.numfree, &PyDict_Type);
    walk_array(&w, (void *const *)fl->dictkeys.items, fl->dictkeys.numfree, NULL);
    walk_slice(&w, fl->slices.slice_cache);
    walk_contexts(&w, fl->contexts.items, fl->contexts.numfree);
    walk_gc_array(&w, (void *const *)fl->async_gens.items, fl->async_gens.numfree);
    walk_array(&w, (void *const *)fl->async_gen_asends.items, fl->async_gen_asends.numfree,
               &_PyAsyncGenASend_Type);
#endif
    {
        _PyObjectStackChunk *c = fl->object_stacks.items;
        for (Py_ssize_t k = 0; c != NULL && k < fl->object_stacks.numfree; k++) {
            emit(&w, (uintptr_t)c);
            c = c->prev;
        }
    }
    walk_memerrors(&w, interp->exc_state.memerrors_freelist, interp->exc_state.memerrors_numfree);
    walk_bigints(&w, interp);
#endif
#else /* 3.10 to 3.12 */
#if PY_VERSION_HEX >= 0x030B0000
#if PyTuple_NFREELISTS > 0
    /* Index size - 1: sizes 1 .. PyTuple_MAXSAVESIZE. */
    walk_tuples(&w, interp->tuple.free_list, interp->tuple.numfree, PyTuple_NFREELISTS);
#endif
#else
    /* Index = size; entry 0 is the empty tuple singleton, which is alive. */
    walk_tuples(&w, interp->tuple.free_list + 1, interp->tuple.numfree + 1,
                PyTuple_MAXSAVESIZE - 1);
#endif
#if PY_VERSION_HEX < 0x030B0000 || PyFloat_MAXFREELIST > 0
    walk_floats(&w, interp->float_state.free_list, interp->float_state.numfree);
#endif
#if PY_VERSION_HEX < 0x030B0000 || PyList_MAXFREELIST > 0
    walk_array(&w, (void *const *)interp->list.free_list, interp->list.numfree, &PyList_Type);
#endif
#if PY_VERSION_HEX < 0x030B0000 || PyDict_MAXFREELIST > 0
    walk_array(&w, (void *const *)interp->dict_state.free_list, interp->dict_state.numfree,
               &PyDict_Type);
    walk_array(&w, (void *const *)interp->dict_state.keys_free_list,
               interp->dict_state.keys_numfree, NULL);
#endif
    walk_slice(&w, interp->slice_cache);
#if PY_VERSION_HEX < 0x030B0000 || PyContext_MAXFREELIST > 0
    walk_contexts(&w, interp->context.freelist, interp->context.numfree);
#endif
#if PY_VERSION_HEX < 0x030B0000 || _PyAsyncGen_MAXFREELIST > 0
    walk_gc_array(&w, (void *const *)interp->async_gen.value_freelist,
                  interp->async_gen.value_numfree);
    walk_array(&w, (void *const *)interp->async_gen.asend_freelist,
               interp->async_gen.asend_numfree, &_PyAsyncGenASend_Type);
#endif
    walk_memerrors(&w, interp->exc_state.memerrors_freelist, interp->exc_state.memerrors_numfree);
#if PY_VERSION_HEX < 0x030B0000
    {
        /* Frames (3.10 only; 3.11 dropped the list), chained through f_back.
         * The one "zombie" frame each code object keeps is not on the list. */
        PyFrameObject *f = interp->frame.free_list;
        for (int k = 0; f != NULL && k < interp->frame.numfree; k++) {
            PyFrameObject *next = f->f_back;
            emit(&w, start_of(f, &PyFrame_Type));
            f = next;
        }
    }
#endif
#if PY_VERSION_HEX >= 0x030C0000
    walk_bigints(&w, interp);
#endif
#endif
    return w.n;
}

typedef struct {
    size_t forgotten;
} forget_t;

static void forget_one(uintptr_t start, void *arg)
{
    forget_t *f = arg;
    if (start != 0 && mh_live_maybe(start) && mh_engine_on_free((void *)start, NULL)) {
        f->forgotten++;
    }
}

size_t mh_freelists_forget(void)
{
    forget_t f = {0};
    if (atomic_load(&mh_sample_gen) == 0) {
        return 0;
    }
    /* Busy, as in a hook: nothing this thread allocates meanwhile is sampled. */
    mh_tls.busy++;
    mh_freelists_walk(forget_one, &f);
    mh_tls.busy--;
    return f.forgotten;
}
