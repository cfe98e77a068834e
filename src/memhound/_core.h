/* The parts of the memhound._core binding: _core.c (tracking, epochs,
 * snapshots, the background thread) and _core_heap.c (retention, census, free
 * lists). Only the binding raises Python exceptions. */
#ifndef MH_CORE_BINDING_H
#define MH_CORE_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* 1 while tracking; else 0 with RuntimeError set. GIL held. */
int mh_binding_require_tracking(void);

/* _core_heap.c's functions, added to the module by PyInit__core. */
extern PyMethodDef mh_binding_heap_methods[];

#endif
