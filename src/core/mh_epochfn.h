/* mh_epochfn: --epoch-on's C profile function (3.10 and 3.11; from 3.12 the
 * Python side watches the function through sys.monitoring). Every completed
 * call of the named function ends one unit of work (mh_engine_end_unit_locked):
 * a call completes when its frame finishes, by returning or by raising. A
 * generator's yield and a coroutine's suspension at an await do not complete
 * it (the profile function's return event fires for those too, and is told
 * apart by the frame's state).
 *
 * Another profiler (cProfile) takes the thread's single profile-function slot:
 * an audit hook on "sys.setprofile" notices it; when that profiler lets go of
 * the slot (disable()), memhound's function is put back on the main thread,
 * and the calls made meanwhile are counted as missed by mh_epochfn_status.
 *
 * Everything here runs with the GIL held. Python.h. */
#ifndef MH_EPOCHFN_H
#define MH_EPOCHFN_H

#include <Python.h>

/* Watch `name` (a str), with the qualified name `qualname` (str or None) in the
 * module `module` (str or None). Resets the counters. Returns 0, or -1 with an
 * exception set. */
int mh_epochfn_set(PyObject *name, PyObject *qualname, PyObject *module);

/* Install the profile function on the calling thread. Returns 0 or -1 with an
 * exception set. */
int mh_epochfn_install(void);

/* Counters so far: calls that ended a unit, times another profile function
 * replaced memhound's, times memhound's was put back. */
void mh_epochfn_status(unsigned long long *hits, unsigned long long *displaced,
                       unsigned long long *reinstalled);

/* 1 if the calling thread's profile function is memhound's. */
int mh_epochfn_installed(void);

/* Stop watching: remove the profile function from the calling thread (if it
 * is memhound's) and forget the function. Returns the hits. */
unsigned long long mh_epochfn_clear(void);

#endif
