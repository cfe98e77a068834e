/* memhound._core, its second part: who holds the leaked memory (the retention
 * analysis and the census over the object graph of mh_heap) and the free
 * lists. Thin binding, like _core.c: it parses, calls the engine and builds
 * tuples; the algorithms are in src/core/mh_heap.c and mh_freelists.c. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "_core.h"
#include "mh_engine.h"
#include "mh_freelists.h"
#include "mh_heap.h"

/* live_samples(stack_ids) -> bytes: the live sampled allocations of the given
 * stacks (bytes of native uint32 ids; None: all), packed as (ptr u64, size u64,
 * stack u32, epoch u32), 24 bytes each. Taken under tables_lock. */
static PyObject *core_live_samples(PyObject *self, PyObject *arg)
{
    Py_buffer ids = {0};
    int have_ids = arg != Py_None;
    if (have_ids && PyObject_GetBuffer(arg, &ids, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (!mh_binding_require_tracking()) {
        if (have_ids) {
            PyBuffer_Release(&ids);
        }
        return NULL;
    }
    typedef struct {
        uint64_t ptr, size;
        uint32_t stack, epoch;
    } row_t;
    row_t *rows = NULL;
    uint8_t *want = NULL;
    size_t n = 0;
    int oom = 0;
    mh_engine_lock();
    uint32_t n_stacks = mh_engine.stacks.count;
    rows = PyMem_RawMalloc((mh_engine.live.count ? mh_engine.live.count : 1) * sizeof *rows);
    want = PyMem_RawCalloc((size_t)n_stacks + 1, 1);
    if (rows == NULL || want == NULL) {
        oom = 1;
    } else {
        const uint32_t *sid = ids.buf;
        for (size_t i = 0; have_ids && i < (size_t)ids.len / sizeof(uint32_t); i++) {
            if (sid[i] <= n_stacks) {
                want[sid[i]] = 1;
            }
        }
        for (size_t i = 0; i < mh_engine.live.cap; i++) {
            const mh_live_entry_t *e = &mh_engine.live.slots[i];
            if (e->ptr == 0 || (have_ids && (e->stack > n_stacks || !want[e->stack]))) {
                continue;
            }
            rows[n].ptr = e->ptr;
            rows[n].size = e->size;
            rows[n].stack = e->stack;
            rows[n].epoch = e->epoch;
            n++;
        }
    }
    mh_engine_unlock();
    PyObject *out = oom ? PyErr_NoMemory()
                        : PyBytes_FromStringAndSize((const char *)rows, (Py_ssize_t)(n * sizeof *rows));
    PyMem_RawFree(rows);
    PyMem_RawFree(want);
    if (have_ids) {
        PyBuffer_Release(&ids);
    }
    return out;
}

/* "module.Qualname" of a class without running any code of its metaclass;
 * built-in types by their tp_name. New reference. */
static PyObject *type_name_of(PyTypeObject *tp, int qualified)
{
    if (!qualified) {
        const char *dot = strrchr(tp->tp_name, '.');
        if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
            PyObject *q = ((PyHeapTypeObject *)tp)->ht_qualname;
            if (q != NULL && PyUnicode_Check(q)) {
                return Py_NewRef(q);
            }
        }
        return PyUnicode_FromString(dot ? dot + 1 : tp->tp_name);
    }
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
        PyObject *mod = tp->tp_dict ? PyDict_GetItemString(tp->tp_dict, "__module__") : NULL;
        if (ht->ht_qualname != NULL && PyUnicode_Check(ht->ht_qualname)) {
            if (mod != NULL && PyUnicode_Check(mod) &&
                PyUnicode_CompareWithASCIIString(mod, "builtins") != 0) {
                return PyUnicode_FromFormat("%U.%U", mod, ht->ht_qualname);
            }
            return Py_NewRef(ht->ht_qualname);
        }
    }
    return PyUnicode_FromString(tp->tp_name);
}

static PyObject *core_type_name(PyObject *self, PyObject *args)
{
    PyObject *obj;
    int qualified = 0;
    if (!PyArg_ParseTuple(args, "O|p", &obj, &qualified)) {
        return NULL;
    }
    return type_name_of(Py_TYPE(obj), qualified);
}

static PyObject *heap_error(int rc)
{
    if (rc == MH_E2BIG) {
        PyErr_SetString(PyExc_OverflowError, "the heap has more objects than the limit");
        return NULL;
    }
    return PyErr_NoMemory();
}

/* alloc_start(obj) -> (address where its allocation starts, [buffer starts]). */
static PyObject *core_alloc_start(PyObject *self, PyObject *obj)
{
    uintptr_t buf[8];
    int nb = mh_heap_buffers(obj, buf, 8);
    PyObject *l = PyList_New(nb);
    if (l == NULL) {
        return NULL;
    }
    for (int i = 0; i < nb; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong((unsigned long long)buf[i]);
        if (v == NULL) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, v);
    }
    return Py_BuildValue("(KN)", (unsigned long long)mh_heap_alloc_start(obj), l);
}

static PyObject *core_heap_sizeof(PyObject *self, PyObject *obj)
{
    return PyLong_FromSize_t(mh_heap_sizeof(obj));
}

/* forget_free_lists() -> int: report the sampled blocks parked on CPython's
 * free lists as freed (dead objects whose memory CPython kept); returns how
 * many. 0 when not tracking. */
static PyObject *core_forget_free_lists(PyObject *self, PyObject *unused)
{
    return PyLong_FromSize_t(mh_freelists_forget());
}

/* The chain root..node as a tuple of objects, and the retained size of each. */
static PyObject *chain_of(const mh_heap_t *h, uint32_t node, int kind, Py_ssize_t n_roots)
{
    Py_ssize_t depth = 0;
    for (uint32_t v = node; v != MH_HEAP_NONE; v = h->parent[v]) {
        depth++;
    }
    PyObject *objs = PyTuple_New(depth);
    PyObject *sizes = PyTuple_New(depth);
    if (objs == NULL || sizes == NULL) {
        goto error;
    }
    uint32_t v = node, root = node;
    for (Py_ssize_t i = depth - 1; i >= 0; i--, v = h->parent[v]) {
        PyTuple_SET_ITEM(objs, i, Py_NewRef(h->obj[v]));
        PyObject *s = PyLong_FromUnsignedLongLong(h->retained ? h->retained[v] : h->self_size[v]);
        if (s == NULL) {
            goto error;
        }
        PyTuple_SET_ITEM(sizes, i, s);
        root = v;
    }
    /* Which root: its index in `roots`, -1 held from C code, -2 unreachable. */
    long which = root < (uint32_t)n_roots ? (long)root
                 : ((size_t)root >= h->garbage_from ? -2 : -1);
    return Py_BuildValue("(ilNN)", kind, which, objs, sizes);
error:
    Py_XDECREF(objs);
    Py_XDECREF(sizes);
    return NULL;
}

/* heap_retention(roots, extra, samples, n_groups, chains_per_group, max_nodes,
 * dominators) -> (stats, groups).
 *
 * roots: list of root objects (their order breaks ties between equally short
 * chains); extra: a list of GC-tracked objects (gc.get_objects()) whose
 * members not reached from the roots are added after them, held-from-C first,
 * or None; samples: packed (ptr u64, group u32, pad u32) sorted by group.
 * stats: (nodes, edges, roots, held, unreachable). groups[g]: (samples matched,
 * objects matched, their bytes, [(type name, count)], [chain]); a chain is
 * (kind, root index or -1/-2, objects root..target, retained bytes of each). */
static PyObject *core_heap_retention(PyObject *self, PyObject *args)
{
    PyObject *roots, *extra;
    Py_buffer samples;
    Py_ssize_t n_groups, per_group, max_nodes;
    int want_dom;
    if (!PyArg_ParseTuple(args, "O!Oy*nnnp", &PyList_Type, &roots, &extra, &samples,
                          &n_groups, &per_group, &max_nodes, &want_dom)) {
        return NULL;
    }
    if (extra != Py_None && !PyList_Check(extra)) {
        PyBuffer_Release(&samples);
        PyErr_SetString(PyExc_TypeError, "extra must be a list or None");
        return NULL;
    }
    int gc_was = PyGC_Disable();
    mh_heap_t h;
    mh_heap_match_t *matches = NULL;
    size_t n_matches = 0, held = 0, garbage = 0;
    PyObject *result = NULL, *groups = NULL;
    int rc = mh_heap_new(&h, max_nodes > 0 ? (size_t)max_nodes : SIZE_MAX, 1);
    Py_ssize_t n_roots = PyList_GET_SIZE(roots);
    for (Py_ssize_t i = 0; rc == 0 && i < n_roots; i++) {
        uint32_t id;
        rc = mh_heap_add_root(&h, PyList_GET_ITEM(roots, i), &id);
    }
    /* Distinct roots are nodes 0..k-1; a repeated root maps to the first. */
    Py_ssize_t root_nodes = (Py_ssize_t)h.n;
    if (rc == 0) {
        rc = mh_heap_expand(&h);
    }
    if (rc == 0 && extra != Py_None) {
        rc = mh_heap_add_unreached(&h, extra, &held, &garbage);
    }
    if (rc == 0 && want_dom) {
        rc = mh_heap_dominators(&h);
    }
    if (rc != 0) {
        heap_error(rc);
        goto done;
    }
    /* Sampled pointers -> the objects (or their buffers) they start. */
    size_t ns = (size_t)samples.len / 16;
    matches = PyMem_RawMalloc((ns ? ns : 1) * sizeof *matches);
    if (matches == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    rc = mh_heap_match(&h, samples.buf, ns, matches, &n_matches);
    if (rc != 0) {
        heap_error(rc);
        goto done;
    }
    groups = PyList_New(n_groups);
    if (groups == NULL) {
        goto done;
    }
    size_t m = 0;
    for (Py_ssize_t g = 0; g < n_groups; g++) {
        while (m < n_matches && matches[m].group < (uint32_t)g) {
            m++;
        }
        size_t first = m, last = m;
        while (last < n_matches && matches[last].group == (uint32_t)g) {
            last++;
        }
        /* Distinct objects of the group, their bytes and types. */
        size_t n_obj = 0;
        unsigned long long bytes = 0;
        PyObject *types = PyDict_New();
        PyObject *chains = PyList_New(0);
        PyObject *entry = NULL;
        if (types == NULL || chains == NULL) {
            Py_XDECREF(types);
            Py_XDECREF(chains);
            goto done;
        }
        for (size_t k = first; k < last; k++) {
            if (k > first && matches[k].node == matches[k - 1].node) {
                continue;
            }
            n_obj++;
            bytes += h.self_size[matches[k].node];
            PyObject *tn = type_name_of(Py_TYPE(h.obj[matches[k].node]), 0);
            PyObject *c = tn ? PyDict_GetItemWithError(types, tn) : NULL;
            long cnt = c ? PyLong_AsLong(c) : 0;
            PyObject *nc = tn && !PyErr_Occurred() ? PyLong_FromLong(cnt + 1) : NULL;
            int bad = nc == NULL || PyDict_SetItem(types, tn, nc) < 0;
            Py_XDECREF(tn);
            Py_XDECREF(nc);
            if (bad) {
                Py_DECREF(types);
                Py_DECREF(chains);
                goto done;
            }
        }
        /* Chains for up to per_group objects, spread evenly over the matches
         * (which are in BFS order: the shallowest first). */
        size_t span = last - first;
        size_t want = span < (size_t)per_group ? span : (size_t)per_group;
        for (size_t k = 0; k < want; k++) {
            size_t idx = first + (want > 1 ? k * (span - 1) / (want - 1) : 0);
            PyObject *ch = chain_of(&h, matches[idx].node, matches[idx].kind, root_nodes);
            if (ch == NULL || PyList_Append(chains, ch) < 0) {
                Py_XDECREF(ch);
                Py_DECREF(types);
                Py_DECREF(chains);
                goto done;
            }
            Py_DECREF(ch);
        }
        entry = Py_BuildValue("(nnKNN)", (Py_ssize_t)span, (Py_ssize_t)n_obj, bytes,
                              PyDict_Items(types), chains);
        Py_DECREF(types);
        if (entry == NULL) {
            goto done;
        }
        PyList_SET_ITEM(groups, g, entry);
    }
    result = Py_BuildValue("((nnnnn)O)", (Py_ssize_t)h.n, (Py_ssize_t)h.ne, root_nodes,
                           (Py_ssize_t)held, (Py_ssize_t)garbage, groups);
done:
    Py_XDECREF(groups);
    PyMem_RawFree(matches);
    mh_heap_free(&h);
    PyBuffer_Release(&samples);
    if (gc_was) {
        PyGC_Enable();
    }
    return result;
}

/* heap_census(objects, max_nodes) -> [(type name, count)]: every object
 * reachable from `objects` (a list), counted by type; the list itself is not
 * counted. */
static PyObject *core_heap_census(PyObject *self, PyObject *args)
{
    PyObject *objs;
    Py_ssize_t max_nodes;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &objs, &max_nodes)) {
        return NULL;
    }
    int gc_was = PyGC_Disable();
    PyObject *result = NULL;
    mh_heap_t h, types;
    int rc = mh_heap_new(&h, max_nodes > 0 ? (size_t)max_nodes : SIZE_MAX, 0);
    int rc2 = mh_heap_new(&types, SIZE_MAX, 0);
    uint32_t *counts = NULL;
    size_t cap = 0;
    if (rc == 0) {
        rc = rc2;
    }
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(objs); i++) {
        uint32_t id;
        rc = mh_heap_add_root(&h, PyList_GET_ITEM(objs, i), &id);
    }
    if (rc == 0) {
        rc = mh_heap_expand(&h);
    }
    /* Count by type, in a second (edge-less) graph whose nodes are the types. */
    for (size_t i = 0; rc == 0 && i < h.n; i++) {
        uint32_t t;
        rc = mh_heap_add_root(&types, (PyObject *)Py_TYPE(h.obj[i]), &t);
        if (rc == 0 && t >= cap) {
            size_t ncap = cap ? cap * 2 : 256;
            uint32_t *a = PyMem_RawRealloc(counts, ncap * sizeof *a);
            if (a == NULL) {
                rc = MH_ENOMEM;
                break;
            }
            memset(a + cap, 0, (ncap - cap) * sizeof *a);
            counts = a;
            cap = ncap;
        }
        if (rc == 0) {
            counts[t]++;
        }
    }
    if (rc != 0) {
        heap_error(rc);
        goto done;
    }
    result = PyList_New((Py_ssize_t)types.n);
    for (size_t t = 0; result != NULL && t < types.n; t++) {
        PyObject *row = Py_BuildValue("(NI)", type_name_of((PyTypeObject *)types.obj[t], 1),
                                      (unsigned)counts[t]);
        if (row == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, (Py_ssize_t)t, row);
    }
done:
    PyMem_RawFree(counts);
    mh_heap_free(&h);
    mh_heap_free(&types);
    if (gc_was) {
        PyGC_Enable();
    }
    return result;
}

PyMethodDef mh_binding_heap_methods[] = {
    {"live_samples", core_live_samples, METH_O,
     "live_samples(stack_ids or None) -> bytes: live samples as (ptr u64, size u64, stack u32, epoch u32)."},
    {"heap_retention", core_heap_retention, METH_VARARGS,
     "heap_retention(roots, extra, samples, n_groups, chains_per_group, max_nodes, dominators)."},
    {"heap_census", core_heap_census, METH_VARARGS,
     "heap_census(objects, max_nodes) -> [(type name, count)] of everything reachable."},
    {"type_name", core_type_name, METH_VARARGS,
     "type_name(obj, qualified=False) -> str: (module.)qualname of its type, without running its code."},
    {"alloc_start", core_alloc_start, METH_O,
     "alloc_start(obj) -> (address of its allocation, [addresses of its buffers])."},
    {"heap_sizeof", core_heap_sizeof, METH_O,
     "heap_sizeof(obj) -> int: sys.getsizeof without calling Python-level __sizeof__."},
    {"forget_free_lists", core_forget_free_lists, METH_NOARGS,
     "forget_free_lists() -> int: sampled blocks on CPython's free lists become freed; how many."},
    {NULL, NULL, 0, NULL},
};
