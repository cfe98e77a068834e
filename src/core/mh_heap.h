/* mh_heap: the object graph of the live Python heap, for the retention analysis
 * and the census. Nodes are found breadth-first from a list of roots through
 * each object's tp_traverse, so objects the GC does not track (str, bytes, int,
 * float) are found through the containers that hold them. On the graph: the
 * BFS tree (a shortest reference chain from a root to every node), the
 * dominator tree (Cooper, Harvey and Kennedy, "A Simple, Fast Dominance
 * Algorithm", 2001) and the retained size of every node, and the mapping of
 * sampled allocation addresses to the objects (or the buffers of objects) that
 * start there.
 *
 * Everything here runs with the GIL held and calls no Python code except the
 * __sizeof__ of built-in (static) types, which is C; the node array holds
 * borrowed pointers, valid only until the caller next runs Python code or
 * releases the GIL. The caller disables the GC for the duration. Memory comes
 * from the raw allocator (PyMem_Raw*), never from the GC. Python.h. */
#ifndef MH_HEAP_H
#define MH_HEAP_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#define MH_HEAP_NONE UINT32_MAX
#define MH_E2BIG (-7)

typedef struct {
    PyObject **obj;       /* Borrowed. Index = node id, in BFS discovery order. */
    uint32_t *parent;     /* BFS parent, MH_HEAP_NONE for a root. */
    uint32_t *self_size;  /* sys.getsizeof-like size, header included, capped. */
    uint32_t *edge_off;   /* CSR: node i's referents are edge_dst[edge_off[i]..edge_off[i+1]). */
    uint32_t *edge_dst;
    uint64_t *retained;   /* After mh_heap_dominators: bytes freed if the node went away. */
    uint32_t *idom;       /* After mh_heap_dominators: immediate dominator (n = the super root). */
    size_t n, cap;        /* Nodes found / room. */
    size_t ne, ecap;      /* Edges stored / room. */
    size_t done;          /* Nodes whose referents have been visited. */
    size_t max_nodes;     /* Stop (MH_E2BIG) beyond this many nodes. */
    uint32_t *slots;      /* Open addressing: node id + 1, 0 = empty. */
    size_t slot_cap;      /* Power of two. */
    int edges;            /* 0: census mode, no edges kept. */
    size_t garbage_from;  /* After mh_heap_add_unreached: first node id of the
                           * unreachable part (n if none). */
} mh_heap_t;

/* An empty graph. `edges` = 0 keeps no edges (census). Returns 0 or MH_ENOMEM. */
int mh_heap_new(mh_heap_t *h, size_t max_nodes, int edges);
void mh_heap_free(mh_heap_t *h);

/* Node id of `o`, or MH_HEAP_NONE if not in the graph. */
uint32_t mh_heap_find(const mh_heap_t *h, PyObject *o);

/* Add `o` as a root (no parent) unless already present. Returns its node id in
 * *id; 0, MH_ENOMEM or MH_E2BIG. */
int mh_heap_add_root(mh_heap_t *h, PyObject *o, uint32_t *id);

/* Visit the referents of every node not visited yet, adding new nodes as they
 * are met, until none is left. Returns 0, MH_ENOMEM or MH_E2BIG. */
int mh_heap_expand(mh_heap_t *h);

/* Dominator tree over the graph with a virtual super root (id n) whose
 * children are the nodes with no parent, and the retained size of each node.
 * Fills idom and retained. Returns 0 or MH_ENOMEM. */
int mh_heap_dominators(mh_heap_t *h);

/* For GC-tracked objects in `objs` (a list) that are not in the graph: how many
 * references each has from outside such objects (refcount minus references from
 * other such objects and one for the list). Objects with some are added as
 * roots (first, in list order, *n_held of them), then the rest, unreachable
 * cycles (*n_garbage). Returns 0, MH_ENOMEM or MH_E2BIG. */
int mh_heap_add_unreached(mh_heap_t *h, PyObject *objs, size_t *n_held, size_t *n_garbage);

/* Where the allocation holding `o` starts: before the object come the GC header
 * and, on 3.11+, the managed-dict / pre-header words. */
uintptr_t mh_heap_alloc_start(PyObject *o);

/* Separately allocated buffers owned by `o` (list items, dict keys and values,
 * set table, bytearray bytes), their allocation starts written to out[0..max).
 * Returns how many. */
int mh_heap_buffers(PyObject *o, uintptr_t *out, int max);

/* Size of `o` as sys.getsizeof gives it, without calling any __sizeof__ written
 * in Python (user classes count their basic and item size). 0 if unknown. */
size_t mh_heap_sizeof(PyObject *o);

/* A sampled pointer matched to an object of the graph. */
typedef struct {
    uint32_t node;  /* The object (the owner, for a buffer). */
    uint32_t group; /* The sample's group (a leak site). */
    uint8_t kind;   /* 0: the object itself, 1: one of its buffers. */
} mh_heap_match_t;

/* Match `ns` samples, packed as (pointer u64, group in the low 32 bits of the
 * next u64), to the graph's objects and their buffers: out[0..*n) (out holds
 * ns entries; one match per sample at most), sorted by group then node, so
 * in the order the graph was built within a group (breadth first: the
 * shallowest first). Returns 0 or MH_ENOMEM. */
int mh_heap_match(const mh_heap_t *h, const uint64_t *samples, size_t ns, mh_heap_match_t *out,
                  size_t *n);

#endif
