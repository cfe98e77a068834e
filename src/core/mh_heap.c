/* mh_heap: the object graph, its dominator tree, and where objects start.
 * Object layouts are read through CPython's own internal headers, one section
 * per version where they differ, so that a mismatch fails to compile. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_gc.h>
#include <internal/pycore_object.h>
#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_dict.h>
#endif

#include "mh_heap.h"

#include <stdlib.h>
#include <string.h>

#include "mh_arena.h"

#if PY_VERSION_HEX < 0x030A0000 || PY_VERSION_HEX >= 0x030E0000
#error "memhound supports CPython 3.10 to 3.13"
#endif

/* -- where objects start ---------------------------------------------------- */

uintptr_t mh_heap_alloc_start(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
#if PY_VERSION_HEX >= 0x030B0000
    /* 3.11: GC header + (managed dict) two words; 3.12, 3.13: GC header +
     * (Py_TPFLAGS_PREHEADER: managed dict or weakref list) two words. */
    return (uintptr_t)o - _PyType_PreHeaderSize(tp);
#else
    return (uintptr_t)o - (PyType_IS_GC(tp) ? sizeof(PyGC_Head) : 0);
#endif
}

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
/* 3.11, 3.12: a split dict's values array is allocated with a prefix whose
 * size is stored in the byte just before the values. */
static uintptr_t values_start(PyDictValues *v)
{
    return (uintptr_t)v - ((uint8_t *)v)[-1];
}
#endif

static int dict_buffers(PyDictObject *d, uintptr_t *out, int max)
{
    int n = 0;
    if (n < max && d->ma_keys != NULL) {
        out[n++] = (uintptr_t)d->ma_keys;
    }
    if (n < max && d->ma_values != NULL) {
#if PY_VERSION_HEX >= 0x030D0000
        if (!d->ma_values->embedded) {
            out[n++] = (uintptr_t)d->ma_values;
        }
#elif PY_VERSION_HEX >= 0x030B0000
        out[n++] = values_start(d->ma_values);
#else
        out[n++] = (uintptr_t)d->ma_values;
#endif
    }
    return n;
}

int mh_heap_buffers(PyObject *o, uintptr_t *out, int max)
{
    int n = 0;
    PyTypeObject *tp = Py_TYPE(o);
    if (PyList_Check(o)) {
        PyListObject *l = (PyListObject *)o;
        if (l->ob_item != NULL && n < max) {
            out[n++] = (uintptr_t)l->ob_item;
        }
    } else if (PyDict_Check(o)) {
        n += dict_buffers((PyDictObject *)o, out + n, max - n);
    } else if (PyAnySet_Check(o)) {
        PySetObject *s = (PySetObject *)o;
        if (s->table != s->smalltable && n < max) {
            out[n++] = (uintptr_t)s->table;
        }
    } else if (PyByteArray_Check(o)) {
        PyByteArrayObject *b = (PyByteArrayObject *)o;
        if (b->ob_bytes != NULL && n < max) {
            out[n++] = (uintptr_t)b->ob_bytes;
        }
    }
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
    /* An instance's attribute values (3.12: in the pre-header, dict or values). */
    if ((tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) && n < max) {
        PyDictOrValues dv = *_PyObject_DictOrValuesPointer(o);
        if (_PyDictOrValues_IsValues(dv) && _PyDictOrValues_GetValues(dv) != NULL) {
            out[n++] = values_start(_PyDictOrValues_GetValues(dv));
        }
    }
#elif PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    if ((tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) && n < max) {
        PyDictValues *v = *_PyObject_ValuesPointer(o);
        if (v != NULL) {
            out[n++] = values_start(v);
        }
    }
#else
    (void)tp;
#endif
    return n;
}

/* -- sizes ------------------------------------------------------------------ */

static PyObject *sizeof_name; /* Interned "__sizeof__". GIL. */

size_t mh_heap_sizeof(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    size_t pre = (size_t)((uintptr_t)o - mh_heap_alloc_start(o));
    /* The nearest built-in base: its __sizeof__ is C and has no side effects. A
     * __sizeof__ defined in Python is never called. */
    PyTypeObject *base = tp;
    while (base != NULL && (base->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        base = base->tp_base;
    }
    if (base != NULL && base != &PyBaseObject_Type) {
        if (sizeof_name == NULL) {
            sizeof_name = PyUnicode_InternFromString("__sizeof__");
            if (sizeof_name == NULL) {
                PyErr_Clear();
                return 0;
            }
        }
        PyObject *descr = _PyType_Lookup(base, sizeof_name); /* Borrowed. */
        if (descr != NULL && Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
            PyObject *r = PyObject_CallOneArg(descr, o);
            if (r == NULL) {
                PyErr_Clear();
                return 0;
            }
            Py_ssize_t s = PyLong_AsSsize_t(r);
            Py_DECREF(r);
            if (s < 0) {
                PyErr_Clear();
                return 0;
            }
            return (size_t)s + pre;
        }
    }
    Py_ssize_t size = tp->tp_basicsize;
    if (tp->tp_itemsize) {
        Py_ssize_t items = Py_SIZE(o);
        size += (items < 0 ? -items : items) * tp->tp_itemsize;
    }
    return (size_t)size + pre;
}

/* -- the graph ------------------------------------------------------------- */

static inline size_t slot_of(uintptr_t p, size_t cap)
{
    uint64_t x = ((uint64_t)p ^ ((uint64_t)p >> 21)) * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 17) & (cap - 1);
}

static void *grow_array(void *p, size_t elem, size_t ncap)
{
    return PyMem_RawRealloc(p, elem * (ncap ? ncap : 1));
}

int mh_heap_new(mh_heap_t *h, size_t max_nodes, int edges)
{
    memset(h, 0, sizeof *h);
    h->max_nodes = max_nodes < MH_HEAP_NONE - 1 ? max_nodes : MH_HEAP_NONE - 2;
    h->edges = edges;
    h->garbage_from = SIZE_MAX;
    h->slot_cap = 1u << 16;
    h->slots = PyMem_RawCalloc(h->slot_cap, sizeof *h->slots);
    return h->slots ? 0 : MH_ENOMEM;
}

void mh_heap_free(mh_heap_t *h)
{
    PyMem_RawFree(h->obj);
    PyMem_RawFree(h->parent);
    PyMem_RawFree(h->self_size);
    PyMem_RawFree(h->edge_off);
    PyMem_RawFree(h->edge_dst);
    PyMem_RawFree(h->retained);
    PyMem_RawFree(h->idom);
    PyMem_RawFree(h->slots);
    memset(h, 0, sizeof *h);
}

uint32_t mh_heap_find(const mh_heap_t *h, PyObject *o)
{
    size_t mask = h->slot_cap - 1;
    for (size_t j = slot_of((uintptr_t)o, h->slot_cap);; j = (j + 1) & mask) {
        uint32_t v = h->slots[j];
        if (v == 0) {
            return MH_HEAP_NONE;
        }
        if (h->obj[v - 1] == o) {
            return v - 1;
        }
    }
}

static int rehash(mh_heap_t *h)
{
    size_t ncap = h->slot_cap * 2;
    uint32_t *ns = PyMem_RawCalloc(ncap, sizeof *ns);
    if (ns == NULL) {
        return MH_ENOMEM;
    }
    for (size_t i = 0; i < h->n; i++) {
        size_t j = slot_of((uintptr_t)h->obj[i], ncap);
        while (ns[j] != 0) {
            j = (j + 1) & (ncap - 1);
        }
        ns[j] = (uint32_t)i + 1;
    }
    PyMem_RawFree(h->slots);
    h->slots = ns;
    h->slot_cap = ncap;
    return 0;
}

/* Find or add `o`; *id gets its node id, *fresh whether it was added. */
static int intern_node(mh_heap_t *h, PyObject *o, uint32_t parent, uint32_t *id, int *fresh)
{
    size_t mask = h->slot_cap - 1;
    size_t j = slot_of((uintptr_t)o, h->slot_cap);
    for (;; j = (j + 1) & mask) {
        uint32_t v = h->slots[j];
        if (v == 0) {
            break;
        }
        if (h->obj[v - 1] == o) {
            *id = v - 1;
            *fresh = 0;
            return 0;
        }
    }
    if (h->n >= h->max_nodes) {
        return MH_E2BIG;
    }
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 4096;
        void *a = grow_array(h->obj, sizeof *h->obj, ncap);
        if (a == NULL) {
            return MH_ENOMEM;
        }
        h->obj = a;
        a = grow_array(h->parent, sizeof *h->parent, ncap);
        if (a == NULL) {
            return MH_ENOMEM;
        }
        h->parent = a;
        a = grow_array(h->self_size, sizeof *h->self_size, ncap);
        if (a == NULL) {
            return MH_ENOMEM;
        }
        h->self_size = a;
        if (h->edges) {
            a = grow_array(h->edge_off, sizeof *h->edge_off, ncap + 2);
            if (a == NULL) {
                return MH_ENOMEM;
            }
            h->edge_off = a;
        }
        h->cap = ncap;
    }
    uint32_t i = (uint32_t)h->n++;
    h->obj[i] = o;
    h->parent[i] = parent;
    size_t s = h->edges ? mh_heap_sizeof(o) : 0;
    h->self_size[i] = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
    h->slots[j] = i + 1;
    *id = i;
    *fresh = 1;
    /* Keep the load under one half. */
    if (h->n * 2 > h->slot_cap) {
        return rehash(h);
    }
    return 0;
}

int mh_heap_add_root(mh_heap_t *h, PyObject *o, uint32_t *id)
{
    int fresh;
    return intern_node(h, o, MH_HEAP_NONE, id, &fresh);
}

typedef struct {
    mh_heap_t *h;
    uint32_t from;
    int rc;
} visit_t;

static int visit(PyObject *o, void *arg)
{
    visit_t *v = arg;
    mh_heap_t *h = v->h;
    uint32_t id;
    int fresh;
    if (o == NULL) {
        return 0;
    }
    v->rc = intern_node(h, o, v->from, &id, &fresh);
    if (v->rc != 0) {
        return 1; /* Stops the traversal. */
    }
    if (h->edges) {
        if (h->ne == h->ecap) {
            size_t ncap = h->ecap ? h->ecap * 2 : 16384;
            void *a = grow_array(h->edge_dst, sizeof *h->edge_dst, ncap);
            if (a == NULL) {
                v->rc = MH_ENOMEM;
                return 1;
            }
            h->edge_dst = a;
            h->ecap = ncap;
        }
        h->edge_dst[h->ne++] = id;
    }
    return 0;
}

/* Objects whose referents are visited: those the GC would traverse. Static
 * types are left out (type_traverse refuses them, as the collector does). */
static inline int traversable(PyObject *o)
{
    return PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse != NULL;
}

int mh_heap_expand(mh_heap_t *h)
{
    visit_t v = {h, 0, 0};
    while (h->done < h->n) {
        uint32_t i = (uint32_t)h->done;
        if (h->edges) {
            h->edge_off[i] = (uint32_t)h->ne;
        }
        PyObject *o = h->obj[i];
        if (traversable(o)) {
            v.from = i;
            Py_TYPE(o)->tp_traverse(o, visit, &v);
            if (v.rc != 0) {
                return v.rc;
            }
        }
        h->done++;
        if (h->edges) {
            h->edge_off[i + 1] = (uint32_t)h->ne;
        }
        if (h->ne >= UINT32_MAX - 1024) {
            return MH_E2BIG;
        }
    }
    return 0;
}

typedef struct {
    mh_heap_t *c;
    Py_ssize_t *ext;
} probe_t;

/* A reference from one candidate to another: not an outside reference. */
static int probe_visit(PyObject *o, void *arg)
{
    probe_t *p = arg;
    uint32_t id = o ? mh_heap_find(p->c, o) : MH_HEAP_NONE;
    if (id != MH_HEAP_NONE) {
        p->ext[id]--;
    }
    return 0;
}

int mh_heap_add_unreached(mh_heap_t *h, PyObject *objs, size_t *n_held, size_t *n_garbage)
{
    /* Candidates: tracked objects not in the graph yet, with an internal
     * reference count, in a small graph of their own (no edges kept). */
    int rc = 0;
    mh_heap_t c;
    Py_ssize_t len = PyList_GET_SIZE(objs);
    Py_ssize_t *ext = NULL;
    *n_held = *n_garbage = 0;
    if ((rc = mh_heap_new(&c, (size_t)len + 1, 0)) != 0) {
        return rc;
    }
    for (Py_ssize_t k = 0; k < len; k++) {
        PyObject *o = PyList_GET_ITEM(objs, k);
        uint32_t id;
        int fresh;
        if (mh_heap_find(h, o) == MH_HEAP_NONE &&
            (rc = intern_node(&c, o, MH_HEAP_NONE, &id, &fresh)) != 0) {
            goto done;
        }
    }
    ext = PyMem_RawCalloc(c.n ? c.n : 1, sizeof *ext);
    if (ext == NULL) {
        rc = MH_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < c.n; i++) {
        ext[i] = Py_REFCNT(c.obj[i]) - 1; /* One is the list's. */
    }
    /* Subtract the references they hold on one another (as the collector's
     * subtract_refs does). */
    for (size_t i = 0; i < c.n; i++) {
        PyObject *o = c.obj[i];
        if (!traversable(o)) {
            continue;
        }
        probe_t p = {&c, ext};
        Py_TYPE(o)->tp_traverse(o, probe_visit, &p);
    }
    /* Held from outside first, then the rest. */
    h->garbage_from = h->n;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            h->garbage_from = h->n;
        }
        for (size_t i = 0; i < c.n; i++) {
            int held = ext[i] > 0;
            if (held != (pass == 0)) {
                continue;
            }
            uint32_t id;
            int fresh;
            rc = intern_node(h, c.obj[i], MH_HEAP_NONE, &id, &fresh);
            if (rc != 0) {
                goto done;
            }
            if (fresh) {
                if (pass == 0) {
                    (*n_held)++;
                } else {
                    (*n_garbage)++;
                }
            }
            if (pass == 0 || fresh) {
                /* Reach what it holds before the next root, so that a
                 * garbage object reached from another is not a root itself. */
                if ((rc = mh_heap_expand(h)) != 0) {
                    goto done;
                }
            }
        }
    }
done:
    PyMem_RawFree(ext);
    mh_heap_free(&c);
    return rc;
}

/* -- dominators ------------------------------------------------------------- */

int mh_heap_dominators(mh_heap_t *h)
{
    int rc = MH_ENOMEM;
    size_t n = h->n, total = n + 1; /* Node n: the super root. */
    uint32_t S = (uint32_t)n;
    uint32_t *po = NULL, *order = NULL, *stack = NULL, *next = NULL, *pred_off = NULL,
             *pred = NULL, *idom = NULL;
    uint64_t *ret = NULL;
    size_t n_roots = 0;
    for (size_t i = 0; i < n; i++) {
        n_roots += h->parent[i] == MH_HEAP_NONE;
    }
    size_t ne = h->ne + n_roots;
    po = PyMem_RawMalloc(total * sizeof *po);
    order = PyMem_RawMalloc(total * sizeof *order);
    stack = PyMem_RawMalloc(total * sizeof *stack);
    next = PyMem_RawMalloc(total * sizeof *next);
    pred_off = PyMem_RawCalloc(total + 1, sizeof *pred_off);
    pred = PyMem_RawMalloc((ne ? ne : 1) * sizeof *pred);
    idom = PyMem_RawMalloc(total * sizeof *idom);
    ret = PyMem_RawCalloc(total, sizeof *ret);
    if (!po || !order || !stack || !next || !pred_off || !pred || !idom || !ret) {
        goto done;
    }
    /* Predecessors (CSR). The super root's successors are the roots, in id order. */
    for (size_t e = 0; e < h->ne; e++) {
        pred_off[h->edge_dst[e] + 1]++;
    }
    for (size_t i = 0; i < n; i++) {
        if (h->parent[i] == MH_HEAP_NONE) {
            pred_off[i + 1]++;
        }
    }
    for (size_t i = 0; i < total; i++) {
        pred_off[i + 1] += pred_off[i];
    }
    memcpy(next, pred_off, total * sizeof *next);
    for (size_t i = 0; i < n; i++) {
        if (h->parent[i] == MH_HEAP_NONE) {
            pred[next[i]++] = S;
        }
        for (uint32_t e = h->edge_off[i]; e < h->edge_off[i + 1]; e++) {
            uint32_t d = h->edge_dst[e];
            pred[next[d]++] = (uint32_t)i;
        }
    }
    /* Iterative depth-first search from the super root: post-order numbers.
     * next[v] is the position in v's successor list (for S: the next root id
     * to look at). */
    for (size_t i = 0; i < total; i++) {
        po[i] = MH_HEAP_NONE;
    }
    size_t sp = 0, counter = 0;
    stack[sp++] = S;
    next[S] = 0;
    po[S] = MH_HEAP_NONE - 1; /* Visited, not finished. */
    while (sp > 0) {
        uint32_t v = stack[sp - 1];
        uint32_t w = MH_HEAP_NONE;
        if (v == S) {
            while (next[S] < n && w == MH_HEAP_NONE) {
                uint32_t r = next[S]++;
                if (h->parent[r] == MH_HEAP_NONE && po[r] == MH_HEAP_NONE) {
                    w = r;
                }
            }
        } else {
            while (next[v] < h->edge_off[v + 1] && w == MH_HEAP_NONE) {
                uint32_t d = h->edge_dst[next[v]++];
                if (po[d] == MH_HEAP_NONE) {
                    w = d;
                }
            }
        }
        if (w != MH_HEAP_NONE) {
            po[w] = MH_HEAP_NONE - 1;
            next[w] = w == S ? 0 : h->edge_off[w];
            stack[sp++] = w;
        } else {
            po[v] = (uint32_t)counter;
            order[counter++] = v; /* order[k]: the node with post-order number k. */
            sp--;
        }
    }
    /* Cooper-Harvey-Kennedy: iterate in reverse post-order until stable. */
    for (size_t i = 0; i < total; i++) {
        idom[i] = MH_HEAP_NONE;
    }
    idom[S] = S;
    int changed = 1;
    while (changed) {
        changed = 0;
        for (size_t k = counter - 1; k-- > 0;) { /* order[counter-1] is S. */
            uint32_t b = order[k];
            uint32_t nd = MH_HEAP_NONE;
            for (uint32_t e = pred_off[b]; e < pred_off[b + 1]; e++) {
                uint32_t p = pred[e];
                if (idom[p] == MH_HEAP_NONE) {
                    continue;
                }
                if (nd == MH_HEAP_NONE) {
                    nd = p;
                    continue;
                }
                uint32_t f1 = p, f2 = nd;
                while (f1 != f2) {
                    while (po[f1] < po[f2]) {
                        f1 = idom[f1];
                    }
                    while (po[f2] < po[f1]) {
                        f2 = idom[f2];
                    }
                }
                nd = f1;
            }
            if (idom[b] != nd) {
                idom[b] = nd;
                changed = 1;
            }
        }
    }
    /* Retained sizes: a node's own size plus those it dominates, summed from
     * the leaves of the dominator tree up (increasing post-order). */
    for (size_t i = 0; i < n; i++) {
        ret[i] = h->self_size[i];
    }
    for (size_t k = 0; k + 1 < counter; k++) {
        uint32_t v = order[k];
        if (idom[v] != MH_HEAP_NONE && idom[v] != v) {
            ret[idom[v]] += ret[v];
        }
    }
    PyMem_RawFree(h->retained);
    PyMem_RawFree(h->idom);
    h->retained = ret;
    h->idom = idom;
    ret = NULL;
    idom = NULL;
    rc = 0;
done:
    PyMem_RawFree(po);
    PyMem_RawFree(order);
    PyMem_RawFree(stack);
    PyMem_RawFree(next);
    PyMem_RawFree(pred_off);
    PyMem_RawFree(pred);
    PyMem_RawFree(idom);
    PyMem_RawFree(ret);
    return rc;
}

/* -- matching sampled pointers to objects ----------------------------------- */

typedef struct {
    const uint64_t *key; /* Pairs (ptr, group). */
    uint32_t *slots;     /* Sample index + 1; 0: empty. */
    size_t cap;          /* A power of two. */
} ptrmap_t;

static uint32_t ptrmap_find(const ptrmap_t *m, uint64_t p)
{
    for (size_t j = slot_of((uintptr_t)p, m->cap);; j = (j + 1) & (m->cap - 1)) {
        uint32_t v = m->slots[j];
        if (v == 0) {
            return MH_HEAP_NONE;
        }
        if (m->key[2 * (size_t)(v - 1)] == p) {
            return v - 1;
        }
    }
}

static int match_cmp(const void *a, const void *b)
{
    const mh_heap_match_t *x = a, *y = b;
    if (x->group != y->group) {
        return x->group < y->group ? -1 : 1;
    }
    return x->node < y->node ? -1 : x->node > y->node;
}

int mh_heap_match(const mh_heap_t *h, const uint64_t *samples, size_t ns, mh_heap_match_t *out,
                  size_t *n)
{
    *n = 0;
    if (ns == 0) {
        return 0;
    }
    ptrmap_t pm = {samples, NULL, 16};
    while (pm.cap < ns * 2 + 2) {
        pm.cap *= 2;
    }
    pm.slots = PyMem_RawCalloc(pm.cap, sizeof *pm.slots);
    if (pm.slots == NULL) {
        return MH_ENOMEM;
    }
    for (size_t i = 0; i < ns; i++) {
        size_t j = slot_of((uintptr_t)samples[2 * i], pm.cap);
        while (pm.slots[j] != 0 && samples[2 * (size_t)(pm.slots[j] - 1)] != samples[2 * i]) {
            j = (j + 1) & (pm.cap - 1);
        }
        pm.slots[j] = (uint32_t)i + 1;
    }
    size_t k = 0;
    for (size_t v = 0; v < h->n && k < ns; v++) {
        PyObject *o = h->obj[v];
        uintptr_t buf[8];
        uint32_t s = ptrmap_find(&pm, mh_heap_alloc_start(o));
        if (s != MH_HEAP_NONE) {
            out[k++] = (mh_heap_match_t){(uint32_t)v, (uint32_t)(samples[2 * s + 1] & 0xFFFFFFFF), 0};
        }
        int nb = mh_heap_buffers(o, buf, 8);
        for (int b = 0; b < nb && k < ns; b++) {
            s = ptrmap_find(&pm, buf[b]);
            if (s != MH_HEAP_NONE) {
                out[k++] = (mh_heap_match_t){(uint32_t)v, (uint32_t)(samples[2 * s + 1] & 0xFFFFFFFF), 1};
            }
        }
    }
    PyMem_RawFree(pm.slots);
    qsort(out, k, sizeof *out, match_cmp);
    *n = k;
    return 0;
}
